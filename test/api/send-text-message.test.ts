import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/domain/clock.js';
import { queueDirectMessage } from '../../src/engine/messaging-service.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { dialects } from '../support/databases.js';
import { createTestWorker } from '../support/engine.js';
import { FakeMeta, metaError } from '../support/fake-meta.js';

const hour = 3_600_000;

describe.each(dialects)('send-text-message on %s', (dialect) => {
  let t: TestApp;
  let meta: FakeMeta;
  // Mid-second, so the per-number rate window never sits in its last 100 ms.
  const clock = new ManualClock(Date.UTC(2026, 4, 7, 8, 0, 0) + 300);
  beforeAll(async () => {
    meta = await new FakeMeta().start();
    t = await createTestApp(dialect, { clock });
  });
  afterAll(async () => {
    await t.close();
    await meta.stop();
  });

  const post = (url: string, payload: object, headers: Record<string, string> = t.auth) => t.app.inject({ method: 'POST', url, headers, payload });
  const send = (payload: object, headers: Record<string, string> = t.auth) => post('/api/v1/actions/send-text-message', payload, headers);
  const graphSends = () => meta.requests.filter((r) => r.path.endsWith('/messages'));
  const connectWhatsApp = async () => {
    const res = await t.app.inject({
      method: 'PUT',
      url: '/api/v1/settings/channels/whatsapp',
      headers: t.auth,
      payload: { phone_number_id: '106540352242922', access_token: meta.accessToken, base_url: meta.url },
    });
    expect(res.statusCode, res.body).toBe(200);
  };

  it('sends through the sandbox without a service window, upserting the contact', async () => {
    const res = await send({ phone: '+14155550101', message: 'Your order has shipped' });
    expect(res.statusCode, res.body).toBe(201);
    const body = res.json();
    expect(Object.keys(body).sort()).toEqual(['contact_id', 'id', 'provider_message_id', 'status', 'whatsapp_message_id']);
    expect(body).toMatchObject({ status: 'delivered', whatsapp_message_id: null });
    const contact = await post('/api/v1/actions/get-contact', { phone: '+14155550101' });
    expect(contact.json().id).toBe(body.contact_id);
    expect(contact.json().total_messages).toBe(1);
  });

  it('accepts 4096 characters and refuses 4097 naming message, and a blank or missing field', async () => {
    expect((await send({ phone: '+14155550101', message: 'x'.repeat(4096) })).statusCode).toBe(201);
    const long = await send({ phone: '+14155550101', message: 'x'.repeat(4097) });
    expect(long.statusCode).toBe(422);
    expect(long.json().errors).toHaveProperty('message');
    const blank = await send({ phone: '+14155550101', message: '   ' });
    expect(blank.statusCode).toBe(422);
    expect(blank.json().errors).toHaveProperty('message');
    const phone = await send({ phone: 'not a phone', message: 'hi' });
    expect(phone.statusCode).toBe(422);
    expect(phone.json().errors).toHaveProperty('phone');
    const channel = await send({ phone: '+14155550101', message: 'hi', channel: 'fax' });
    expect(channel.statusCode).toBe(422);
    expect(channel.json().errors).toHaveProperty('channel');
  });

  it('is idempotent with an Idempotency-Key, at the API and in the service', async () => {
    const headers = { ...t.auth, 'idempotency-key': 'order-1042-shipped' };
    const first = await send({ phone: '+14155550102', message: 'Shipped' }, headers);
    const again = await send({ phone: '+14155550102', message: 'Shipped' }, headers);
    expect(first.statusCode).toBe(201);
    expect(again.json().id).toBe(first.json().id);
    const contactId = first.json().contact_id as string;
    const a = await queueDirectMessage(t.ctx, { workspaceId: t.workspaceId, contactId, channel: 'sms', content: { kind: 'text', text: 'x' }, marketing: false, idempotencyKey: 'k1' });
    const b = await queueDirectMessage(t.ctx, { workspaceId: t.workspaceId, contactId, channel: 'sms', content: { kind: 'text', text: 'x' }, marketing: false, idempotencyKey: 'k1' });
    expect(b.messageId).toBe(a.messageId);
    const stored = await t.ctx.database.db.selectFrom('messages').select('id').where('contact_id', '=', contactId).execute();
    expect(stored).toHaveLength(2);
  });

  it('with real WhatsApp settings, refuses a contact outside the 24-hour window with 131047 before reaching Meta', async () => {
    await connectWhatsApp();
    const outside = await send({ phone: '+14155550103', message: 'Hello there' });
    expect(outside.statusCode).toBe(422);
    expect(outside.json()).toMatchObject({ code: 'outside_service_window', provider_code: 131047 });
    expect(graphSends()).toHaveLength(0);
    // Nothing was written: not even the contact.
    expect((await post('/api/v1/actions/get-contact', { phone: '+14155550103' })).statusCode).toBe(404);

    // The customer writes: the window opens and the text goes to Meta at once.
    const inbound = await post('/api/v1/sandbox/inbound', { channel: 'whatsapp', phone: '+14155550103', text: 'Hi, where is my order?' });
    expect(inbound.statusCode, inbound.body).toBe(201);
    const inside = await send({ phone: '+14155550103', message: 'It ships today' });
    expect(inside.statusCode, inside.body).toBe(201);
    expect(inside.json()).toMatchObject({ status: 'sent', whatsapp_message_id: expect.stringMatching(/^wamid\./) });
    expect(graphSends()).toHaveLength(1);
    expect(graphSends()[0]!.body).toMatchObject({ messaging_product: 'whatsapp', to: '14155550103', type: 'text', text: { body: 'It ships today' } });

    clock.advance(24 * hour);
    const later = await send({ phone: '+14155550103', message: 'Still there?' });
    expect(later.statusCode).toBe(422);
    expect(later.json().provider_code).toBe(131047);
    expect(graphSends()).toHaveLength(1);
  });

  it('fails a free-form WhatsApp step outside the window with 131047 and applies the node failure policy', async () => {
    const created = await post('/api/v1/sequences', { name: 'Outside window', steps: [{ type: 'whatsapp', text: 'Hi {{first_name}}' }, { type: 'whatsapp', text: 'Second' }] });
    expect(created.statusCode, created.body).toBe(201);
    const id = created.json().sequence.id as string;
    expect((await post(`/api/v1/sequences/${id}/publish`, {})).statusCode).toBe(200);
    const started = await post('/api/v1/actions/trigger-sequence', { sequence_id: id, phone: '+14155550104' });
    expect(started.statusCode, started.body).toBe(201);
    await createTestWorker(t.ctx).drain();
    const messages = (await t.app.inject({ method: 'GET', url: `/api/v1/messages?session_id=${started.json().id}`, headers: t.auth })).json().data as Array<{ status: string; error_code: string }>;
    expect(messages.map((m) => [m.status, m.error_code])).toEqual([
      ['failed', '131047'],
      ['failed', '131047'],
    ]);
    const session = (await t.app.inject({ method: 'GET', url: `/api/v1/sessions/${started.json().id}`, headers: t.auth })).json();
    expect(session.history.filter((h: { outcome: string }) => h.outcome === 'failed')).toHaveLength(2);
    expect(session.history[0].detail.code).toBe('131047');
    expect(graphSends()).toHaveLength(1);
  });

  it('turns the channel status to error on an authentication failure, and back to ok on the next success', async () => {
    await post('/api/v1/sandbox/inbound', { channel: 'whatsapp', phone: '+14155550105', text: 'hello' });
    meta.messageResponses.push(metaError(401, 190, 'Error validating access token: Session has expired'));
    const failed = await send({ phone: '+14155550105', message: 'Hi' });
    expect(failed.statusCode, failed.body).toBe(201);
    expect(failed.json().status).toBe('failed');
    const channels = (await t.app.inject({ method: 'GET', url: '/api/v1/settings/channels', headers: t.auth })).json().data as Array<{ channel: string; status: string; last_error: string }>;
    const wa = channels.find((c) => c.channel === 'whatsapp')!;
    expect(wa.status).toBe('error');
    expect(wa.last_error).toMatch(/Session has expired/);

    const ok = await send({ phone: '+14155550105', message: 'Hi again' });
    expect(ok.json().status).toBe('sent');
    const after = (await t.app.inject({ method: 'GET', url: '/api/v1/settings/channels', headers: t.auth })).json().data as Array<{ channel: string; status: string; last_error: string | null }>;
    expect(after.find((c) => c.channel === 'whatsapp')).toMatchObject({ status: 'ok', last_error: null });
  });

  it('records an auth failure met by the dispatcher too', async () => {
    await post('/api/v1/sandbox/inbound', { channel: 'whatsapp', phone: '+14155550106', text: 'hello' });
    const contact = (await post('/api/v1/actions/get-contact', { phone: '+14155550106' })).json();
    // Leave the message to the dispatcher: queue it while the first send slot is taken by a failing answer.
    meta.messageResponses.push(metaError(401, 190, 'Error validating access token: token revoked'));
    const { db } = t.ctx.database;
    const queued = await queueDirectMessage(t.ctx, { workspaceId: t.workspaceId, contactId: contact.id, channel: 'whatsapp', content: { kind: 'text', text: 'x' }, marketing: false });
    expect(queued.status).toBe('failed');
    // Reset to ok, then fail through the worker.
    await db.updateTable('provider_settings').set({ status: 'ok', status_error: null }).where('workspace_id', '=', t.workspaceId).execute();
    t.ctx.channels.invalidate?.();
    await db.updateTable('messages').set({ status: 'queued', next_attempt_at: clock.now(), error_code: null, failed_at: null, attempts: 0 }).where('id', '=', queued.messageId).execute();
    meta.messageResponses.push(metaError(401, 190, 'Error validating access token: token revoked'));
    await createTestWorker(t.ctx).drain();
    const wa = (await t.app.inject({ method: 'GET', url: '/api/v1/settings/channels', headers: t.auth })).json().data[0];
    expect(wa).toMatchObject({ channel: 'whatsapp', status: 'error' });
    expect(wa.last_error).toMatch(/token revoked/);
  });
});
