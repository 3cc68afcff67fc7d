import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { computeTwilioSignature, validateTwilioSignature } from '../../src/channels/twilio-webhooks.js';
import { signBody, verifySignature } from '../../src/channels/whatsapp-webhooks.js';
import { signTrackingToken } from '../../src/domain/link-tracking.js';
import { signUnsubscribeToken } from '../../src/domain/unsubscribe-token.js';
import { createWorkspace } from '../../src/engine/auth-service.js';
import { setProviderSettings } from '../../src/engine/provider-settings-service.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { dialects } from '../support/databases.js';
import { changedTables, fingerprint } from './support/db-state.js';
import { report } from './support/mode.js';

/**
 * Everything Nudge accepts on the strength of a signature: provider webhooks
 * (X-Hub-Signature-256 from Meta, X-Twilio-Signature from Twilio) and signed links
 * (unsubscribe tokens, tracked email links under /t/). Each surface below has a genuine
 * request, which is accepted, and forgeries — missing, bad, replayed elsewhere,
 * re-serialised, signed with another workspace's secret — each refused with nothing
 * written (the log of refused webhooks aside). A surface added later is one more entry
 * in `surfaces`. (The signatures Nudge puts on its outbound webhooks are checked by the
 * receiver; test/engine/webhooks.test.ts verifies them.)
 */

const reference = new URL('../fixtures/reference/payloads/', import.meta.url);
const readVectors = <T>(path: string): T => JSON.parse(readFileSync(fileURLToPath(new URL(path, reference)), 'utf8')) as T;

const publicUrl = 'https://nudge.example.com';

interface Forgery {
  name: string;
  request: InjectOptions;
  /** Statuses that count as refused (default 401 and 403). */
  refused?: number[];
}

interface SignedSurface {
  name: string;
  /** The genuine request: accepted, and it changes the database. */
  genuine: InjectOptions;
  accepted: number;
  forgeries: Forgery[];
  /**
   * The genuine request sent again as it is. `idempotent`: accepted and changes nothing
   * more (providers redeliver); `refused`: a one-time signature; `counted`: accepted
   * again and recorded again (a second click on a link is a second click).
   */
  replay: 'idempotent' | 'refused' | 'counted';
  /** Requests that differ in bytes but are the same signed content: accepted, nothing more changes. */
  equivalents?: Forgery[];
}

interface World {
  t: TestApp;
  a: { workspaceId: string; phoneNumberId: string; appSecret: string; accountSid: string; authToken: string; contactId: string };
  b: { workspaceId: string; phoneNumberId: string; appSecret: string; accountSid: string; authToken: string; contactId: string };
}

let wamidSeq = 0;
let sidSeq = 0;

function metaInbound(phoneNumberId: string, text: string): Record<string, unknown> {
  wamidSeq += 1;
  return {
    object: 'whatsapp_business_account',
    entry: [
      {
        id: '102290129340398',
        changes: [
          {
            field: 'messages',
            value: {
              messaging_product: 'whatsapp',
              metadata: { display_phone_number: '15550783881', phone_number_id: phoneNumberId },
              contacts: [{ profile: { name: 'Zoë Forger' }, wa_id: '16505551234' }],
              messages: [{ from: '16505551234', id: `wamid.FORGERY${String(wamidSeq).padStart(8, '0')}`, timestamp: '1750025136', type: 'text', text: { body: text } }],
            },
          },
        ],
      },
    ],
  };
}

/** Meta's own serialisation: compact, non-ASCII escaped as \uXXXX (what it signs). */
function metaBytes(payload: unknown): Buffer {
  return Buffer.from(JSON.stringify(payload).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`), 'utf8');
}

function whatsappSurface(w: World): SignedSurface {
  const payload = metaInbound(w.a.phoneNumberId, 'Olá, é o João — está tudo bem?');
  const raw = metaBytes(payload);
  const signature = signBody(raw, w.a.appSecret);
  const post = (body: Buffer, headers: Record<string, string>): InjectOptions => ({ method: 'POST', url: '/webhooks/whatsapp', headers: { 'content-type': 'application/json', ...headers }, payload: body });
  const signed = (body: Buffer, sig = signature) => post(body, { 'x-hub-signature-256': sig });
  const hex = signature.slice('sha256='.length);
  const flipped = `sha256=${hex.slice(0, -1)}${hex.endsWith('0') ? '1' : '0'}`;
  const reordered = { entry: payload.entry, object: payload.object };
  return {
    name: 'WhatsApp webhook (X-Hub-Signature-256)',
    genuine: signed(raw),
    accepted: 200,
    replay: 'idempotent',
    forgeries: [
      { name: 'no signature', request: post(raw, {}) },
      { name: 'empty signature', request: signed(raw, '') },
      { name: 'one hex digit changed', request: signed(raw, flipped) },
      { name: 'truncated signature', request: signed(raw, signature.slice(0, -2)) },
      { name: 'signature without the sha256= prefix', request: signed(raw, hex) },
      { name: 'SHA-1 instead of SHA-256', request: signed(raw, `sha1=${createHmac('sha1', w.a.appSecret).update(raw).digest('hex')}`) },
      { name: 'signed with another workspace\u2019s app secret', request: signed(raw, signBody(raw, w.b.appSecret)) },
      { name: 'signed with the app secret of the workspace the payload does not name', request: signed(metaBytes(metaInbound(w.b.phoneNumberId, 'hi')), signBody(metaBytes(metaInbound(w.b.phoneNumberId, 'hi')), w.a.appSecret)) },
      { name: 'body modified after signing', request: signed(Buffer.from(raw.toString('utf8').replace('tudo bem', 'tudo mal'))) },
      { name: 're-serialised with indentation', request: signed(Buffer.from(JSON.stringify(payload, null, 2))) },
      { name: 're-serialised with keys in another order', request: signed(metaBytes(reordered)) },
      { name: 're-serialised with unicode unescaped', request: signed(Buffer.from(JSON.stringify(payload), 'utf8')) },
      { name: 'a trailing newline added', request: signed(Buffer.concat([raw, Buffer.from('\n')])) },
    ],
  };
}

function twilioForm(accountSid: string, to: string, body: string, sid: string): Record<string, string> {
  return { ToCountry: 'US', SmsMessageSid: sid, NumMedia: '0', SmsSid: sid, SmsStatus: 'received', Body: body, To: to, NumSegments: '1', MessageSid: sid, AccountSid: accountSid, From: '+14155550100', ApiVersion: '2010-04-01' };
}

function twilioSurface(w: World): SignedSurface {
  sidSeq += 1;
  const sid = `SM${String(sidSeq).padStart(32, '0')}`;
  const params = twilioForm(w.a.accountSid, '+14155552345', 'Forged or not?', sid);
  const path = '/webhooks/twilio/inbound';
  const signature = computeTwilioSignature(w.a.authToken, `${publicUrl}${path}`, params);
  const form = (p: Record<string, string>) => new URLSearchParams(p).toString();
  const post = (url: string, body: string, sig: string | null): InjectOptions => ({
    method: 'POST',
    url,
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...(sig === null ? {} : { 'x-twilio-signature': sig }) },
    payload: body,
  });
  const statusUrl = (id: string) => `/webhooks/twilio/status?nudge_message_id=${id}`;
  const statusParams = { MessageSid: sid, SmsSid: sid, AccountSid: w.a.accountSid, MessageStatus: 'delivered', SmsStatus: 'delivered', From: '+14155552345', To: '+14155550100', ApiVersion: '2010-04-01' };
  const someId = '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b';
  const statusSignature = computeTwilioSignature(w.a.authToken, `${publicUrl}${statusUrl(someId)}`, statusParams);
  const reversed = Object.fromEntries(Object.entries(params).reverse());
  return {
    name: 'Twilio webhook (X-Twilio-Signature)',
    genuine: post(path, form(params), signature),
    accepted: 200,
    replay: 'idempotent',
    forgeries: [
      { name: 'no signature', request: post(path, form(params), null) },
      { name: 'garbage signature', request: post(path, form(params), 'not-base64!') },
      { name: 'signed with another workspace\u2019s auth token', request: post(path, form(params), computeTwilioSignature(w.b.authToken, `${publicUrl}${path}`, params)) },
      { name: 'the same signature on the status URL', request: post('/webhooks/twilio/status', form(params), signature) },
      { name: 'the same signature with a query string added', request: post(`${path}?x=1`, form(params), signature) },
      { name: 'signed over http:// instead of https://', request: post(path, form(params), computeTwilioSignature(w.a.authToken, `${publicUrl.replace('https', 'http')}${path}`, params)) },
      { name: 'signed over another host', request: post(path, form(params), computeTwilioSignature(w.a.authToken, `https://attacker.example.com${path}`, params)) },
      { name: 'Body changed after signing', request: post(path, form({ ...params, Body: 'STOP' }), signature) },
      { name: 'From changed after signing', request: post(path, form({ ...params, From: '+14155550999' }), signature) },
      { name: 'a parameter added', request: post(path, form({ ...params, Extra: '1' }), signature) },
      { name: 'a parameter removed', request: post(path, form(Object.fromEntries(Object.entries(params).filter(([k]) => k !== 'NumMedia'))), signature) },
      { name: 'a status callback\u2019s signature replayed for another message id', request: post(statusUrl('0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c'), form(statusParams), statusSignature) },
    ],
    equivalents: [
      // Twilio signs the sorted parameters, not the bytes: the same parameters encoded otherwise are the same request.
      { name: 'the same parameters in another order', request: post(path, form(reversed), signature) },
      { name: 'spaces as %20 instead of +', request: post(path, form(params).replace(/\+/g, '%20'), signature) },
    ],
  };
}

/** A `payload.mac` token in standard, padded base64: always other text (the 32-byte MAC takes a `=`), even when base64url used no `-` or `_`. */
function standardBase64(token: string): string {
  return token
    .split('.')
    .map((part) => Buffer.from(part, 'base64url').toString('base64'))
    .join('.');
}

function unsubscribeSurface(w: World): SignedSurface {
  const key = w.t.ctx.secretKey;
  const token = signUnsubscribeToken(key, { workspaceId: w.a.workspaceId, contactId: w.a.contactId, channel: 'email' });
  const [payload, mac] = token.split('.') as [string, string];
  const bytes = Buffer.from(payload, 'base64url');
  const withPayload = (b: Buffer) => `${b.toString('base64url')}.${mac}`;
  const otherContact = Buffer.from(bytes);
  otherContact.set(Buffer.from(w.b.contactId.replace(/-/g, ''), 'hex'), 17);
  const otherChannel = Buffer.from(bytes);
  otherChannel[0] = 1; // sms
  const flip = (s: string) => `${s.slice(0, -1)}${s.endsWith('A') ? 'B' : 'A'}`;
  const post = (t: string): InjectOptions => ({ method: 'POST', url: `/unsubscribe/${encodeURIComponent(t)}`, headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'List-Unsubscribe=One-Click' });
  return {
    name: 'Unsubscribe link token',
    genuine: post(token),
    accepted: 200,
    replay: 'idempotent',
    forgeries: [
      { name: 'one character of the MAC changed', request: post(`${payload}.${flip(mac)}`), refused: [400] },
      { name: 'pointed at another workspace\u2019s contact', request: post(withPayload(otherContact)), refused: [400] },
      { name: 'channel byte changed', request: post(withPayload(otherChannel)), refused: [400] },
      { name: 'signed with another key', request: post(signUnsubscribeToken(`${key}-other`, { workspaceId: w.a.workspaceId, contactId: w.a.contactId, channel: 'email' })), refused: [400] },
      { name: 'MAC missing', request: post(payload), refused: [400] },
      { name: 'truncated', request: post(token.slice(0, -1)), refused: [400] },
      { name: 'a character appended', request: post(`${token}A`), refused: [400] },
      { name: 'base64 padding added', request: post(`${payload}=.${mac}=`), refused: [400] },
      { name: 'standard base64 instead of base64url', request: post(standardBase64(token)), refused: [400] },
      { name: 'longer than any real token', request: post('A'.repeat(1001)), refused: [400, 422] },
    ],
  };
}

async function clickSurface(w: World): Promise<SignedSurface> {
  const key = w.t.ctx.secretKey;
  // An outbound message of workspace A: a text sent over SMS (its provider is not there; the message is stored all the same).
  await w.t.app.inject({ method: 'POST', url: '/api/v1/actions/send-text-message', headers: { authorization: `Bearer ${w.t.token}` }, payload: { phone: '+14155550177', message: 'Spring sale: https://shop.example.com/spring', channel: 'sms' } });
  const message = await w.t.ctx.database.db.selectFrom('messages').select('id').where('workspace_id', '=', w.a.workspaceId).where('direction', '=', 'outbound').executeTakeFirstOrThrow();
  const destination = 'https://shop.example.com/spring?utm_source=nudge&a=1';
  const token = signTrackingToken(message.id, destination, key);
  const [payload, mac] = token.split('.') as [string, string];
  const bytes = Buffer.from(payload, 'base64url');
  const withPayload = (b: Buffer) => `${b.toString('base64url')}.${mac}`;
  const elsewhere = Buffer.concat([bytes.subarray(0, 16), Buffer.from('https://attacker.example.com/spring?utm_source=nudge&a=1', 'utf8')]);
  const otherMessage = Buffer.from(bytes);
  otherMessage[15] = otherMessage[15]! ^ 1;
  const flip = (s: string) => `${s.slice(0, -1)}${s.endsWith('A') ? 'B' : 'A'}`;
  const get = (t: string): InjectOptions => ({ method: 'GET', url: `/t/${t}`, headers: { accept: 'text/html' } });
  const unsubscribe = signUnsubscribeToken(key, { workspaceId: w.a.workspaceId, contactId: w.a.contactId, channel: 'email' });
  return {
    name: 'Tracked email link (/t/ token)',
    genuine: get(token),
    accepted: 302,
    replay: 'counted',
    forgeries: [
      { name: 'the destination changed (an open redirect)', request: get(withPayload(elsewhere)), refused: [404] },
      { name: 'another message id under the same MAC', request: get(withPayload(otherMessage)), refused: [404] },
      { name: 'one character of the MAC changed', request: get(`${payload}.${flip(mac)}`), refused: [404] },
      { name: 'signed with another key', request: get(signTrackingToken(message.id, destination, `${key}-other`)), refused: [404] },
      { name: 'an unsubscribe token (same key, other purpose)', request: get(unsubscribe), refused: [404] },
      { name: 'MAC missing', request: get(payload), refused: [404] },
      { name: 'truncated', request: get(token.slice(0, -1)), refused: [404] },
      { name: 'standard base64 instead of base64url', request: get(standardBase64(token)), refused: [404] },
      { name: 'longer than any real token', request: get('A'.repeat(9000)), refused: [404, 422] },
    ],
  };
}

describe.each(dialects)('signed requests and links on %s', (dialect) => {
  let w: World;

  beforeAll(async () => {
    const t = await createTestApp(dialect, { env: { NUDGE_PUBLIC_URL: publicUrl } });
    const b = await createWorkspace(t.ctx, 'Forgery B');
    const party = async (workspaceId: string, n: number) => {
      const side = { workspaceId, phoneNumberId: `10654035224292${n}`, appSecret: `app-secret-of-workspace-${n}`, accountSid: `AC${String(n).repeat(32)}`, authToken: `auth-token-of-workspace-${n}-0123456789`, contactId: '' };
      await setProviderSettings(t.ctx, workspaceId, 'whatsapp', { phone_number_id: side.phoneNumberId, access_token: `token-${n}`, app_secret: side.appSecret, base_url: 'http://127.0.0.1:2' });
      await setProviderSettings(t.ctx, workspaceId, 'sms', { account_sid: side.accountSid, auth_token: side.authToken, from: `+1415555234${4 + n}`, base_url: 'http://127.0.0.1:2' });
      return side;
    };
    const a = await party(t.workspaceId, 1);
    const bSide = await party(b.id, 2);
    const contact = async (token: string, email: string) =>
      (await t.app.inject({ method: 'POST', url: '/api/v1/actions/create-contact', headers: { authorization: `Bearer ${token}` }, payload: { phone: '+14155550177', email } })).json().id as string;
    a.contactId = await contact(t.token, 'forgery-a@example.com');
    const { createToken } = await import('../../src/engine/auth-service.js');
    bSide.contactId = await contact((await createToken(t.ctx, { workspaceId: b.id, name: 'b', rateLimit: 1_000_000 })).token, 'forgery-b@example.com');
    w = { t, a, b: bSide };
  });
  afterAll(async () => w.t.close());

  // Built one after the other: a later surface may use what an earlier one's genuine request stored.
  const surfaces: Array<(world: World) => SignedSurface | Promise<SignedSurface>> = [whatsappSurface, twilioSurface, unsubscribeSurface, clickSurface];

  it('refuses every forgery of every signed surface and writes nothing, then accepts the genuine request', async () => {
    const summary: Record<string, { forgeries: number; equivalents: number }> = {};
    for (const make of surfaces) {
      const surface = await make(w);
      const wrong: string[] = [];
      // Forgeries first: the genuine request must still work after them, and they must not have done its work.
      for (const forgery of surface.forgeries) {
        const before = await fingerprint(w.t.ctx.database);
        const res = await w.t.app.inject(forgery.request);
        const changed = changedTables(before, await fingerprint(w.t.ctx.database));
        if (!(forgery.refused ?? [401, 403]).includes(res.statusCode)) wrong.push(`${forgery.name}: answered ${res.statusCode} ${res.body.slice(0, 150)}`);
        if (changed.length > 0) wrong.push(`${forgery.name}: changed ${changed.join(', ')}`);
      }
      const before = await fingerprint(w.t.ctx.database);
      const genuine = await w.t.app.inject(surface.genuine);
      if (genuine.statusCode !== surface.accepted) wrong.push(`genuine: answered ${genuine.statusCode} ${genuine.body.slice(0, 200)}`);
      const applied = await fingerprint(w.t.ctx.database);
      if (changedTables(before, applied).length === 0) wrong.push('genuine: changed nothing');
      const again = await w.t.app.inject(surface.genuine);
      const afterReplay = await fingerprint(w.t.ctx.database);
      if (surface.replay === 'idempotent') {
        if (again.statusCode !== surface.accepted) wrong.push(`replay: answered ${again.statusCode}`);
        // Redelivery may touch timestamps (updated_at) but adds no row.
        const added = Object.keys(applied).filter((table) => applied[table]!.split(':')[0] !== afterReplay[table]!.split(':')[0]);
        if (added.length > 0) wrong.push(`replay: added rows to ${added.join(', ')}`);
      } else if (surface.replay === 'counted') {
        if (again.statusCode !== surface.accepted) wrong.push(`replay: answered ${again.statusCode}`);
        if (changedTables(applied, afterReplay).length === 0) wrong.push('replay: was not recorded');
      } else if (again.statusCode < 400) {
        wrong.push(`replay: answered ${again.statusCode}`);
      }
      for (const same of surface.equivalents ?? []) {
        const res = await w.t.app.inject(same.request);
        const now = await fingerprint(w.t.ctx.database);
        if (res.statusCode !== surface.accepted) wrong.push(`${same.name}: answered ${res.statusCode} ${res.body.slice(0, 150)}`);
        const added = Object.keys(now).filter((table) => now[table]!.split(':')[0] !== afterReplay[table]!.split(':')[0]);
        if (added.length > 0) wrong.push(`${same.name}: added rows to ${added.join(', ')}`);
      }
      expect({ surface: surface.name, wrong }).toEqual({ surface: surface.name, wrong: [] });
      summary[surface.name] = { forgeries: surface.forgeries.length, equivalents: surface.equivalents?.length ?? 0 };
    }
    report(`forgery-${dialect}`, summary);
  });

  it('records every refused webhook with its reason, never its content', async () => {
    const rows = await w.t.ctx.database.db.selectFrom('webhook_events').selectAll().where('outcome', '=', 'rejected').execute();
    expect(rows.length).toBeGreaterThanOrEqual(20);
    for (const row of rows) {
      expect(row.reason).toBeTruthy();
      expect(row.body_sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(JSON.stringify(row)).not.toContain('Forged or not');
    }
  });
});

describe('signature test vectors from the providers\u2019 own libraries', () => {
  it('X-Hub-Signature-256: every vector verifies over the bytes as signed, and only those', () => {
    const { vectors } = readVectors<{ vectors: Array<{ appSecret: string; body: string; bodyAsSigned?: string; header: string; headerIfUnescapedUtf8WouldBe_WRONG?: string }> }>('meta-signature/x-hub-signature-256-vectors.json');
    for (const v of vectors) {
      const signedBytes = Buffer.from(v.bodyAsSigned ?? v.body, 'utf8');
      expect(verifySignature(signedBytes, v.header, v.appSecret)).toBe(true);
      expect(signBody(signedBytes, v.appSecret)).toBe(v.header);
      expect(verifySignature(signedBytes, v.header, `${v.appSecret}x`)).toBe(false);
      if (v.bodyAsSigned) {
        // The same text with its unicode unescaped is other bytes: the signature no longer holds.
        expect(verifySignature(Buffer.from(v.body, 'utf8'), v.header, v.appSecret)).toBe(false);
        expect(verifySignature(signedBytes, v.headerIfUnescapedUtf8WouldBe_WRONG, v.appSecret)).toBe(false);
      }
    }
  });

  it('X-Twilio-Signature: every vector verifies as its library says, and fails once anything changes', () => {
    const file = readVectors<{ authToken: string; vectors: Array<{ name: string; url: string; params: Record<string, string | string[]>; body?: string; signature: string; valid?: boolean }> }>('twilio/x-twilio-signature-vectors.json');
    for (const v of file.vectors) {
      const valid = v.valid !== false;
      expect({ name: v.name, ok: validateTwilioSignature(file.authToken, v.url, v.params, v.signature, v.body) }).toEqual({ name: v.name, ok: valid });
      if (!valid) continue;
      expect({ name: v.name, otherToken: validateTwilioSignature(`${file.authToken}6`, v.url, v.params, v.signature, v.body) }).toEqual({ name: v.name, otherToken: false });
      expect({ name: v.name, otherUrl: validateTwilioSignature(file.authToken, `${v.url}&z=1`, v.params, v.signature, v.body) }).toEqual({ name: v.name, otherUrl: false });
      if (Object.keys(v.params).length > 0) expect({ name: v.name, extraParam: validateTwilioSignature(file.authToken, v.url, { ...v.params, Extra: 'x' }, v.signature, v.body) }).toEqual({ name: v.name, extraParam: false });
      if (v.body) expect({ name: v.name, otherBody: validateTwilioSignature(file.authToken, v.url, v.params, v.signature, `${v.body} `) }).toEqual({ name: v.name, otherBody: false });
    }
  });
});
