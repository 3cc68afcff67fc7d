import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp, type App } from '../../src/api/app.js';
import { twilioChannelFromSettings } from '../../src/channels/twilio-channel.js';
import { computeTwilioSignature, emptyTwiml } from '../../src/channels/twilio-webhooks.js';
import { ManualClock } from '../../src/domain/clock.js';
import { createToken, createWorkspace } from '../../src/engine/auth-service.js';
import { SettingsChannelRegistry } from '../../src/engine/channel-registry.js';
import type { Context } from '../../src/engine/context.js';
import { setProviderSettings } from '../../src/engine/provider-settings-service.js';
import { Worker } from '../../src/engine/worker.js';
import { createTestContext, type TestContext } from '../support/app.js';
import { dialects } from '../support/databases.js';
import { startFakeTwilio, type FakeTwilio } from '../support/fake-twilio.js';

const publicUrl = 'https://nudge.example.com';
const accountSid = `AC${'1'.repeat(32)}`;
const authToken = '0123456789abcdef0123456789abcdef';
const ourNumber = '+14155552345';
const minute = 60_000;

let sidSeq = 0;
const messageSid = () => `SM${String(++sidSeq).padStart(32, '0')}`;

/** A Twilio webhook request: the form as Twilio encodes it, signed over NUDGE_PUBLIC_URL + path. */
function twilioRequest(path: string, params: Record<string, string>, options: { token?: string; signingUrl?: string; unsigned?: boolean; signature?: string } = {}) {
  const body = new URLSearchParams(params).toString();
  const signature = options.signature ?? computeTwilioSignature(options.token ?? authToken, options.signingUrl ?? `${publicUrl}${path}`, params);
  return {
    method: 'POST' as const,
    url: path,
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...(options.unsigned ? {} : { 'x-twilio-signature': signature }) },
    payload: body,
  };
}

const inboundParams = (from: string, body: string, sid = messageSid()) => ({
  ToCountry: 'US',
  SmsMessageSid: sid,
  NumMedia: '0',
  SmsSid: sid,
  SmsStatus: 'received',
  Body: body,
  To: ourNumber,
  NumSegments: '1',
  MessageSid: sid,
  AccountSid: accountSid,
  From: from,
  ApiVersion: '2010-04-01',
});

const statusParams = (sid: string, status: string, to: string, errorCode?: string) => ({
  MessageSid: sid,
  SmsSid: sid,
  AccountSid: accountSid,
  MessageStatus: status,
  SmsStatus: status,
  From: ourNumber,
  To: to,
  ApiVersion: '2010-04-01',
  ...(errorCode ? { ErrorCode: errorCode } : {}),
});

const yesNoFlow = {
  name: 'SMS confirm',
  graph: {
    entry: 'ask',
    nodes: [
      { id: 'ask', type: 'send_message', channel: 'sms', content: { text: 'Confirm your visit on {{context.day}}? Reply YES or NO' } },
      { id: 'wait', type: 'wait_for_reply', timeout: { minutes: 30 }, branches: [{ id: 'yes', match: { type: 'keyword', keywords: ['yes'] } }, { id: 'no', match: { type: 'keyword', keywords: ['no'] } }] },
      { id: 'thanks', type: 'send_message', channel: 'sms', content: { text: 'See you on {{context.day}} 👋' } },
      { id: 'bye', type: 'send_message', channel: 'sms', content: { text: 'Cancelled.' } },
    ],
    edges: [
      { from: 'ask', to: 'wait' },
      { from: 'wait', to: 'thanks', branch: 'yes' },
      { from: 'wait', to: 'bye', branch: 'no' },
    ],
  },
};

describe.each(dialects)('Twilio SMS webhooks and sending on %s', (dialect) => {
  const clock = new ManualClock(Date.UTC(2026, 4, 7, 8, 0, 0));
  let base: TestContext;
  let ctx: Context;
  let app: App;
  let worker: Worker;
  let twilio: FakeTwilio;
  let workspaceId: string;
  let auth: Record<string, string>;

  beforeAll(async () => {
    twilio = await startFakeTwilio(accountSid, authToken);
    base = await createTestContext(dialect, { clock, env: { NUDGE_PUBLIC_URL: publicUrl } });
    // The real wiring: each workspace's adapter is built from its stored SMS settings.
    const registry = new SettingsChannelRegistry({ database: base.database, secretKey: base.secretKey, log: base.log, publicUrl, timeoutMs: 2000, whatsappRatePerSecond: 80, sandboxInline: true });
    registry.registerProvider('twilio', twilioChannelFromSettings);
    ctx = { ...base, channels: registry };
    const workspace = await createWorkspace(ctx, 'Acme');
    workspaceId = workspace.id;
    auth = { authorization: `Bearer ${(await createToken(ctx, { workspaceId, name: 'test', rateLimit: 1_000_000 })).token}` };
    await createWorkspace(ctx, 'Globex');
    await setProviderSettings(ctx, workspaceId, 'sms', { account_sid: accountSid, auth_token: authToken, from: ourNumber, base_url: twilio.baseUrl });
    app = await buildApp(ctx);
    await app.ready();
    worker = new Worker(ctx, registry, ctx.versions, null, { batchSize: 100, pollIntervalMs: 50, dispatchConcurrency: 4 });
  });
  afterAll(async () => {
    await app.close();
    await base.database.close();
    await twilio.close();
  });

  const events = () => ctx.database.db.selectFrom('webhook_events').selectAll().where('provider', '=', 'twilio').orderBy('id').execute();
  const messageRows = () => ctx.database.db.selectFrom('messages').selectAll().where('workspace_id', '=', workspaceId).orderBy('id').execute();
  const post = (url: string, payload: unknown) => app.inject({ method: 'POST', url, headers: auth, payload: payload as object });

  it('stores a signed inbound SMS and answers empty TwiML', async () => {
    const params = inboundParams('+14155550100', 'Hello there');
    const response = await app.inject(twilioRequest('/webhooks/twilio/inbound', params));
    expect(response.statusCode, response.body).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/xml/);
    expect(response.body).toBe(emptyTwiml);
    const stored = (await messageRows()).filter((m) => m.provider_message_id === params.MessageSid);
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({ direction: 'inbound', channel: 'sms', provider: 'twilio', status: 'received' });
    expect(JSON.parse(stored[0]!.content)).toMatchObject({ text: 'Hello there' });
    expect((await events()).at(-1)).toMatchObject({ workspace_id: workspaceId, outcome: 'accepted', reason: 'inbound' });
  });

  it('changes nothing when Twilio delivers the same message again', async () => {
    const params = inboundParams('+14155550101', 'Twice');
    expect((await app.inject(twilioRequest('/webhooks/twilio/inbound', params))).statusCode).toBe(200);
    expect((await app.inject(twilioRequest('/webhooks/twilio/inbound', params))).statusCode).toBe(200);
    expect((await messageRows()).filter((m) => m.provider_message_id === params.MessageSid)).toHaveLength(1);
  });

  it('accepts a signature computed over the URL with its default port', async () => {
    const params = inboundParams('+14155550102', 'Port');
    const response = await app.inject(twilioRequest('/webhooks/twilio/inbound', params, { signingUrl: 'https://nudge.example.com:443/webhooks/twilio/inbound' }));
    expect(response.statusCode, response.body).toBe(200);
  });

  it('refuses and records a forged request', async () => {
    const params = inboundParams('+14155550103', 'Give me everything');
    const request = twilioRequest('/webhooks/twilio/inbound', params, { token: 'not-the-auth-token' });
    const response = await app.inject(request);
    expect(response.statusCode).toBe(403);
    expect(response.json()).toEqual({
      error: 'X-Twilio-Signature does not match the request signed with the auth token',
      code: 'forbidden',
      message: 'X-Twilio-Signature does not match the request signed with the auth token',
    });
    expect((await messageRows()).some((m) => m.provider_message_id === params.MessageSid)).toBe(false);
    expect((await events()).at(-1)).toMatchObject({
      workspace_id: workspaceId,
      outcome: 'rejected',
      reason: 'inbound: invalid_signature',
      body_sha256: createHash('sha256').update(request.payload).digest('hex'),
    });
  });

  it('refuses a request whose parameters were changed after signing', async () => {
    const params = inboundParams('+14155550104', 'Original');
    const request = twilioRequest('/webhooks/twilio/inbound', params);
    const response = await app.inject({ ...request, payload: request.payload.replace('Original', 'Changed') });
    expect(response.statusCode).toBe(403);
  });

  it('refuses and records an unsigned request and one from an unknown account', async () => {
    const unsigned = await app.inject(twilioRequest('/webhooks/twilio/inbound', inboundParams('+14155550105', 'x'), { unsigned: true }));
    expect(unsigned.statusCode).toBe(403);
    expect(unsigned.json().code).toBe('forbidden');
    expect((await events()).at(-1)).toMatchObject({ workspace_id: null, outcome: 'rejected', reason: 'inbound: missing_signature' });

    const stranger = await app.inject(twilioRequest('/webhooks/twilio/inbound', { ...inboundParams('+14155550105', 'x'), AccountSid: `AC${'9'.repeat(32)}`, To: '+14155559999' }));
    expect(stranger.statusCode).toBe(403);
    expect(stranger.json().message).toContain(`AC${'9'.repeat(32)}`);
    expect((await events()).at(-1)).toMatchObject({ outcome: 'rejected', reason: 'inbound: unknown_account' });
  });

  it('names the missing field of a signed request with 422, and refuses JSON with 415', async () => {
    const params: Record<string, string> = inboundParams('+14155550106', 'x');
    delete params.MessageSid;
    const missing = await app.inject(twilioRequest('/webhooks/twilio/inbound', params));
    expect(missing.statusCode).toBe(422);
    expect(missing.json()).toMatchObject({ code: 'validation_failed', errors: { MessageSid: ['MessageSid is required'] } });

    const json = await app.inject({ method: 'POST', url: '/webhooks/twilio/inbound', headers: { 'content-type': 'application/json', 'x-twilio-signature': 'x' }, payload: { MessageSid: 'SM1' } });
    expect(json.statusCode).toBe(415);
    expect(json.json().code).toBe('unsupported_media_type');
  });

  it('runs a flow over SMS: sends through Twilio, applies statuses, and continues on a signed inbound reply', async () => {
    const created = await post('/api/v1/flows', yesNoFlow);
    expect(created.statusCode, created.body).toBe(201);
    const flowId = created.json().flow.id as string;
    expect((await post(`/api/v1/flows/${flowId}/enable`, {})).statusCode).toBe(200);
    const customer = '+14155550199';
    const started = await post('/api/v1/actions/trigger-flow', { flow_id: flowId, phone: customer, context: { day: 'Friday' } });
    expect(started.statusCode, started.body).toBe(201);
    const sessionId = started.json().id as string;

    await worker.drain();
    const question = twilio.sent.at(-1)!;
    expect(question).toMatchObject({ to: customer, from: ourNumber, body: 'Confirm your visit on Friday? Reply YES or NO', statusCallback: expect.stringMatching(new RegExp(`^${publicUrl}/webhooks/twilio/status\\?nudge_message_id=[0-9a-f-]{36}$`)) });
    const outbound = (await messageRows()).find((m) => m.session_id === sessionId && m.direction === 'outbound')!;
    expect(outbound).toMatchObject({ provider: 'twilio', provider_message_id: question.sid, status: 'sent', segments: 1, encoding: 'GSM-7' });

    // Status callbacks move the message forward, never back.
    expect((await app.inject(twilioRequest('/webhooks/twilio/status', statusParams(question.sid, 'delivered', customer)))).statusCode).toBe(200);
    expect((await messageRows()).find((m) => m.id === outbound.id)).toMatchObject({ status: 'delivered' });
    expect((await app.inject(twilioRequest('/webhooks/twilio/status', statusParams(question.sid, 'sent', customer)))).statusCode).toBe(200);
    expect((await app.inject(twilioRequest('/webhooks/twilio/status', statusParams(question.sid, 'undelivered', customer, '30003')))).statusCode).toBe(200);
    const afterLate = (await messageRows()).find((m) => m.id === outbound.id)!;
    expect(afterLate).toMatchObject({ status: 'delivered', error_code: null });
    expect(afterLate.delivered_at).not.toBeNull();

    clock.advance(3 * minute);
    const reply = await app.inject(twilioRequest('/webhooks/twilio/inbound', inboundParams(customer, 'YES')));
    expect(reply.statusCode, reply.body).toBe(200);
    await worker.drain();
    expect(twilio.sent.at(-1)).toMatchObject({ to: customer, body: 'See you on Friday 👋' });
    const goodbye = (await messageRows()).find((m) => m.session_id === sessionId && m.direction === 'outbound' && m.provider_message_id === twilio.sent.at(-1)!.sid)!;
    expect(goodbye).toMatchObject({ segments: 1, encoding: 'UCS-2' });
    const session = (await app.inject({ method: 'GET', url: `/api/v1/sessions/${sessionId}`, headers: auth })).json();
    expect(session.status).toBe('completed');
    expect(session.history.find((h: { node_id: string; outcome: string }) => h.node_id === 'wait' && h.outcome === 'replied').detail.branch).toBe('yes');
  });

  it('marks a message failed with Twilio\u2019s error code when it is undelivered', async () => {
    const flowId = (await post('/api/v1/flows', { ...yesNoFlow, name: 'SMS confirm 2' })).json().flow.id as string;
    await post(`/api/v1/flows/${flowId}/enable`, {});
    const customer = '+14155550198';
    const sessionId = (await post('/api/v1/actions/trigger-flow', { flow_id: flowId, phone: customer, context: { day: 'Monday' } })).json().id as string;
    await worker.drain();
    const sid = twilio.sent.at(-1)!.sid;
    expect((await app.inject(twilioRequest('/webhooks/twilio/status', statusParams(sid, 'undelivered', customer, '30003')))).statusCode).toBe(200);
    const message = (await messageRows()).find((m) => m.session_id === sessionId && m.direction === 'outbound')!;
    expect(message).toMatchObject({ status: 'failed', error_code: '30003' });
    expect(message.error_message).toContain('undelivered');
    // A failed message stays failed.
    await app.inject(twilioRequest('/webhooks/twilio/status', statusParams(sid, 'delivered', customer)));
    expect((await messageRows()).find((m) => m.id === message.id)).toMatchObject({ status: 'failed' });
    // A status for a message Nudge never sent is accepted and changes nothing.
    expect((await app.inject(twilioRequest('/webhooks/twilio/status', statusParams(messageSid(), 'delivered', customer)))).statusCode).toBe(200);
  });
});
