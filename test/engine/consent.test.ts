import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/domain/clock.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { dialects } from '../support/databases.js';
import { createTestWorker } from '../support/engine.js';

describe.each(dialects)('consent keywords on %s', (dialect) => {
  let t: TestApp;
  const clock = new ManualClock(Date.UTC(2026, 4, 7, 8, 0, 0) + 300);
  beforeAll(async () => {
    t = await createTestApp(dialect, { clock });
  });
  afterAll(async () => t.close());

  const post = (url: string, payload: object) => t.app.inject({ method: 'POST', url, headers: t.auth, payload });
  const inbound = async (phone: string, text: string, channel = 'whatsapp') => {
    const res = await post('/api/v1/sandbox/inbound', { channel, phone, text });
    expect(res.statusCode, res.body).toBe(201);
    return res.json() as { id: string; contact_id: string; session_id: string | null };
  };
  const contactRow = (id: string) => t.ctx.database.db.selectFrom('contacts').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  const outbound = async (contactId: string) =>
    t.ctx.database.db.selectFrom('messages').selectAll().where('contact_id', '=', contactId).where('direction', '=', 'outbound').orderBy('id').execute();

  it('opts out on STOP for that channel, confirms once, and never repeats the confirmation', async () => {
    const first = await inbound('+14155550201', 'STOP');
    const row = await contactRow(first.contact_id);
    expect(row.whatsapp_opted_out_at).toBe(clock.now());
    expect(row.opted_out_at).toBe(clock.now());
    expect(row.sms_opted_out_at).toBeNull();
    await createTestWorker(t.ctx).drain();
    let sent = await outbound(first.contact_id);
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ channel: 'whatsapp', status: 'delivered', marketing: 0 });
    expect(JSON.parse(sent[0]!.content).text).toMatch(/unsubscribed/);

    clock.advance(60_000);
    await inbound('+14155550201', ' stop! ');
    await inbound('+14155550201', 'Unsubscribe');
    await createTestWorker(t.ctx).drain();
    sent = await outbound(first.contact_id);
    expect(sent).toHaveLength(1);
    expect((await contactRow(first.contact_id)).whatsapp_opted_out_at).toBe(clock.now() - 60_000);

    const contact = (await post('/api/v1/actions/get-contact', { contact_id: first.contact_id })).json();
    expect(contact.opted_out_at).not.toBeNull();
  });

  it('skips a marketing send to the opted-out contact with opted_out in the session history, and sends the transactional one', async () => {
    const created = await post('/api/v1/sequences', {
      name: 'Promo',
      steps: [
        { type: 'whatsapp', text: 'Big sale this weekend!', marketing: true },
        { type: 'whatsapp', text: 'Your receipt' },
      ],
    });
    expect(created.statusCode, created.body).toBe(201);
    const id = created.json().sequence.id as string;
    expect((await post(`/api/v1/sequences/${id}/publish`, {})).statusCode).toBe(200);
    const started = await post('/api/v1/actions/trigger-sequence', { sequence_id: id, phone: '+14155550201' });
    expect(started.statusCode, started.body).toBe(201);
    await createTestWorker(t.ctx).drain();
    const session = (await t.app.inject({ method: 'GET', url: `/api/v1/sessions/${started.json().id}`, headers: t.auth })).json();
    const sends = session.history.filter((h: { node_type: string }) => h.node_type === 'send_message');
    expect(sends.map((h: { outcome: string }) => h.outcome)).toEqual(['skipped', 'queued']);
    expect(sends[0].detail).toMatchObject({ code: 'opted_out', channel: 'whatsapp' });
    const messages = (await t.app.inject({ method: 'GET', url: `/api/v1/messages?session_id=${started.json().id}`, headers: t.auth })).json().data as Array<{ status: string; error_code: string | null }>;
    expect(messages.map((m) => m.status).sort()).toEqual(['delivered', 'skipped']);
  });

  it('re-subscribes on START with one confirmation; a YES from a subscribed contact is just a reply', async () => {
    const start = await inbound('+14155550201', 'START');
    const row = await contactRow(start.contact_id);
    expect(row.whatsapp_opted_out_at).toBeNull();
    expect(row.opted_out_at).toBeNull();
    await createTestWorker(t.ctx).drain();
    const sent = await outbound(start.contact_id);
    const confirmations = sent.filter((m) => m.dedupe_key?.startsWith('consent:'));
    expect(confirmations.map((m) => JSON.parse(m.content).text as string)).toEqual([expect.stringMatching(/unsubscribed/), expect.stringMatching(/subscribed again/)]);

    await inbound('+14155550201', 'YES');
    await createTestWorker(t.ctx).drain();
    expect((await outbound(start.contact_id)).filter((m) => m.dedupe_key?.startsWith('consent:'))).toHaveLength(2);
  });

  it('keeps opted_out_at while another channel stays opted out, and never sends SMS to an opted-out number', async () => {
    const sms = await inbound('+14155550202', 'STOP', 'sms');
    await inbound('+14155550202', 'QUIT', 'whatsapp');
    await inbound('+14155550202', 'START', 'whatsapp');
    const row = await contactRow(sms.contact_id);
    expect(row.sms_opted_out_at).not.toBeNull();
    expect(row.whatsapp_opted_out_at).toBeNull();
    expect(row.opted_out_at).not.toBeNull();

    const before = (await outbound(sms.contact_id)).length;
    const refused = await post('/api/v1/actions/send-text-message', { phone: '+14155550202', message: 'Hi', channel: 'sms' });
    expect(refused.statusCode).toBe(422);
    expect(refused.json()).toMatchObject({ code: 'business_rule', reason: 'opted_out' });
    expect(await outbound(sms.contact_id)).toHaveLength(before);
    // WhatsApp, not opted out any more, still works.
    expect((await post('/api/v1/actions/send-text-message', { phone: '+14155550202', message: 'Hi' })).statusCode).toBe(201);
  });

  it('does not route STOP to a waiting flow, and honours the workspace keyword lists', async () => {
    const set = await t.app.inject({ method: 'PUT', url: '/api/v1/settings/consent', headers: t.auth, payload: { opt_out_keywords: ['PARAR'], opt_in_keywords: ['VOLTAR'] } });
    expect(set.statusCode, set.body).toBe(200);
    const stop = await inbound('+14155550203', 'stop');
    expect((await contactRow(stop.contact_id)).whatsapp_opted_out_at).toBeNull();
    await inbound('+14155550203', 'parar');
    expect((await contactRow(stop.contact_id)).whatsapp_opted_out_at).not.toBeNull();
    await inbound('+14155550203', 'Voltar');
    expect((await contactRow(stop.contact_id)).whatsapp_opted_out_at).toBeNull();
    await t.app.inject({ method: 'PUT', url: '/api/v1/settings/consent', headers: t.auth, payload: { opt_out_keywords: null, opt_in_keywords: null } });

    const flow = await post('/api/v1/flows', {
      name: 'Ask',
      graph: {
        entry: 'ask',
        nodes: [
          { id: 'ask', type: 'send_message', channel: 'whatsapp', content: { text: 'Reply YES to confirm' } },
          { id: 'wait', type: 'wait_for_reply', timeout: { minutes: 10 }, branches: [{ id: 'yes', match: { type: 'keyword', keywords: ['yes'] } }] },
          { id: 'thanks', type: 'send_message', channel: 'whatsapp', content: { text: 'Confirmed' } },
        ],
        edges: [
          { from: 'ask', to: 'wait' },
          { from: 'wait', to: 'thanks', branch: 'yes' },
        ],
      },
    });
    if (flow.statusCode !== 201) return expect.fail(flow.body);
    const flowId = (flow.json().flow ?? flow.json()).id as string;
    expect((await post(`/api/v1/flows/${flowId}/publish`, {})).statusCode).toBe(200);
    const started = await post('/api/v1/actions/trigger-flow', { flow_id: flowId, phone: '+14155550204' });
    expect(started.statusCode, started.body).toBe(201);
    await createTestWorker(t.ctx).drain();
    const stop2 = await inbound('+14155550204', 'STOP');
    expect(stop2.session_id).toBeNull();
    // Opted out, YES re-subscribes: it is consumed as consent, not as the answer.
    expect((await inbound('+14155550204', 'YES')).session_id).toBeNull();
    // Subscribed, YES is an ordinary reply.
    const yes = await inbound('+14155550204', 'YES');
    expect(yes.session_id).toBe(started.json().id);
  });
});
