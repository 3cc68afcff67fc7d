import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/domain/clock.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { dialects } from '../support/databases.js';
import { createTestWorker } from '../support/engine.js';
import { SandboxOnlyRegistry } from '../../src/engine/channel-registry.js';

const day = 86_400_000;

describe.each(dialects)('sequences end to end on %s', (dialect) => {
  let t: TestApp;
  const clock = new ManualClock(Date.UTC(2026, 4, 7, 8, 0, 0));
  beforeAll(async () => {
    t = await createTestApp(dialect, { clock });
  });
  afterAll(async () => t.close());

  const post = async (url: string, payload: unknown, headers = t.auth) => t.app.inject({ method: 'POST', url, headers, payload: payload as object });
  type MessageView = { status: string; provider: string; to: string; error_code: string | null; content: { text: string } };
  const messagesOf = async (query: string) => (await t.app.inject({ method: 'GET', url: `/api/v1/messages?${query}`, headers: t.auth })).json().data as MessageView[];

  async function publishedSequence(body: object): Promise<string> {
    const created = await post('/api/v1/sequences', body);
    expect(created.statusCode, created.body).toBe(201);
    const id = created.json().sequence.id as string;
    const published = await post(`/api/v1/sequences/${id}/publish`, {});
    expect(published.statusCode, published.body).toBe(200);
    return id;
  }

  it('runs a published sequence with context merge tags, on time, and answers already_running on a second call', async () => {
    const sequenceId = await publishedSequence({
      name: 'Welcome 7-day',
      steps: [
        { type: 'whatsapp', text: 'Hi {{context.first_name}}, order {{context.order_id}} is confirmed' },
        { type: 'whatsapp', delay: { days: 1 }, text: 'Day 2 for {{context.first_name}}' },
        { type: 'whatsapp', delay: { days: 2, seconds: 30 }, text: 'Day 4' },
      ],
    });
    const body = { sequence_id: sequenceId, phone: '+14155550123', context: { order_id: 'ORD-1042', first_name: 'Romain' } };
    const first = await post('/api/v1/actions/trigger-sequence', body);
    expect(first.statusCode).toBe(201);
    const started = first.json();
    expect(started).toMatchObject({ status: 'started', sequence_id: sequenceId, sequence_name: 'Welcome 7-day' });
    expect(Object.keys(started).sort()).toEqual(['contact_id', 'id', 'sequence_id', 'sequence_name', 'status']);

    const again = await post('/api/v1/actions/trigger-sequence', body);
    expect(again.statusCode).toBe(200);
    expect(again.json()).toEqual({ id: started.id, status: 'already_running', message: 'Contact is already in this sequence' });

    const worker = createTestWorker(t.ctx);
    await worker.drain();
    let sent = await messagesOf(`session_id=${started.id}`);
    expect(sent).toHaveLength(1);
    expect(sent[0]!.content.text).toBe('Hi Romain, order ORD-1042 is confirmed');
    expect(sent[0]!.status).toBe('delivered');
    expect(sent[0]!.provider).toBe('sandbox');
    expect(sent[0]!.to).toBe('+14155550123');

    clock.advance(day - 1000);
    await worker.drain();
    expect(await messagesOf(`session_id=${started.id}`)).toHaveLength(1);
    clock.advance(1000);
    await worker.drain();
    sent = await messagesOf(`session_id=${started.id}`);
    expect(sent.map((m) => m.content.text)).toEqual(['Day 2 for Romain', 'Hi Romain, order ORD-1042 is confirmed']);

    clock.advance(2 * day + 30_000);
    await worker.drain();
    expect(await messagesOf(`session_id=${started.id}`)).toHaveLength(3);
    const session = (await t.app.inject({ method: 'GET', url: `/api/v1/sessions/${started.id}`, headers: t.auth })).json();
    expect(session.status).toBe('completed');
    expect(session.history.filter((h: { outcome: string }) => h.outcome === 'queued')).toHaveLength(3);

    // The session ended, so the same contact may start again.
    const restart = await post('/api/v1/actions/trigger-sequence', body);
    expect(restart.statusCode).toBe(201);
    const contact = await post('/api/v1/actions/get-sequence', { sequence_id: sequenceId });
    expect(contact.json()).toMatchObject({ id: sequenceId, status: 'published', sessions_count: 2 });
  });

  it('sends through the dispatcher when the sandbox is set to dispatch, with the same result', async () => {
    const sequenceId = await publishedSequence({ name: 'Dispatched', steps: [{ type: 'sms', text: 'Via dispatcher {{context.n}}' }] });
    const s = (await post('/api/v1/actions/trigger-sequence', { sequence_id: sequenceId, phone: '+14155550777', context: { n: 7 } })).json();
    const worker = createTestWorker(t.ctx, { channels: new SandboxOnlyRegistry({ inline: false }) });
    await worker.runSchedulerOnce();
    expect((await messagesOf(`session_id=${s.id}`))[0]!.status).toBe('queued');
    expect(await worker.runDispatcherOnce()).toBeGreaterThanOrEqual(1);
    const [message] = await messagesOf(`session_id=${s.id}`);
    expect(message).toMatchObject({ status: 'delivered', provider: 'sandbox', content: { text: 'Via dispatcher 7' } });
  });

  it('starts exactly one session for 50 concurrent identical calls', async () => {
    const sequenceId = await publishedSequence({ name: 'Race', steps: [{ type: 'sms', text: 'hello' }] });
    const responses = await Promise.all(
      Array.from({ length: 50 }, () => post('/api/v1/actions/trigger-sequence', { sequence_id: sequenceId, phone: '+14155550999' })),
    );
    const codes = responses.map((r) => r.statusCode).sort();
    expect(codes.filter((c) => c === 201)).toHaveLength(1);
    expect(codes.filter((c) => c === 200)).toHaveLength(49);
    expect(new Set(responses.map((r) => r.json().id)).size).toBe(1);
    const rows = await t.ctx.database.db.selectFrom('sessions').select('id').where('definition_id', '=', sequenceId).execute();
    expect(rows).toHaveLength(1);
  });

  it('answers 404 for an unpublished or unknown sequence and an unknown contact, 422 for no contact or an empty graph', async () => {
    const draft = await post('/api/v1/sequences', { name: 'Draft only', steps: [{ type: 'sms', text: 'x' }] });
    const draftId = draft.json().sequence.id;
    expect((await post('/api/v1/actions/trigger-sequence', { sequence_id: draftId, phone: '+14155550100' })).statusCode).toBe(404);
    expect((await post('/api/v1/actions/trigger-sequence', { sequence_id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b', phone: '+14155550100' })).statusCode).toBe(404);
    expect((await post('/api/v1/actions/trigger-sequence', { sequence_id: 'not-a-uuid', phone: '+14155550100' })).statusCode).toBe(404);
    const live = await publishedSequence({ name: 'Live', steps: [{ type: 'sms', text: 'x' }] });
    const unknownContact = await post('/api/v1/actions/trigger-sequence', { sequence_id: live, contact_id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b' });
    expect(unknownContact.statusCode).toBe(404);
    expect(unknownContact.json().error).toBe('Contact not found');
    const neither = await post('/api/v1/actions/trigger-sequence', { sequence_id: live });
    expect(neither.statusCode).toBe(422);
    expect(neither.json().errors).toHaveProperty('phone');
    // A sequence without steps cannot be enabled, so it never answers a trigger.
    const empty = (await post('/api/v1/sequences', { name: 'Empty', steps: [] })).json().sequence.id;
    const enable = await post(`/api/v1/sequences/${empty}/enable`, {});
    expect(enable.statusCode).toBe(422);
    expect(enable.json().errors).toHaveProperty('steps');
    // Another workspace cannot see or trigger it.
    const foreign = await post('/api/v1/actions/trigger-sequence', { sequence_id: live, phone: '+14155550100' }, { authorization: `Bearer ${t.other.token}` });
    expect(foreign.statusCode).toBe(404);
    expect((await t.app.inject({ method: 'GET', url: `/api/v1/sequences/${live}`, headers: { authorization: `Bearer ${t.other.token}` } })).statusCode).toBe(404);
  });

  it('keeps running sessions on the version they started on after a new publish', async () => {
    const id = await publishedSequence({ name: 'Versioned', steps: [{ type: 'sms', text: 'v1 first' }, { type: 'sms', delay: { hours: 1 }, text: 'v1 second' }] });
    const a = (await post('/api/v1/actions/trigger-sequence', { sequence_id: id, phone: '+14155550201' })).json();
    const worker = createTestWorker(t.ctx);
    await worker.drain();
    const edited = await t.app.inject({ method: 'PUT', url: `/api/v1/sequences/${id}`, headers: t.auth, payload: { steps: [{ type: 'sms', text: 'v2 first' }, { type: 'sms', delay: { hours: 1 }, text: 'v2 second' }] } });
    expect(edited.statusCode, edited.body).toBe(200);
    expect(edited.json().sequence.hasUnpublishedChanges).toBe(true);
    // Until the draft is published, new sessions still get v1.
    const b = (await post('/api/v1/actions/trigger-sequence', { sequence_id: id, phone: '+14155550202' })).json();
    await post(`/api/v1/sequences/${id}/publish`, {});
    const c = (await post('/api/v1/actions/trigger-sequence', { sequence_id: id, phone: '+14155550203' })).json();
    await worker.drain();
    clock.advance(3_600_000);
    await worker.drain();
    const texts = async (sessionId: string) => (await messagesOf(`session_id=${sessionId}`)).map((m) => m.content.text).reverse();
    expect(await texts(a.id)).toEqual(['v1 first', 'v1 second']);
    expect(await texts(b.id)).toEqual(['v1 first', 'v1 second']);
    expect(await texts(c.id)).toEqual(['v2 first', 'v2 second']);
  });

  it('stops new enrollments when disabled or archived, and lets running sessions finish', async () => {
    const id = await publishedSequence({ name: 'Lifecycle', steps: [{ type: 'sms', text: 'one' }, { type: 'sms', delay: { hours: 1 }, text: 'two' }] });
    const running = (await post('/api/v1/actions/trigger-sequence', { sequence_id: id, phone: '+14155550801' })).json();
    const worker = createTestWorker(t.ctx);
    await worker.drain();
    const disabled = await post(`/api/v1/sequences/${id}/disable`, {});
    expect(disabled.json().sequence.status).toBe('paused');
    expect((await post('/api/v1/actions/trigger-sequence', { sequence_id: id, phone: '+14155550802' })).statusCode).toBe(404);
    expect((await post('/api/v1/actions/get-sequence', { sequence_id: id })).json().status).toBe('paused');
    await post(`/api/v1/sequences/${id}/enable`, {});
    expect((await post('/api/v1/actions/trigger-sequence', { sequence_id: id, phone: '+14155550802' })).statusCode).toBe(201);
    const archived = await post(`/api/v1/sequences/${id}/archive`, {});
    expect(archived.json().sequence.status).toBe('archived');
    expect((await post('/api/v1/actions/trigger-sequence', { sequence_id: id, phone: '+14155550803' })).statusCode).toBe(404);
    expect((await post(`/api/v1/sequences/${id}/publish`, {})).statusCode).toBe(422);
    clock.advance(3_600_000);
    await worker.drain();
    expect((await messagesOf(`session_id=${running.id}`)).map((m) => m.content.text)).toEqual(['two', 'one']);
  });

  it('refuses an invalid graph naming every problem and writes nothing', async () => {
    const before = await t.ctx.database.db.selectFrom('definitions').select('id').execute();
    const res = await post('/api/v1/sequences', {
      name: 'Broken',
      graph: {
        entry: 'a',
        nodes: [
          { id: 'a', type: 'send_message', channel: 'sms', content: { text: 'Hi {{contct.first_name}}' } },
          { id: 'b', type: 'teleport' },
          { id: 'c', type: 'send_message', channel: 'sms', content: { text: 'orphan' } },
        ],
        edges: [{ from: 'a', to: 'zzz' }],
      },
    });
    expect(res.statusCode).toBe(422);
    const codes = (res.json().problems as Array<{ code: string }>).map((p) => p.code);
    expect(codes).toEqual(expect.arrayContaining(['unknown_merge_tag', 'unknown_node_type', 'dangling_edge', 'unreachable_node']));
    const after = await t.ctx.database.db.selectFrom('definitions').select('id').execute();
    expect(after).toHaveLength(before.length);
  });

  it('calls a webhook node and branches on its response', async () => {
    const received: Array<{ body: string; headers: Record<string, unknown> }> = [];
    const server: Server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        received.push({ body, headers: req.headers });
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ tier: body.includes('VIP') ? 'gold' : 'basic' }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
    try {
      const created = await post('/api/v1/sequences', {
        name: 'Hooked',
        graph: {
          entry: 'call',
          nodes: [
            { id: 'call', type: 'webhook', url, method: 'POST', body: '{"code":"{{context.code}}"}', save_as: 'crm' },
            { id: 'check', type: 'condition', condition: { rules: [{ field: 'webhook.crm.body.tier', op: 'eq', value: 'gold' }] } },
            { id: 'gold', type: 'send_message', channel: 'sms', content: { text: 'Gold for you' } },
            { id: 'basic', type: 'send_message', channel: 'sms', content: { text: 'Basic for you' } },
          ],
          edges: [
            { from: 'call', to: 'check' },
            { from: 'check', to: 'gold', branch: 'true' },
            { from: 'check', to: 'basic', branch: 'false' },
          ],
        },
      });
      expect(created.statusCode, created.body).toBe(201);
      const id = created.json().sequence.id;
      await post(`/api/v1/sequences/${id}/publish`, {});
      const s = (await post('/api/v1/actions/trigger-sequence', { sequence_id: id, phone: '+14155550301', context: { code: 'VIP"1' } })).json();
      await createTestWorker(t.ctx).drain();
      expect(received).toHaveLength(1);
      expect(JSON.parse(received[0]!.body)).toEqual({ code: 'VIP"1' });
      expect(received[0]!.headers['idempotency-key']).toContain(s.id);
      expect((await messagesOf(`session_id=${s.id}`)).map((m) => m.content.text)).toEqual(['Gold for you']);
      const history = (await t.app.inject({ method: 'GET', url: `/api/v1/sessions/${s.id}`, headers: t.auth })).json().history;
      const branch = history.find((h: { node_id: string }) => h.node_id === 'check');
      expect(branch.outcome).toBe('true');
      expect(branch.detail.why).toContain('gold');
    } finally {
      server.close();
    }
  });

  it('records a failed send and stops the session when the node says stop', async () => {
    const id = await publishedSequence({
      name: 'Needs email',
      graph: {
        entry: 'mail',
        nodes: [
          { id: 'mail', type: 'send_message', channel: 'email', on_failure: 'stop', content: { subject: 'Hi', text: 'Hello' } },
          { id: 'after', type: 'send_message', channel: 'sms', content: { text: 'never' } },
        ],
        edges: [{ from: 'mail', to: 'after' }],
      },
    });
    const s = (await post('/api/v1/actions/trigger-sequence', { sequence_id: id, phone: '+14155550401' })).json();
    await createTestWorker(t.ctx).drain();
    const session = (await t.app.inject({ method: 'GET', url: `/api/v1/sessions/${s.id}`, headers: t.auth })).json();
    expect(session.status).toBe('stopped');
    expect(session.end_reason).toBe('send_failed:no_recipient');
    const sent = await messagesOf(`session_id=${s.id}`);
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ status: 'failed', error_code: 'no_recipient' });
  });

  it('stops a session through the API and cancels its queued messages', async () => {
    const id = await publishedSequence({ name: 'Stoppable', steps: [{ type: 'sms', text: 'one' }, { type: 'sms', delay: { days: 1 }, text: 'two' }] });
    const s = (await post('/api/v1/actions/trigger-sequence', { sequence_id: id, phone: '+14155550501' })).json();
    // The sandbox going through the dispatcher, as a remote provider would, so a message can sit queued.
    const worker = createTestWorker(t.ctx, { channels: new SandboxOnlyRegistry({ inline: false }) });
    await worker.runSchedulerOnce();
    // The first message is queued but not yet dispatched.
    expect((await messagesOf(`session_id=${s.id}`))[0]!.status).toBe('queued');
    const stopped = await post(`/api/v1/sessions/${s.id}/stop`, { reason: 'test' });
    expect(stopped.statusCode).toBe(200);
    expect(stopped.json().status).toBe('stopped');
    await worker.drain();
    clock.advance(2 * day);
    await worker.drain();
    const sent = await messagesOf(`session_id=${s.id}`);
    expect(sent.map((m) => m.status)).toEqual(['cancelled']);
    expect((await post(`/api/v1/sessions/${s.id}/stop`, {})).statusCode).toBe(422);
    expect((await t.app.inject({ method: 'POST', url: `/api/v1/sessions/${s.id}/stop`, headers: { authorization: `Bearer ${t.other.token}` }, payload: {} })).statusCode).toBe(404);
  });
});
