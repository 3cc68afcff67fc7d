import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { OutboundMessage, RenderedContent } from '../../src/channels/channel.js';
import { buildWhatsAppBody, validateWhatsAppContent, WhatsAppCloudChannel, whatsAppCloudFromSettings } from '../../src/channels/whatsapp-cloud-channel.js';
import { FakeMeta, metaError } from '../support/fake-meta.js';

const examples = new URL('../fixtures/reference/payloads/meta-openapi-send-message-requests/', import.meta.url);
const example = (name: string) => JSON.parse(readFileSync(new URL(name, examples), 'utf8')) as Record<string, unknown>;

/** The structure of a JSON value: object keys (sorted) with their structure, arrays by their first element, leaves by type. */
function shape(value: unknown): unknown {
  if (Array.isArray(value)) return value.length === 0 ? [] : [shape(value[0])];
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.keys(value).sort().map((k) => [k, shape((value as Record<string, unknown>)[k])]));
  }
  return typeof value;
}
const keys = (value: unknown) => Object.keys(value as object).sort();

const message = (content: RenderedContent, to = '+16505551234'): OutboundMessage => ({ id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a70', workspaceId: 'w', channel: 'whatsapp', to, content });

const listContent: RenderedContent = {
  kind: 'list',
  text: 'Which size?',
  button: 'Choose',
  header: 'Sizes',
  footer: 'Free returns',
  sections: [
    { title: 'Small', rows: [{ id: 's', title: 'S', description: 'Chest 86–91 cm' }, { id: 'xs', title: 'XS', description: 'Chest 81–86 cm' }] },
    { title: 'Large', rows: [{ id: 'l', title: 'L', description: 'Chest 102–107 cm' }] },
  ],
};

describe('buildWhatsAppBody: Meta wire format', () => {
  it('builds a text message with the keys of Meta\u2019s example and `to` without the plus', () => {
    const body = buildWhatsAppBody({ kind: 'text', text: 'Hello there' }, '+16505551234');
    expect(shape(body)).toEqual(shape(example('send-text-message.json')));
    expect(body).toEqual({ messaging_product: 'whatsapp', recipient_type: 'individual', to: '16505551234', type: 'text', text: { preview_url: false, body: 'Hello there' } });
    expect((buildWhatsAppBody({ kind: 'text', text: 'See https://example.com/x' }, '+1650555') as { text: { preview_url: boolean } }).text.preview_url).toBe(true);
  });

  it('builds reply buttons like Meta\u2019s send-reply-button example', () => {
    const body = buildWhatsAppBody({ kind: 'buttons', text: 'Complete your order?', buttons: [{ id: 'yes', title: 'Yes' }, { id: 'no', title: 'No' }] }, '+16505551234');
    expect(shape(body)).toEqual(shape(example('send-reply-button.json')));
    expect((body as { interactive: { action: { buttons: unknown[] } } }).interactive.action.buttons).toEqual([
      { type: 'reply', reply: { id: 'yes', title: 'Yes' } },
      { type: 'reply', reply: { id: 'no', title: 'No' } },
    ]);
  });

  it('builds a list like Meta\u2019s send-list-message example, header and footer included', () => {
    const body = buildWhatsAppBody(listContent, '+16505551234');
    expect(shape(body)).toEqual(shape(example('send-list-message.json')));
    expect(body).toMatchObject({ type: 'interactive', interactive: { type: 'list', header: { type: 'text', text: 'Sizes' }, footer: { text: 'Free returns' }, action: { button: 'Choose' } } });
  });

  it('builds a template with header, body and button parameters like Meta\u2019s template examples', () => {
    const body = buildWhatsAppBody(
      {
        kind: 'template',
        name: 'order_shipped',
        language: 'en_US',
        components: { header: ['#1001'], body: ['Ana', '#1001'], buttons: [{ index: 0, sub_type: 'quick_reply', parameter: 'track-1001' }, { index: 1, sub_type: 'url', parameter: '1001' }] },
      },
      '+16505551234',
    ) as { template: { components: Array<Record<string, unknown>>; language: unknown } };
    const reference = example('send-message-template-interactive.json') as { template: { components: Array<Record<string, unknown>>; language: unknown } };
    expect(keys(body)).toEqual(keys(reference));
    expect(keys(body.template)).toEqual(keys(reference.template));
    expect(body.template.language).toEqual({ code: 'en_US' });
    expect(keys(body.template.language)).toEqual(keys(reference.template.language));
    const [header, bodyPart, quick, url] = body.template.components;
    const refBody = reference.template.components.find((c) => c.type === 'body')!;
    const refButton = reference.template.components.find((c) => c.type === 'button')!;
    expect(keys(header)).toEqual(keys(refBody));
    expect(keys(bodyPart)).toEqual(keys(refBody));
    expect(keys((bodyPart!.parameters as unknown[])[0])).toEqual(keys((refBody.parameters as unknown[])[0]));
    expect(bodyPart).toEqual({ type: 'body', parameters: [{ type: 'text', text: 'Ana' }, { type: 'text', text: '#1001' }] });
    expect(keys(quick)).toEqual(keys(refButton));
    expect(shape(quick)).toEqual(shape(refButton));
    expect(quick).toEqual({ type: 'button', sub_type: 'quick_reply', index: '0', parameters: [{ type: 'payload', payload: 'track-1001' }] });
    expect(url).toEqual({ type: 'button', sub_type: 'url', index: '1', parameters: [{ type: 'text', text: '1001' }] });
  });

  it('leaves out components for a template without placeholders, as send-sample-shipping… does not need them', () => {
    const body = buildWhatsAppBody({ kind: 'template', name: 'hello_world', language: 'en_US', components: {} }, '+16505551234') as { template: Record<string, unknown> };
    expect(body.template).toEqual({ name: 'hello_world', language: { code: 'en_US' } });
  });
});

describe('validateWhatsAppContent: Meta\u2019s limits', () => {
  it('accepts content within the limits', () => {
    expect(validateWhatsAppContent(listContent)).toEqual([]);
    expect(validateWhatsAppContent({ kind: 'buttons', text: 'Ok?', buttons: [{ id: 'a', title: 'x'.repeat(20) }, { id: 'b', title: 'B' }, { id: 'c', title: 'C' }] })).toEqual([]);
  });

  it('names the field of every problem', () => {
    const buttons = validateWhatsAppContent({
      kind: 'buttons',
      text: 'x'.repeat(1025),
      buttons: [{ id: 'a', title: 'x'.repeat(21) }, { id: 'a', title: 'B' }, { id: 'c', title: 'C' }, { id: 'd', title: 'D' }],
    });
    expect(buttons.map((p) => p.field)).toEqual(['text', 'buttons', 'buttons.0.title', 'buttons.1.id']);
    expect(buttons.find((p) => p.field === 'buttons.0.title')!.problem).toBe('must be at most 20 characters (got 21)');

    const rows = Array.from({ length: 11 }, (_, i) => ({ id: `r${i}`, title: `Row ${i}` }));
    const list = validateWhatsAppContent({
      kind: 'list',
      text: 'Pick',
      button: 'x'.repeat(21),
      sections: [{ title: 'x'.repeat(25), rows: rows.slice(0, 6) }, { rows: [...rows.slice(6), { id: 'z', title: 'x'.repeat(25), description: 'd'.repeat(73) }] }],
    });
    expect(list.map((p) => p.field)).toEqual(['button', 'sections', 'sections.0.title', 'sections.1.title', 'sections.1.rows.5.title', 'sections.1.rows.5.description']);
    expect(list.find((p) => p.field === 'sections')!.problem).toBe('must have at most 10 rows in all (got 12)');
    expect(validateWhatsAppContent({ kind: 'text', text: 'x'.repeat(4097) })[0]).toEqual({ field: 'text', problem: 'must be at most 4096 characters (got 4097)' });
    expect(validateWhatsAppContent({ kind: 'template', name: 't', language: 'en', components: { body: ['ok', ''] } })[0]!.field).toBe('components.body.1');
  });
});

describe('WhatsAppCloudChannel against a fake Meta server', () => {
  const fake = new FakeMeta();
  let channel: WhatsAppCloudChannel;
  beforeAll(async () => {
    await fake.start();
    channel = new WhatsAppCloudChannel({ phoneNumberId: '106540352242922', accessToken: fake.accessToken, baseUrl: fake.url, timeoutMs: 300 });
  });
  afterAll(async () => fake.stop());
  beforeEach(() => {
    fake.requests.length = 0;
    fake.messageResponses.length = 0;
  });

  it('posts each content kind to /v23.0/{phone-number-id}/messages with the bearer token and returns the wamid', async () => {
    const contents: RenderedContent[] = [
      { kind: 'text', text: 'Hi' },
      { kind: 'buttons', text: 'Ok?', buttons: [{ id: 'y', title: 'Yes' }] },
      listContent,
      { kind: 'template', name: 'order_shipped', language: 'en_US', components: { body: ['Ana'] } },
    ];
    for (const content of contents) {
      const result = await channel.send(message(content));
      expect(result).toEqual({ ok: true, providerMessageId: expect.stringMatching(/^wamid\./), status: 'sent' });
    }
    const calls = fake.calls('/messages');
    expect(calls.map((c) => c.path)).toEqual(Array(4).fill('/v23.0/106540352242922/messages'));
    expect(calls.every((c) => c.authorization === `Bearer ${fake.accessToken}` && c.contentType === 'application/json')).toBe(true);
    // Each carries Nudge's message id for Meta to echo in its status webhooks.
    expect(calls.map((c) => c.body)).toEqual(contents.map((c) => buildWhatsAppBody(c, '+16505551234', 'nudge:0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a70')));
  });

  it('uses the configured Graph version and builds from stored settings', async () => {
    const fromSettings = whatsAppCloudFromSettings({ phone_number_id: '555', graph_version: 'v21.0', base_url: fake.url }, { access_token: fake.accessToken });
    expect((await fromSettings.send(message({ kind: 'text', text: 'Hi' }))).ok).toBe(true);
    expect(fake.calls('/messages')[0]!.path).toBe('/v21.0/555/messages');
    expect(() => whatsAppCloudFromSettings({ phone_number_id: '555' }, {})).toThrow('access_token');
  });

  it('refuses content over the limits before calling Meta', async () => {
    const result = await channel.send(message({ kind: 'buttons', text: 'Ok?', buttons: [1, 2, 3, 4].map((n) => ({ id: `b${n}`, title: `B${n}` })) }));
    expect(result).toMatchObject({ ok: false, retryable: false, code: 'invalid_content' });
    expect(fake.requests).toHaveLength(0);
  });

  const cases: Array<[string, Parameters<typeof metaError> | { status: number; headers?: Record<string, string>; body?: unknown }, Record<string, unknown>]> = [
    ['throughput (130429) is retryable, honouring Retry-After', { ...metaError(400, 130429, '(#130429) Rate limit hit'), headers: { 'retry-after': '7' } }, { retryable: true, code: '130429', retryAfterMs: 7000 }],
    ['pair rate limit (131056) is retryable', metaError(400, 131056, '(#131056) (Business Account, Consumer Account) pair rate limit hit'), { retryable: true, code: '131056' }],
    ['HTTP 429 without a code is retryable', { status: 429, headers: { 'retry-after': '2' }, body: {} }, { retryable: true, code: 'http_429', retryAfterMs: 2000 }],
    ['HTTP 503 is retryable', { status: 503, body: { error: { message: 'Service temporarily unavailable', type: 'OAuthException', code: 2, fbtrace_id: 'x' } } }, { retryable: true, code: '2' }],
    ['HTTP 500 without a body is retryable', { status: 500 }, { retryable: true, code: 'http_500' }],
    ['outside the 24-hour window (131047) is permanent', metaError(400, 131047, 'Re-engagement message', { details: 'Message failed to send because more than 24 hours have passed since the customer last replied to this number.' }), { retryable: false, code: '131047' }],
    ['an invalid recipient (131026) is permanent', metaError(400, 131026, 'Message undeliverable'), { retryable: false, code: '131026' }],
    ['a recipient not in the allowed list (131030) is permanent', metaError(400, 131030, 'Recipient phone number not in allowed list'), { retryable: false, code: '131030' }],
    ['an invalid parameter (100) is permanent', metaError(400, 100, 'Invalid parameter'), { retryable: false, code: '100' }],
    ['a template error (132001) is permanent', metaError(404, 132001, 'Template name does not exist in the translation'), { retryable: false, code: '132001' }],
    ['an expired token (190) is a permanent auth failure', metaError(401, 190, 'Error validating access token: Session has expired'), { retryable: false, code: '190', authFailure: true }],
    ['a missing permission (10) is a permanent auth failure', metaError(403, 10, 'Application does not have permission for this action'), { retryable: false, code: '10', authFailure: true }],
    ['a permission error (200) is a permanent auth failure', metaError(403, 200, 'Permissions error'), { retryable: false, code: '200', authFailure: true }],
  ];
  for (const [name, response, expected] of cases) {
    it(`maps ${name}`, async () => {
      fake.messageResponses.push(Array.isArray(response) ? metaError(...response) : response);
      const result = await channel.send(message({ kind: 'text', text: 'Hi' }));
      expect(result).toMatchObject({ ok: false, ...expected });
      if (!result.ok) {
        expect(result.message.length).toBeGreaterThan(10);
        if (!('authFailure' in expected)) expect(result.authFailure).toBeUndefined();
        if (!('retryAfterMs' in expected)) expect(result.retryAfterMs).toBeUndefined();
      }
    });
  }

  it('explains the 24-hour window in the 131047 message', async () => {
    fake.messageResponses.push(metaError(400, 131047, 'Re-engagement message'));
    const result = await channel.send(message({ kind: 'text', text: 'Hi' }));
    expect(!result.ok && result.message).toContain('24-hour');
  });

  it('treats a dropped connection as retryable and ambiguous (Meta may have accepted it)', async () => {
    fake.messageResponses.push({ status: 200, destroy: true });
    expect(await channel.send(message({ kind: 'text', text: 'Hi' }))).toMatchObject({ ok: false, retryable: true, code: 'network_error', ambiguous: true });
  });

  it('treats a timeout as retryable and ambiguous', async () => {
    fake.messageResponses.push({ status: 200, delayMs: 1000, body: { messages: [{ id: 'wamid.late' }] } });
    expect(await channel.send(message({ kind: 'text', text: 'Hi' }))).toMatchObject({ ok: false, retryable: true, code: 'timeout', ambiguous: true });
  });

  it('knows a refused connection reached nobody', async () => {
    const port = await new Promise<number>((resolve) => {
      const probe = createServer();
      probe.listen(0, '127.0.0.1', () => {
        const { port: free } = probe.address() as { port: number };
        probe.close(() => resolve(free));
      });
    });
    const unreachable = new WhatsAppCloudChannel({ phoneNumberId: '1', accessToken: 't', baseUrl: `http://127.0.0.1:${port}`, timeoutMs: 300 });
    expect(await unreachable.send(message({ kind: 'text', text: 'Hi' }))).toMatchObject({ ok: false, retryable: true, code: 'network_error', ambiguous: false });
  });

  it('refuses a wrong access token as an auth failure (the fake checks the bearer token)', async () => {
    const wrong = new WhatsAppCloudChannel({ phoneNumberId: '106540352242922', accessToken: 'not-the-token', baseUrl: fake.url });
    expect(await wrong.send(message({ kind: 'text', text: 'Hi' }))).toMatchObject({ ok: false, retryable: false, code: '190', authFailure: true });
  });

  it('does not retry a 200 without a message id (Meta may have sent it)', async () => {
    fake.messageResponses.push({ status: 200, body: { messaging_product: 'whatsapp', messages: [] } });
    expect(await channel.send(message({ kind: 'text', text: 'Hi' }))).toMatchObject({ ok: false, retryable: false, code: 'invalid_response' });
  });
});
