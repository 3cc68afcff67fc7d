import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseWebhook, signBody, verifyHandshake, verifySignature, webhookAccounts, type ParsedWebhook } from './whatsapp-webhooks.js';

const reference = new URL('../../test/fixtures/reference/payloads/', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, reference), 'utf8');

describe('verifySignature', () => {
  const vectors = JSON.parse(read('meta-signature/x-hub-signature-256-vectors.json')) as {
    vectors: Array<{ appSecret: string; body: string; bodyAsSigned?: string; header: string; headerIfUnescapedUtf8WouldBe_WRONG?: string }>;
  };

  it('has the three published vectors', () => expect(vectors.vectors).toHaveLength(3));

  for (const [i, v] of vectors.vectors.entries()) {
    it(`accepts vector ${i + 1} over the bytes as signed, and refuses any change`, () => {
      const signed = Buffer.from(v.bodyAsSigned ?? v.body, 'utf8');
      expect(verifySignature(signed, v.header, v.appSecret)).toBe(true);
      expect(verifySignature(signed, v.header.toUpperCase().replace('SHA256=', 'sha256='), v.appSecret)).toBe(true);
      expect(verifySignature(signed, v.header, `${v.appSecret}x`)).toBe(false);
      expect(verifySignature(Buffer.concat([signed, Buffer.from(' ')]), v.header, v.appSecret)).toBe(false);
      expect(verifySignature(signed, v.header.replace('sha256=', 'sha1='), v.appSecret)).toBe(false);
      expect(verifySignature(signed, v.header.slice(0, -2), v.appSecret)).toBe(false);
      expect(verifySignature(signed, undefined, v.appSecret)).toBe(false);
      expect(verifySignature(signed, v.header, '')).toBe(false);
      expect(signBody(signed, v.appSecret)).toBe(v.header);
    });
  }

  it('verifies the raw bytes, never a re-serialisation (the unicode vector)', () => {
    const v = vectors.vectors.find((x) => x.bodyAsSigned)!;
    // The same text with the non-ASCII characters as UTF-8 instead of \u escapes has another signature.
    expect(verifySignature(Buffer.from(v.body, 'utf8'), v.header, v.appSecret)).toBe(false);
    expect(verifySignature(Buffer.from(v.body, 'utf8'), v.headerIfUnescapedUtf8WouldBe_WRONG, v.appSecret)).toBe(true);
  });
});

describe('verifyHandshake', () => {
  const sample = JSON.parse(read('meta-signature/hub-challenge-verification.json')) as { query: Record<string, string>; expected_on_match: { body: string } };

  it("echoes the challenge of Meta's sample request when the token matches", () => {
    expect(verifyHandshake(sample.query, 'meatyhamhock')).toEqual({ ok: true, challenge: sample.expected_on_match.body });
  });

  it('refuses a wrong token, another mode, or no challenge', () => {
    expect(verifyHandshake(sample.query, 'another-token').ok).toBe(false);
    expect(verifyHandshake({ ...sample.query, 'hub.mode': 'unsubscribe' }, 'meatyhamhock').ok).toBe(false);
    expect(verifyHandshake({ ...sample.query, 'hub.challenge': '' }, 'meatyhamhock').ok).toBe(false);
    expect(verifyHandshake({ 'hub.mode': 'subscribe', 'hub.challenge': '1' }, 'meatyhamhock').ok).toBe(false);
    expect(verifyHandshake({ ...sample.query, 'hub.verify_token': '' }, '').ok).toBe(false);
  });
});

const sheena = { from: '+16505551234', profileName: 'Sheena Nelson', phoneNumberId: '106540352242922' };
const nothing: ParsedWebhook = { inbound: [], statuses: [], templateUpdates: [], ignored: [] };

/** What each of Meta's example webhooks must yield. */
const expectations: Record<string, (parsed: ParsedWebhook) => void> = {
  'text-message.json': (p) => expect(p.inbound).toEqual([{ ...sheena, wamid: 'wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=', timestamp: 1749416383000, type: 'text', text: 'Does it come in another color?', buttonId: null, supported: true, contextId: null }]),
  'text-message-with-context-product-inquiry.json': (p) => {
    expect(p.inbound).toHaveLength(1);
    expect(p.inbound[0]).toMatchObject({ type: 'text', supported: true, buttonId: null });
    expect(p.inbound[0]!.contextId).toMatch(/^wamid\./);
  },
  'text-message-from-click-to-whatsapp-ad.json': (p) => expect(p.inbound).toEqual([expect.objectContaining({ type: 'text', text: 'Hello! Can I get more info on this?', supported: true, ...sheena })]),
  'button-message.json': (p) => expect(p.inbound).toEqual([expect.objectContaining({ type: 'button', text: 'Unsubscribe', buttonId: 'Unsubscribe', supported: true, contextId: 'wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJFNjk2OTMwNEZCQjhGMzUyQUYA' })]),
  'interactive-button-reply-message.json': (p) => expect(p.inbound).toEqual([expect.objectContaining({ type: 'interactive', text: 'Cancel', buttonId: 'cancel-button', supported: true, wamid: 'wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTZBQzg0MzQ4QjRCM0NGNkVGOAA=' })]),
  'interactive-list-reply-message.json': (p) => {
    expect(p.inbound).toHaveLength(1);
    expect(p.inbound[0]).toMatchObject({ type: 'interactive', supported: true });
    expect(p.inbound[0]!.buttonId).toEqual(expect.any(String));
    expect(p.inbound[0]!.text).toEqual(expect.any(String));
  },
  'image-message.json': (p) => expect(p.inbound).toEqual([expect.objectContaining({ type: 'image', supported: false, buttonId: null, text: expect.stringMatching(/^\[image\]/) })]),
  'location-message.json': (p) => expect(p.inbound).toEqual([expect.objectContaining({ type: 'location', supported: false, text: '[location] Philz Coffee 101 Forest Ave, Palo Alto, CA 94301 (37.44221496582, -122.16165924072)' })]),
  'contact-sharing-message.json': (p) => expect(p.inbound).toEqual([expect.objectContaining({ type: 'contacts', supported: false, text: '[contacts] Lucía Gómez' })]),
  'reaction-message.json': (p) => expect(p.inbound).toEqual([expect.objectContaining({ type: 'reaction', supported: false, text: '[reaction] 👍' })]),
  'order-message.json': (p) => expect(p.inbound).toEqual([expect.objectContaining({ type: 'order', supported: false, text: expect.stringMatching(/^\[order\] \d+ item\(s\)$/) })]),
  'unsupported-message.json': (p) => expect(p.inbound).toEqual([expect.objectContaining({ type: 'unsupported', supported: false, text: '[unsupported]', wamid: 'wamid.HBgLMTQyMDU1NTA3NDkVAgASGBI5N0MwRjg0RTVBNUI1RDA2OTkA' })]),
  // The customer changed number: recorded as ignored, not routed to a flow as if they had said it.
  'system-message.json': (p) => expect(p).toEqual({ ...nothing, ignored: ['messages.system'] }),
  'group-create-message.json': (p) => expect(p).toEqual({ ...nothing, ignored: ['group_lifecycle_update'] }),
  'group-remove-participants.json': (p) => {
    expect(p.inbound).toEqual([]);
    expect(p.statuses).toEqual([]);
    expect(p.ignored).toHaveLength(1);
  },
  'group-settings-update.json': (p) => expect(p).toEqual({ ...nothing, ignored: ['group_settings_update'] }),
};

describe("parseWebhook on Meta's example payloads", () => {
  const dir = new URL('meta-openapi-webhooks/', reference);
  const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();

  it('has an expectation for every example file (16)', () => {
    expect(files).toHaveLength(16);
    expect(files).toEqual(Object.keys(expectations).sort());
  });

  for (const file of files) {
    it(`parses ${file}`, () => {
      const body = JSON.parse(readFileSync(new URL(file, dir), 'utf8')) as unknown;
      const parsed = parseWebhook(body);
      expectations[file]!(parsed);
      if (parsed.inbound.length > 0) expect(webhookAccounts(body).phoneNumberIds).toEqual(['106540352242922']);
    });
  }
});

describe('parseWebhook on the Postman collection payloads', () => {
  const dir = new URL('meta-postman-collection-md/', reference);

  it('reads a delivery status', () => {
    const parsed = parseWebhook(JSON.parse(readFileSync(new URL('status-sent-minimal.json', dir), 'utf8')));
    expect(parsed).toEqual({
      ...nothing,
      statuses: [{ phoneNumberId: '27681414235104944', wamid: 'wamid.gBGGFlCGg0cvAglAxydbAoy-gwNo', status: 'sent', timestamp: 1603086313000, recipient: '16315551234', nudgeMessageId: null, errorCode: null, errorMessage: null }],
    });
  });

  it("reads a template's quick-reply button click", () => {
    const parsed = parseWebhook(JSON.parse(readFileSync(new URL('quick-reply-button-click.json', dir), 'utf8')));
    expect(parsed.inbound).toEqual([
      { phoneNumberId: '27681414235104944', wamid: 'wamid.ABGGFlCGg0cvAgo-sHWxBA2VFD_S', from: '+16315551234', profileName: 'Kerry Fisher', timestamp: 1603087229000, type: 'button', text: 'No', buttonId: 'No-Button-Payload', supported: true, contextId: 'wamid.gBGGFlCGg0cvAgkLFm4e9tICiTI' },
    ]);
  });

  it('covers every JSON file there; status-failed.PLACEHOLDERS.txt is skipped because its source has unquoted placeholders and is not JSON', () => {
    const files = readdirSync(dir).sort();
    expect(files).toEqual(['quick-reply-button-click.json', 'status-failed.PLACEHOLDERS.txt', 'status-sent-minimal.json']);
    expect(() => JSON.parse(readFileSync(new URL('status-failed.PLACEHOLDERS.txt', dir), 'utf8'))).toThrow();
  });

  it('reads a failed status with its error, as in the (fixed-up) Postman failure sample', () => {
    // The .txt sample with its placeholders replaced by values of the right types.
    const parsed = parseWebhook({
      object: 'whatsapp_business_account',
      entry: [{ id: '8856996819413533', changes: [{ field: 'messages', value: { messaging_product: 'whatsapp', metadata: { display_phone_number: '16505553333', phone_number_id: '27681414235104944' }, statuses: [{ id: 'wamid.ID', status: 'failed', timestamp: '1603086313', recipient_id: '16315551234', errors: [{ code: 131014, title: 'Request for url https://URL.jpg failed with error: 404 (Not Found)' }] }] } }] }],
    });
    expect(parsed.statuses).toEqual([{ phoneNumberId: '27681414235104944', wamid: 'wamid.ID', status: 'failed', timestamp: 1603086313000, recipient: '16315551234', nudgeMessageId: null, errorCode: '131014', errorMessage: 'Request for url https://URL.jpg failed with error: 404 (Not Found)' }]);
  });
});

describe('parseWebhook: the message reference Nudge sends along', () => {
  it('reads Nudge\u2019s message id from biz_opaque_callback_data, and ignores foreign values', () => {
    const status = (extra: Record<string, unknown>) =>
      parseWebhook({
        object: 'whatsapp_business_account',
        entry: [{ id: '1', changes: [{ field: 'messages', value: { messaging_product: 'whatsapp', metadata: { display_phone_number: '1', phone_number_id: '2' }, statuses: [{ id: 'wamid.X', status: 'sent', timestamp: '1603086313', recipient_id: '1', ...extra }] } }] }],
      }).statuses[0]!.nudgeMessageId;
    expect(status({ biz_opaque_callback_data: 'nudge:0193A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A70' })).toBe('0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a70');
    expect(status({ biz_opaque_callback_data: 'someone-else:123' })).toBeNull();
    expect(status({})).toBeNull();
  });
});

describe('parseWebhook on template reviews and odd input', () => {
  it('reads message_template_status_update', () => {
    const parsed = parseWebhook({
      object: 'whatsapp_business_account',
      entry: [{ id: '102290129340398', time: 1750269342, changes: [{ field: 'message_template_status_update', value: { event: 'REJECTED', message_template_id: 920070352646140, message_template_name: 'order_shipped', message_template_language: 'en_US', reason: 'INVALID_FORMAT' } }] }],
    });
    expect(parsed.templateUpdates).toEqual([{ businessAccountId: '102290129340398', event: 'REJECTED', templateId: '920070352646140', name: 'order_shipped', language: 'en_US', reason: 'INVALID_FORMAT' }]);
  });

  it('never throws on malformed payloads', () => {
    for (const body of [null, 'text', 42, [], {}, { entry: 'x' }, { entry: [{ changes: [{ field: 'messages', value: { messages: [{}, null, { id: 'x' }], statuses: [{ id: 'w', status: 'weird' }] } }] }] }]) {
      const parsed = parseWebhook(body);
      expect(parsed.inbound).toEqual([]);
      expect(parsed.statuses).toEqual([]);
    }
  });
});
