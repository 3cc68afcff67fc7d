import { createHash } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildApp, type App } from '../../src/api/app.js';
import { buildWhatsAppBody, whatsAppCloudFromSettings } from '../../src/channels/whatsapp-cloud-channel.js';
import { ManualClock } from '../../src/domain/clock.js';
import { createToken, createWorkspace } from '../../src/engine/auth-service.js';
import { SettingsChannelRegistry } from '../../src/engine/channel-registry.js';
import type { Context } from '../../src/engine/context.js';
import { queueDirectMessage } from '../../src/engine/messaging-service.js';
import { setProviderSettings } from '../../src/engine/provider-settings-service.js';
import { sendTemplateMessage, syncTemplates, syncTemplatesWhenDue } from '../../src/engine/template-service.js';
import { Worker } from '../../src/engine/worker.js';
import { newId } from '../../src/domain/ids.js';
import { claimDueMessages, queuedOutboundRow } from '../../src/store/message-repository.js';
import { createTestContext, type TestContext } from '../support/app.js';
import { dialects } from '../support/databases.js';
import { FakeMeta, metaError } from '../support/fake-meta.js';

const phoneNumberId = '106540352242922';
const businessAccountId = '102290129340398';
const verifyToken = 'meatyhamhock';
const minute = 60_000;

interface Harness {
  base: TestContext;
  ctx: Context;
  app: App;
  worker: Worker;
  workspaceId: string;
  auth: Record<string, string>;
  /** A second workspace without WhatsApp settings: the sandbox. */
  sandbox: { workspaceId: string; auth: Record<string, string> };
}

/**
 * The app and a worker whose channel registry resolves each workspace from its stored
 * provider settings, with the real WhatsApp adapter registered: the configured
 * workspace talks to the fake Meta server, the other one to the sandbox.
 */
async function harness(dialect: (typeof dialects)[number], fake: FakeMeta, clock: ManualClock): Promise<Harness> {
  const base = await createTestContext(dialect, { clock });
  const registry = new SettingsChannelRegistry({ database: base.database, secretKey: base.secretKey, log: base.log, publicUrl: 'http://localhost:3000', timeoutMs: 2000, whatsappRatePerSecond: 80, sandboxInline: true });
  registry.registerProvider('whatsapp-cloud', whatsAppCloudFromSettings);
  const ctx: Context = { ...base, channels: registry };
  const workspace = await createWorkspace(ctx, 'Acme');
  const token = await createToken(ctx, { workspaceId: workspace.id, name: 'test', rateLimit: 1_000_000 });
  const other = await createWorkspace(ctx, 'Globex');
  const otherToken = await createToken(ctx, { workspaceId: other.id, name: 'other', rateLimit: 1_000_000 });
  await setProviderSettings(ctx, workspace.id, 'whatsapp', {
    phone_number_id: phoneNumberId,
    business_account_id: businessAccountId,
    base_url: fake.url,
    access_token: fake.accessToken,
    app_secret: fake.appSecret,
    verify_token: verifyToken,
  });
  const app = await buildApp(ctx);
  await app.ready();
  const worker = new Worker(ctx, registry, ctx.versions, null, { batchSize: 100, pollIntervalMs: 50, dispatchConcurrency: 4 });
  return {
    base,
    ctx,
    app,
    worker,
    workspaceId: workspace.id,
    auth: { authorization: `Bearer ${token.token}` },
    sandbox: { workspaceId: other.id, auth: { authorization: `Bearer ${otherToken.token}` } },
  };
}

/** A `messages` webhook from Meta for our number. */
function messagesPayload(value: Record<string, unknown>, phone = phoneNumberId) {
  return {
    object: 'whatsapp_business_account',
    entry: [{ id: businessAccountId, changes: [{ field: 'messages', value: { messaging_product: 'whatsapp', metadata: { display_phone_number: '15550783881', phone_number_id: phone }, ...value } }] }],
  };
}

let seq = 0;
const wamid = () => `wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQ${String(++seq).padStart(8, '0')}`;
const textFrom = (from: string, body: string, id = wamid()) =>
  messagesPayload({ contacts: [{ profile: { name: 'Sheena Nelson' }, wa_id: from }], messages: [{ from, id, timestamp: '1750025136', type: 'text', text: { body } }] });
const buttonReplyFrom = (from: string, buttonId: string, title: string, id = wamid()) =>
  messagesPayload({
    contacts: [{ profile: { name: 'Sheena Nelson' }, wa_id: from }],
    messages: [{ context: { from: '15550783881', id: 'wamid.ctx' }, from, id, timestamp: '1750025136', type: 'interactive', interactive: { type: 'button_reply', button_reply: { id: buttonId, title } } }],
  });
const statusOf = (id: string, status: string, timestamp: number, errors?: unknown[]) =>
  messagesPayload({ statuses: [{ id, status, timestamp: String(timestamp), recipient_id: '16505551234', ...(errors ? { errors } : {}) }] });
const templateUpdate = (templateId: string, event: string, extra: Record<string, unknown> = {}) => ({
  object: 'whatsapp_business_account',
  entry: [{ id: businessAccountId, time: 1750269342, changes: [{ field: 'message_template_status_update', value: { event, message_template_id: Number(templateId), ...extra } }] }],
});

describe.each(dialects)('WhatsApp Cloud API end to end on %s', (dialect) => {
  const fake = new FakeMeta();
  const clock = new ManualClock(Date.UTC(2026, 4, 7, 8, 0, 0));
  let h: Harness;

  beforeAll(async () => {
    await fake.start();
    h = await harness(dialect, fake, clock);
  });
  afterAll(async () => {
    await h.app.close();
    await h.base.database.close();
    await fake.stop();
  });
  beforeEach(() => {
    fake.requests.length = 0;
  });

  const post = (url: string, payload: unknown, headers = h.auth) => h.app.inject({ method: 'POST', url, headers, payload: payload as object });
  const get = (url: string, headers = h.auth) => h.app.inject({ method: 'GET', url, headers });
  /** Delivers a webhook the way Meta does: the exact bytes, signed (or as the options say). */
  const deliver = (payload: unknown, options: { secret?: string; unsigned?: boolean; bytes?: Buffer } = {}) => {
    const signed = fake.signedWebhook(payload, options.secret);
    const headers = { ...signed.headers };
    if (options.unsigned) delete (headers as Record<string, string>)['x-hub-signature-256'];
    return h.app.inject({ method: 'POST', url: '/webhooks/whatsapp', headers, payload: options.bytes ?? signed.raw });
  };
  const events = () => h.ctx.database.db.selectFrom('webhook_events').selectAll().orderBy('id').execute();
  const messages = async (query: string) => (await get(`/api/v1/messages?${query}`)).json().data as Array<Record<string, unknown>>;

  describe('webhook verification', () => {
    it('answers the handshake with the challenge as text/plain when the verify token matches', async () => {
      const res = await h.app.inject({ method: 'GET', url: `/webhooks/whatsapp?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=${verifyToken}` });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(/^text\/plain/);
      expect(res.body).toBe('1158201444');
    });

    it('refuses the handshake with 403 for a wrong token or mode', async () => {
      for (const query of [`hub.mode=subscribe&hub.challenge=1&hub.verify_token=wrong`, `hub.mode=unsubscribe&hub.challenge=1&hub.verify_token=${verifyToken}`, '']) {
        const res = await h.app.inject({ method: 'GET', url: `/webhooks/whatsapp?${query}` });
        expect(res.statusCode).toBe(403);
        expect(res.json()).toMatchObject({ code: 'forbidden', error: expect.stringContaining('verify token') });
      }
    });

    it('refuses unsigned, forged and unknown-number webhooks and records each', async () => {
      const before = (await events()).length;
      const payload = textFrom('16505550001', 'hello');
      const raw = fake.signedWebhook(payload).raw;
      const sha = createHash('sha256').update(raw).digest('hex');

      const unsigned = await deliver(payload, { unsigned: true });
      expect(unsigned.statusCode).toBe(401);
      expect(unsigned.json()).toMatchObject({ code: 'unauthorized', error: 'Missing X-Hub-Signature-256 header' });

      const forged = await deliver(payload, { secret: 'not-the-app-secret' });
      expect(forged.statusCode).toBe(401);
      expect(forged.json().code).toBe('unauthorized');

      const unknown = await deliver(textFrom('16505550001', 'hello'), {});
      // Same secret but a phone number no workspace has.
      const stranger = await deliver(messagesPayload({ messages: [{ from: '16505550001', id: wamid(), timestamp: '1', type: 'text', text: { body: 'x' } }] }, '999999999'));
      expect(unknown.statusCode).toBe(200);
      expect(stranger.statusCode).toBe(403);
      expect(stranger.json()).toMatchObject({ code: 'forbidden', error: expect.stringContaining('999999999') });

      const rows = (await events()).slice(before);
      expect(rows.map((r) => [r.outcome, r.reason])).toEqual([
        ['rejected', 'missing_signature'],
        ['rejected', 'invalid_signature'],
        ['accepted', null],
        ['rejected', 'unknown_phone_number_id'],
      ]);
      expect(rows[0]!.body_sha256).toBe(sha);
      expect(rows[1]!.workspace_id).toBe(h.workspaceId);
      expect(rows.every((r) => r.provider === 'whatsapp-cloud' && r.remote_address !== null)).toBe(true);
      // Nothing from the refused ones was stored.
      const inbound = await messages('direction=inbound');
      expect(inbound.filter((m) => (m.content as { text: string }).text === 'hello')).toHaveLength(1);
    });

    it('refuses a replay whose body was modified after signing', async () => {
      const original = fake.signedWebhook(textFrom('16505550002', 'pay 10'));
      const tampered = Buffer.from(original.raw.toString('utf8').replace('pay 10', 'pay 99'), 'utf8');
      const res = await h.app.inject({ method: 'POST', url: '/webhooks/whatsapp', headers: original.headers, payload: tampered });
      expect(res.statusCode).toBe(401);
      const last = (await events()).at(-1)!;
      expect(last).toMatchObject({ outcome: 'rejected', reason: 'invalid_signature', body_sha256: createHash('sha256').update(tampered).digest('hex') });
      expect((await messages('direction=inbound')).some((m) => String((m.content as { text: string }).text).startsWith('pay'))).toBe(false);
    });

    it('answers a malformed JSON body with 400 and never a 500', async () => {
      const res = await h.app.inject({ method: 'POST', url: '/webhooks/whatsapp', headers: { 'content-type': 'application/json', 'x-hub-signature-256': 'sha256=00' }, payload: '{not json' });
      expect(res.statusCode).toBe(400);
      const array = await deliver([1, 2]);
      expect(array.statusCode).toBe(403);
    });
  });

  describe('a flow driven by signed webhooks', () => {
    const customer = '16505551234';
    const cartFlow = {
      name: 'Abandoned cart',
      graph: {
        entry: 'ask',
        nodes: [
          { id: 'ask', type: 'send_message', channel: 'whatsapp', content: { text: 'Cart {{context.cart_id}}: complete it?', buttons: [{ id: 'yes', title: 'Yes' }, { id: 'no', title: 'No' }] } },
          { id: 'wait', type: 'wait_for_reply', timeout: { minutes: 20 }, branches: [{ id: 'yes', match: { type: 'button', button_id: 'yes' } }, { id: 'no', match: { type: 'keyword', keywords: ['no'] } }] },
          { id: 'link', type: 'send_message', channel: 'whatsapp', content: { text: 'Here you go: /cart/{{context.cart_id}}' } },
          { id: 'bye', type: 'send_message', channel: 'whatsapp', content: { text: 'Okay, maybe later.' } },
          { id: 'nudge', type: 'send_message', channel: 'whatsapp', content: { text: 'Still there?' } },
        ],
        edges: [
          { from: 'ask', to: 'wait' },
          { from: 'wait', to: 'link', branch: 'yes' },
          { from: 'wait', to: 'bye', branch: 'no' },
          { from: 'wait', to: 'nudge', branch: 'timeout' },
        ],
      },
    };
    let sessionId = '';
    let askWamid = '';

    it('sends the flow through Meta and completes it on a signed button_reply, idempotently', async () => {
      // The customer writes first: that opens the 24-hour window free-form messages need.
      expect((await deliver(textFrom(customer, 'Hi, I left something in my cart'))).statusCode).toBe(200);

      const created = await post('/api/v1/flows', cartFlow);
      expect(created.statusCode, created.body).toBe(201);
      const flowId = created.json().flow.id;
      expect((await post(`/api/v1/flows/${flowId}/enable`, {})).statusCode).toBe(200);
      const started = await post('/api/v1/actions/trigger-flow', { flow_id: flowId, phone: `+${customer}`, context: { cart_id: '987' } });
      expect(started.statusCode, started.body).toBe(201);
      sessionId = started.json().id;

      await h.worker.drain();
      const sent = fake.calls('/messages');
      expect(sent).toHaveLength(1);
      expect(sent[0]!.path).toBe(`/v23.0/${phoneNumberId}/messages`);
      const [ask] = await messages(`session_id=${sessionId}&direction=outbound`);
      // Meta's status webhooks echo biz_opaque_callback_data: it names Nudge's message.
      expect(sent[0]!.body).toEqual(buildWhatsAppBody({ kind: 'buttons', text: 'Cart 987: complete it?', buttons: [{ id: 'yes', title: 'Yes' }, { id: 'no', title: 'No' }] }, `+${customer}`, `nudge:${ask!.id as string}`));
      expect(ask).toMatchObject({ provider: 'whatsapp-cloud', status: 'sent', provider_message_id: expect.stringMatching(/^wamid\./) });
      askWamid = ask!.provider_message_id as string;
      expect((await get(`/api/v1/sessions/${sessionId}`)).json().status).toBe('waiting');

      clock.advance(2 * minute);
      const replyId = wamid();
      const reply = buttonReplyFrom(customer, 'yes', 'Yes', replyId);
      const res = await deliver(reply);
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({ received: true });
      await h.worker.drain();

      const session = (await get(`/api/v1/sessions/${sessionId}`)).json();
      expect(session.status).toBe('completed');
      expect(session.history.find((s: { node_id: string; outcome: string }) => s.node_id === 'wait' && s.outcome === 'replied').detail.branch).toBe('yes');
      expect(fake.calls('/messages').map((c) => (c.body as { text?: { body: string } }).text?.body)).toEqual([undefined, 'Here you go: /cart/987']);
      const inbound = await messages(`session_id=${sessionId}&direction=inbound`);
      expect(inbound).toHaveLength(1);
      expect(inbound[0]).toMatchObject({ provider: 'whatsapp-cloud', provider_message_id: replyId, content: { text: 'Yes', button_id: 'yes' } });

      // Meta delivers the same webhook again: nothing changes.
      expect((await deliver(reply)).statusCode).toBe(200);
      await h.worker.drain();
      expect(await messages(`session_id=${sessionId}&direction=inbound`)).toHaveLength(1);
      expect(fake.calls('/messages')).toHaveLength(2);
    });

    it('applies statuses in order, never backwards, and redelivery changes nothing', async () => {
      const t0 = Math.floor(clock.now() / 1000);
      const view = async () => (await messages(`session_id=${sessionId}&direction=outbound`)).find((m) => m.provider_message_id === askWamid)!;
      expect((await deliver(statusOf(askWamid, 'delivered', t0 + 1))).statusCode).toBe(200);
      expect(await view()).toMatchObject({ status: 'delivered', delivered_at: new Date((t0 + 1) * 1000).toISOString(), read_at: null });
      await deliver(statusOf(askWamid, 'read', t0 + 5));
      const read = await view();
      expect(read).toMatchObject({ status: 'read', read_at: new Date((t0 + 5) * 1000).toISOString(), delivered_at: new Date((t0 + 1) * 1000).toISOString() });

      const row = () => h.ctx.database.db.selectFrom('messages').selectAll().where('provider_message_id', '=', askWamid).executeTakeFirstOrThrow();
      const before = await row();
      clock.advance(minute);
      await deliver(statusOf(askWamid, 'read', t0 + 5)); // redelivered
      await deliver(statusOf(askWamid, 'delivered', t0 + 9)); // late
      await deliver(statusOf(askWamid, 'sent', t0)); // later still
      await deliver(statusOf(askWamid, 'failed', t0 + 10, [{ code: 131026, title: 'Message undeliverable' }])); // contradicts read
      expect(await row()).toEqual(before);
    });

    it('records a failed status with its error and fills skipped timestamps on a read that comes first', async () => {
      const [, link] = await messages(`session_id=${sessionId}&direction=outbound`).then((list) => list.reverse());
      const linkWamid = link!.provider_message_id as string;
      const t = Math.floor(clock.now() / 1000);
      await deliver(statusOf(linkWamid, 'failed', t, [{ code: 131026, title: 'Message undeliverable', message: 'Message undeliverable', error_data: { details: 'Unable to deliver the message.' } }]));
      expect((await messages(`session_id=${sessionId}&direction=outbound`)).find((m) => m.provider_message_id === linkWamid)).toMatchObject({
        status: 'failed',
        error_code: '131026',
        error_message: 'Message undeliverable: Unable to deliver the message.',
        failed_at: new Date(t * 1000).toISOString(),
      });
      await deliver(statusOf(linkWamid, 'delivered', t + 1));
      expect((await messages(`session_id=${sessionId}&direction=outbound`)).find((m) => m.provider_message_id === linkWamid)!.status).toBe('failed');

      // A direct text (inside the window) then a `read` that overtakes `delivered`.
      const contactId = (await post('/api/v1/actions/get-contact', { phone: `+${customer}` })).json().id as string;
      const sent = await queueDirectMessage(h.ctx, { workspaceId: h.workspaceId, contactId, channel: 'whatsapp', content: { kind: 'text', text: 'Anything else?' }, marketing: false });
      expect(sent.status).toBe('sent');
      const id = sent.providerMessageId!;
      expect(id).toMatch(/^wamid\./);
      await deliver(statusOf(id, 'read', t + 3));
      const [direct] = await messages(`contact_id=${contactId}&direction=outbound&limit=1`);
      expect(direct).toMatchObject({ status: 'read', read_at: new Date((t + 3) * 1000).toISOString(), delivered_at: new Date((t + 3) * 1000).toISOString() });
    });

    it('settles a send whose answer was lost from the status callback that names it, and never sends it again', async () => {
      const contactId = (await post('/api/v1/actions/get-contact', { phone: `+${customer}` })).json().id as string;
      const direct = (text: string) => queueDirectMessage(h.ctx, { workspaceId: h.workspaceId, contactId, channel: 'whatsapp', content: { kind: 'text', text }, marketing: false });
      const sends = (text: string) => fake.calls('/messages').filter((c) => (c.body as { text?: { body: string } }).text?.body === text).length;
      const row = (id: string) => h.ctx.database.db.selectFrom('messages').selectAll().where('id', '=', id).executeTakeFirstOrThrow();

      // Meta takes the request, then the connection drops before its answer.
      fake.messageResponses.push({ status: 200, destroy: true });
      const lost = await direct('Your code is 4411');
      expect(lost.status).toBe('queued');
      expect(sends('Your code is 4411')).toBe(1);
      // Its status webhook carries our message id in biz_opaque_callback_data.
      const accepted = wamid();
      const status = statusOf(accepted, 'delivered', Math.floor(clock.now() / 1000));
      (status.entry[0]!.changes[0]!.value as unknown as { statuses: Array<Record<string, unknown>> }).statuses[0]!.biz_opaque_callback_data = `nudge:${lost.messageId}`;
      expect((await deliver(status)).statusCode).toBe(200);
      expect(await row(lost.messageId)).toMatchObject({ status: 'delivered', provider_message_id: accepted, next_attempt_at: null });
      clock.advance(5 * minute);
      await h.worker.drain();
      expect(sends('Your code is 4411')).toBe(1);

      // Without a callback the send is tried again once the confirmation window has passed.
      fake.messageResponses.push({ status: 200, destroy: true });
      const unconfirmed = await direct('Your code is 5522');
      expect(unconfirmed.status).toBe('queued');
      clock.advance(30_000);
      await h.worker.drain();
      expect(sends('Your code is 5522')).toBe(1);
      clock.advance(31_000);
      await h.worker.drain();
      expect(sends('Your code is 5522')).toBe(2);
      expect(await row(unconfirmed.messageId)).toMatchObject({ status: 'sent', provider_message_id: expect.stringMatching(/^wamid\./) });
    });

    it('gives a send whose worker died mid-call the confirmation window after its lease before sending it again', async () => {
      const contactId = (await post('/api/v1/actions/get-contact', { phone: `+${customer}` })).json().id as string;
      const sends = (text: string) => fake.calls('/messages').filter((c) => (c.body as { text?: { body: string } }).text?.body === text).length;
      const row = (id: string) => h.ctx.database.db.selectFrom('messages').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
      const lease = h.ctx.config.dispatchLeaseMs;
      const window = h.ctx.config.sendConfirmWindowMs;
      const dying = async (text: string) => {
        // Queued while the channel is at its limit, then claimed by a worker that dies before its answer is stored.
        const id = newId(clock.now());
        await h.ctx.database.db.insertInto('messages').values(queuedOutboundRow({ id, workspace_id: h.workspaceId, contact_id: contactId, channel: 'whatsapp', provider: 'whatsapp-cloud', recipient: `+${customer}`, kind: 'text', content: JSON.stringify({ kind: 'text', text }), now: clock.now() })).execute();
        const claimed = await h.ctx.database.db.transaction().execute((trx) => claimDueMessages(trx, h.ctx.database.sqlite, h.ctx.database.dialect, clock.now(), 10, lease, window));
        expect(claimed.map((m) => m.id)).toEqual([id]);
        return id;
      };

      // Meta took it (its status webhook names our message): settled, never sent again.
      const settled = await dying('Settled after the crash');
      const status = statusOf(wamid(), 'sent', Math.floor(clock.now() / 1000));
      (status.entry[0]!.changes[0]!.value as unknown as { statuses: Array<Record<string, unknown>> }).statuses[0]!.biz_opaque_callback_data = `nudge:${settled}`;
      clock.advance(lease + 1000);
      await h.worker.drain();
      expect(sends('Settled after the crash')).toBe(0);
      expect((await deliver(status)).statusCode).toBe(200);
      clock.advance(window);
      await h.worker.drain();
      expect(sends('Settled after the crash')).toBe(0);
      expect(await row(settled)).toMatchObject({ status: 'sent', next_attempt_at: null });

      // No callback ever comes: sent again once the window after the lease has passed.
      const lost = await dying('Lost in the crash');
      clock.advance(lease + window - 1000);
      await h.worker.drain();
      expect(sends('Lost in the crash')).toBe(0);
      clock.advance(2000);
      await h.worker.drain();
      expect(sends('Lost in the crash')).toBe(1);
      expect(await row(lost)).toMatchObject({ status: 'sent', attempts: 2 });
    });

    it('stores other message types with a summary and routes nothing for system messages', async () => {
      const image = messagesPayload({ messages: [{ from: '16505557777', id: wamid(), timestamp: '1750025136', type: 'image', image: { caption: 'my receipt', mime_type: 'image/jpeg', id: '1' } }] });
      expect((await deliver(image)).statusCode).toBe(200);
      const system = messagesPayload({ messages: [{ from: '16505557777', id: wamid(), timestamp: '1750025136', type: 'system', system: { body: 'changed number', type: 'user_changed_number' } }] });
      expect((await deliver(system)).statusCode).toBe(200);
      const contact = (await post('/api/v1/actions/get-contact', { phone: '+16505557777' })).json();
      const stored = await messages(`contact_id=${contact.id}`);
      expect(stored.map((m) => (m.content as { text: string }).text)).toEqual(['[image] my receipt']);
    });
  });

  describe('templates', () => {
    const shipped = {
      name: 'order_shipped',
      language: 'en_US',
      category: 'UTILITY',
      header: 'Order {{1}}',
      body: 'Hi {{1}}, your order {{2}} is on its way.',
      footer: 'Thanks for shopping',
      buttons: [{ type: 'URL', text: 'Track', url: 'https://shop.example.com/track/{{1}}' }, { type: 'QUICK_REPLY', text: 'Thanks' }],
      examples: { header_1: '#1001', '1': 'Ana', '2': '#1001', button_0: '1001' },
    };

    it('approves a template at once on the sandbox, without calling Meta', async () => {
      const res = await post('/api/v1/templates', { ...shipped, name: 'sandbox_welcome', body: 'Welcome {{1}}!', header: undefined, buttons: undefined, examples: undefined }, h.sandbox.auth);
      expect(res.statusCode, res.body).toBe(201);
      expect(res.json()).toMatchObject({ name: 'sandbox_welcome', status: 'APPROVED', provider_template_id: null, placeholders: ['1'] });
      expect(fake.requests).toHaveLength(0);
      const again = await post('/api/v1/templates', { name: 'sandbox_welcome', language: 'en_US', category: 'UTILITY', body: 'Other' }, h.sandbox.auth);
      expect(again.statusCode).toBe(409);
    });

    it("refuses templates that break Meta's rules, naming the field", async () => {
      const cases: Array<[Record<string, unknown>, string]> = [
        [{ body: 'Hi {{1}} and {{3}}' }, 'body'],
        [{ body: 'Hi {{name}}' }, 'body'],
        [{ header: 'A {{1}} and {{2}}' }, 'header'],
        [{ footer: 'Bye {{1}}' }, 'footer'],
        [{ name: 'Order Shipped' }, 'name'],
        [{ language: 'english' }, 'language'],
        [{ buttons: [{ type: 'URL', text: 'Go', url: 'https://x.example/{{1}}/more' }] }, 'buttons.0.url'],
        [{ buttons: [{ type: 'PHONE_NUMBER', text: 'Call', phone_number: '555' }] }, 'buttons.0.phone_number'],
        [{ buttons: [{ type: 'QUICK_REPLY', text: 'x'.repeat(26) }] }, 'buttons.0.text'],
        [{ buttons: [1, 2, 3].map(() => ({ type: 'URL', text: 'Go', url: 'https://x.example' })) }, 'buttons'],
        [{ category: 'PROMO' }, 'category'],
      ];
      for (const [change, field] of cases) {
        const res = await post('/api/v1/templates', { ...shipped, name: 'bad_one', ...change });
        expect(res.statusCode, `${JSON.stringify(change)} → ${res.body}`).toBe(422);
        expect(Object.keys(res.json().errors), JSON.stringify(change)).toContain(field);
      }
      expect(fake.calls('/message_templates')).toHaveLength(0);
    });

    let shippedId = '';
    it('submits a template to Meta when WhatsApp is configured and stores it PENDING with Meta\u2019s id', async () => {
      const res = await post('/api/v1/templates', shipped);
      expect(res.statusCode, res.body).toBe(201);
      const template = res.json();
      shippedId = template.id;
      const [call] = fake.calls('/message_templates');
      expect(call!.path).toBe(`/v23.0/${businessAccountId}/message_templates`);
      expect(call!.authorization).toBe(`Bearer ${fake.accessToken}`);
      expect(call!.body).toEqual({
        name: 'order_shipped',
        language: 'en_US',
        category: 'UTILITY',
        components: [
          { type: 'HEADER', format: 'TEXT', text: 'Order {{1}}', example: { header_text: ['#1001'] } },
          { type: 'BODY', text: 'Hi {{1}}, your order {{2}} is on its way.', example: { body_text: [['Ana', '#1001']] } },
          { type: 'FOOTER', text: 'Thanks for shopping' },
          { type: 'BUTTONS', buttons: [{ type: 'URL', text: 'Track', url: 'https://shop.example.com/track/{{1}}', example: ['1001'] }, { type: 'QUICK_REPLY', text: 'Thanks' }] },
        ],
      });
      expect(template).toMatchObject({ status: 'PENDING', provider_template_id: fake.templates.at(-1)!.id, placeholders: ['header_1', '1', '2', 'button_0'] });
    });

    it('answers Meta\u2019s refusal of a template with a 422 carrying its code', async () => {
      fake.templateCreateResponses.push(metaError(400, 100, 'Invalid parameter', { error_subcode: 2388023, details: 'Message template language is being deleted' }));
      const res = await post('/api/v1/templates', { ...shipped, name: 'refused_one' });
      expect(res.statusCode).toBe(422);
      expect(res.json()).toMatchObject({ code: 'business_rule', provider_code: '100' });
      expect((await get('/api/v1/templates?limit=200')).json().data.some((t: { name: string }) => t.name === 'refused_one')).toBe(false);
    });

    it('takes the review result from the message_template_status_update webhook', async () => {
      const remote = fake.templates.find((t) => t.name === 'order_shipped')!;
      const remoteId = remote.id;
      remote.status = 'APPROVED'; // Meta's review, which its webhook then reports.
      expect((await deliver(templateUpdate(remoteId, 'APPROVED', { message_template_name: 'order_shipped', message_template_language: 'en_US', reason: null }))).statusCode).toBe(200);
      expect((await get(`/api/v1/templates/${shippedId}`)).json()).toMatchObject({ status: 'APPROVED', rejected_reason: null });
      // Signed with the wrong secret: refused, nothing changes.
      expect((await deliver(templateUpdate(remoteId, 'REJECTED', { reason: 'INVALID_FORMAT' }), { secret: 'nope' })).statusCode).toBe(401);
      expect((await get(`/api/v1/templates/${shippedId}`)).json().status).toBe('APPROVED');
    });

    it('syncs with Meta page by page: statuses updated, templates made in WhatsApp Manager added', async () => {
      const pt = await post('/api/v1/templates', { ...shipped, language: 'pt_BR', body: 'Olá {{1}}, o seu pedido {{2}} está a caminho.' });
      expect(pt.json().status).toBe('PENDING');
      const ptRemote = fake.templates.find((t) => t.language === 'pt_BR')!;
      ptRemote.status = 'APPROVED';
      fake.templates.push(
        { id: '1192339204654487', name: 'hello_world', language: 'en_US', category: 'MARKETING', status: 'APPROVED', components: [{ type: 'HEADER', format: 'TEXT', text: 'Hello World' }, { type: 'BODY', text: 'Welcome and congratulations!!' }, { type: 'FOOTER', text: 'WhatsApp Business API Team' }] },
        { id: '920070352646140', name: '2023_april_promo', language: 'en_US', category: 'MARKETING', status: 'REJECTED', rejected_reason: 'INVALID_FORMAT', components: [{ type: 'BODY', text: 'Hi {{1}}, use promo code {{2}}' }, { type: 'BUTTONS', buttons: [{ text: 'Stop promotions', type: 'QUICK_REPLY' }] }] },
      );
      fake.requests.length = 0;
      expect(await syncTemplates(h.ctx, h.workspaceId)).toEqual({ created: 2, updated: 1 });
      expect(fake.calls('/message_templates', 'GET')).toHaveLength(2); // 4 templates, 2 per page
      expect(await syncTemplates(h.ctx, h.workspaceId)).toEqual({ created: 0, updated: 0 });
      const list = (await get('/api/v1/templates?limit=200')).json().data as Array<Record<string, unknown>>;
      expect(list.find((t) => t.language === 'pt_BR')!.status).toBe('APPROVED');
      expect(list.find((t) => t.name === '2023_april_promo')).toMatchObject({ status: 'REJECTED', rejected_reason: 'INVALID_FORMAT', placeholders: ['1', '2'], buttons: [{ type: 'QUICK_REPLY', text: 'Stop promotions' }] });
      expect(list.find((t) => t.name === 'hello_world')).toMatchObject({ status: 'APPROVED', header: 'Hello World', footer: 'WhatsApp Business API Team' });
    });

    it('syncs from the maintenance loop only when a run crosses a 10-minute boundary', async () => {
      const tenMinutes = 10 * minute;
      fake.requests.length = 0;
      await syncTemplatesWhenDue(h.ctx, tenMinutes * 1000 + 5 * minute, minute);
      expect(fake.calls('/message_templates', 'GET')).toHaveLength(0);
      await syncTemplatesWhenDue(h.ctx, tenMinutes * 1000 + 30_000, minute);
      expect(fake.calls('/message_templates', 'GET').length).toBeGreaterThan(0);
    });

    it('lists one entry per name with languages, and reads a template with its placeholders', async () => {
      const all = (await post('/api/v1/actions/list-templates', {})).json().data as Array<Record<string, unknown>>;
      expect(all.map((t) => t.name)).toEqual(['2023_april_promo', 'hello_world', 'order_shipped']);
      expect(all.find((t) => t.name === 'order_shipped')).toEqual({ id: shippedId, name: 'order_shipped', category: 'UTILITY', status: 'APPROVED', languages: ['en_US', 'pt_BR'] });
      const approved = (await post('/api/v1/actions/list-templates', { status: 'APPROVED' })).json().data as Array<{ name: string }>;
      expect(approved.map((t) => t.name)).toEqual(['hello_world', 'order_shipped']);
      expect((await post('/api/v1/actions/list-templates', { status: 'LIVE' })).statusCode).toBe(422);

      const detail = await post('/api/v1/actions/get-template', { template_id: shippedId });
      expect(detail.json()).toMatchObject({
        id: shippedId,
        language: 'en_US',
        languages: ['en_US', 'pt_BR'],
        header: 'Order {{1}}',
        body: shipped.body,
        footer: 'Thanks for shopping',
        buttons: shipped.buttons,
        placeholders: [
          { key: 'header_1', label: 'Header {{1}}' },
          { key: '1', label: 'Body {{1}}' },
          { key: '2', label: 'Body {{2}}' },
          { key: 'button_0', label: 'URL button "Track" {{1}}' },
        ],
      });
      expect((await post('/api/v1/actions/get-template', { template_id: shippedId }, h.sandbox.auth)).statusCode).toBe(404);
      expect((await post('/api/v1/actions/get-template', { template_id: 'nope' })).statusCode).toBe(404);

      expect((await get('/api/v1/dropdowns/templates')).json()).toEqual([
        { id: expect.any(String), label: 'hello_world (en_US)' },
        { id: shippedId, label: 'order_shipped (en_US, pt_BR)' },
      ]);
      expect((await get(`/api/v1/dropdowns/template-variables?template_id=${shippedId}`)).json()).toEqual([
        { id: 'header_1', label: 'Header {{1}}' },
        { id: '1', label: 'Body {{1}}' },
        { id: '2', label: 'Body {{2}}' },
        { id: 'button_0', label: 'URL button "Track" {{1}}' },
      ]);
    });

    it('pages the resource list with a cursor and filters by status', async () => {
      const first = (await get('/api/v1/templates?limit=2')).json();
      expect(first.data).toHaveLength(2);
      const second = (await get(`/api/v1/templates?limit=2&cursor=${first.next_cursor}`)).json();
      expect(second.data.map((t: { id: string }) => t.id)).not.toContain(first.data[0].id);
      const rejected = (await get('/api/v1/templates?status=REJECTED')).json().data as Array<{ name: string }>;
      expect(rejected.map((t) => t.name)).toEqual(['2023_april_promo']);
      expect((await get('/api/v1/templates?cursor=bogus')).statusCode).toBe(422);
      expect((await get('/api/v1/templates?status=LIVE')).statusCode).toBe(422);
    });

    describe('send-template-message', () => {
      const variables = { header_1: '#1001', '1': 'Ana', '2': '#1001', button_0: '1001' };
      const lastTemplateCall = () => fake.calls('/messages').at(-1)!.body as { template: { name: string; language: { code: string }; components: unknown[] } };

      it('refuses incomplete variables with the expected and missing placeholders', async () => {
        const res = await post('/api/v1/actions/send-template-message', { phone: '+16505552000', template_id: shippedId, variables: { '1': 'Ana', '2': '' } });
        expect(res.statusCode).toBe(422);
        expect(res.json()).toMatchObject({
          code: 'template_variables_missing',
          expected_placeholders: ['header_1', '1', '2', 'button_0'],
          missing: ['header_1', '2', 'button_0'],
          errors: { 'variables.2': ['variables.2 is required'] },
        });
        expect(fake.calls('/messages')).toHaveLength(0);
      });

      it('sends the template outside the 24-hour window, in the first approved language by default', async () => {
        const res = await post('/api/v1/actions/send-template-message', { phone: '+16505552001', template_id: shippedId, variables });
        expect(res.statusCode, res.body).toBe(200);
        const body = res.json();
        expect(body).toMatchObject({ status: 'sent', whatsapp_message_id: expect.stringMatching(/^wamid\./), contact_id: expect.any(String), language: 'en_US' });
        expect(lastTemplateCall()).toEqual({
          ...buildWhatsAppBody({ kind: 'template', name: 'order_shipped', language: 'en_US', components: { header: ['#1001'], body: ['Ana', '#1001'], buttons: [{ index: 0, sub_type: 'url', parameter: '1001' }] } }, '+16505552001'),
          biz_opaque_callback_data: `nudge:${body.id as string}`,
        });
        const contact = (await post('/api/v1/actions/get-contact', { phone: '+16505552001' })).json();
        expect(contact.id).toBe(body.contact_id);
        const [stored] = await messages(`contact_id=${contact.id}`);
        expect(stored).toMatchObject({ id: body.id, provider: 'whatsapp-cloud', provider_message_id: body.whatsapp_message_id, kind: 'template' });
      });

      it("falls back to the contact's language, and honours an explicit one", async () => {
        const created = await post('/api/v1/actions/create-contact', { phone: '+16505552002', name: 'João', language: 'pt' });
        expect(created.statusCode).toBe(201);
        const res = await post('/api/v1/actions/send-template-message', { phone: '+16505552002', template_id: shippedId, variables });
        expect(res.json().language).toBe('pt_BR');
        expect(lastTemplateCall().template.language.code).toBe('pt_BR');
        const explicit = await post('/api/v1/actions/send-template-message', { phone: '+16505552002', template_id: shippedId, language: 'en_US', variables });
        expect(explicit.json().language).toBe('en_US');
        expect(lastTemplateCall().template.language.code).toBe('en_US');
        const unknown = await post('/api/v1/actions/send-template-message', { phone: '+16505552002', template_id: shippedId, language: 'de', variables });
        expect(unknown.statusCode).toBe(422);
        expect(unknown.json().errors.language[0]).toContain('en_US, pt_BR');
      });

      it('refuses a template that is not approved (422) and an unknown or foreign one (404)', async () => {
        const pending = await post('/api/v1/templates', { name: 'pending_one', language: 'en_US', category: 'MARKETING', body: 'Sale!' });
        const notApproved = await post('/api/v1/actions/send-template-message', { phone: '+16505552003', template_id: pending.json().id, variables: {} });
        expect(notApproved.statusCode).toBe(422);
        expect(notApproved.json()).toMatchObject({ code: 'business_rule', template_status: 'PENDING' });
        const rejected = (await get('/api/v1/templates?status=REJECTED')).json().data[0].id;
        expect((await post('/api/v1/actions/send-template-message', { phone: '+16505552003', template_id: rejected, variables: { '1': 'a', '2': 'b' } })).statusCode).toBe(422);
        expect((await post('/api/v1/actions/send-template-message', { phone: '+16505552003', template_id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a99', variables: {} })).statusCode).toBe(404);
        expect((await post('/api/v1/actions/send-template-message', { phone: '+16505552003', template_id: shippedId, variables }, h.sandbox.auth)).statusCode).toBe(404);
        expect((await post('/api/v1/actions/send-template-message', { phone: 'not a phone', template_id: shippedId, variables })).statusCode).toBe(422);
        expect(fake.calls('/messages')).toHaveLength(0);
      });

      it('refuses variables over Meta\'s parameter limit before sending, naming the variable', async () => {
        const tooLong = sendTemplateMessage(h.ctx, h.workspaceId, { phone: '+16505552005', template_id: shippedId, variables: { ...variables, '2': 'x'.repeat(1025) } });
        await expect(tooLong).rejects.toMatchObject({ code: 'validation_failed', errors: { 'variables.2': ['variables.2 must be at most 1024 characters (got 1025)'] } });
        expect(fake.calls('/messages')).toHaveLength(0);
      });

      it('reports a Meta template error as a failed message', async () => {
        fake.messageResponses.push(metaError(404, 132001, 'Template name does not exist in the translation'));
        const res = await post('/api/v1/actions/send-template-message', { phone: '+16505552004', template_id: shippedId, variables });
        expect(res.statusCode).toBe(200);
        expect(res.json()).toMatchObject({ status: 'failed', whatsapp_message_id: null });
        const [stored] = await messages(`contact_id=${res.json().contact_id}`);
        expect(stored).toMatchObject({ status: 'failed', error_code: '132001' });
      });
    });

    it('deletes a template here and at Meta', async () => {
      const pending = (await get('/api/v1/templates?status=PENDING')).json().data.find((t: { name: string }) => t.name === 'pending_one');
      const res = await h.app.inject({ method: 'DELETE', url: `/api/v1/templates/${pending.id}`, headers: h.auth });
      expect(res.statusCode).toBe(200);
      expect(fake.calls('/message_templates', 'DELETE')[0]!.query.get('hsm_id')).toBe(pending.provider_template_id);
      expect(fake.templates.some((t) => t.id === pending.provider_template_id)).toBe(false);
      expect((await get(`/api/v1/templates/${pending.id}`)).statusCode).toBe(404);
      expect((await h.app.inject({ method: 'DELETE', url: `/api/v1/templates/${shippedId}`, headers: h.sandbox.auth })).statusCode).toBe(404);
    });
  });
});
