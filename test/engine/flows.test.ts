import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/domain/clock.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { dialects } from '../support/databases.js';
import { createTestWorker } from '../support/engine.js';

const minute = 60_000;

const cartFlow = (ttl?: number) => ({
  name: 'Abandoned cart 30min',
  ...(ttl ? { settings: { session_ttl_minutes: ttl } } : {}),
  graph: {
    entry: 'ask',
    nodes: [
      { id: 'ask', type: 'send_message', channel: 'whatsapp', content: { text: 'Cart {{context.cart_id}}: {{context.cart_total}}. Complete it?', buttons: [{ id: 'yes', title: 'Yes' }, { id: 'no', title: 'No' }] } },
      { id: 'wait', type: 'wait_for_reply', timeout: { minutes: 20 }, branches: [{ id: 'yes', match: { type: 'button', button_id: 'yes' } }, { id: 'no', match: { type: 'keyword', keywords: ['no', 'stop'] } }] },
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
});

describe.each(dialects)('flows end to end on %s', (dialect) => {
  let t: TestApp;
  const clock = new ManualClock(Date.UTC(2026, 4, 7, 8, 0, 0));
  beforeAll(async () => {
    t = await createTestApp(dialect, { clock });
  });
  afterAll(async () => t.close());

  const post = async (url: string, payload: unknown) => t.app.inject({ method: 'POST', url, headers: t.auth, payload: payload as object });
  const texts = async (sessionId: string) =>
    ((await t.app.inject({ method: 'GET', url: `/api/v1/messages?session_id=${sessionId}&direction=outbound`, headers: t.auth })).json().data as Array<{ content: { text: string } }>)
      .map((m) => m.content.text)
      .reverse();
  const session = async (id: string) => (await t.app.inject({ method: 'GET', url: `/api/v1/sessions/${id}`, headers: t.auth })).json();

  async function publishedFlow(body: object): Promise<string> {
    const created = await post('/api/v1/flows', body);
    expect(created.statusCode, created.body).toBe(201);
    const id = created.json().flow.id;
    expect((await post(`/api/v1/flows/${id}/enable`, {})).statusCode).toBe(200);
    return id;
  }

  it('waits for a sandbox reply and branches on the button', async () => {
    const flowId = await publishedFlow(cartFlow());
    const res = await post('/api/v1/actions/trigger-flow', { flow_id: flowId, phone: '+14155550123', context: { cart_id: '987654321', cart_total: '129.00' } });
    expect(res.statusCode).toBe(201);
    const started = res.json();
    expect(started).toMatchObject({ status: 'started', flow_id: flowId, flow_name: 'Abandoned cart 30min' });
    const worker = createTestWorker(t.ctx);
    await worker.drain();
    expect(await texts(started.id)).toEqual(['Cart 987654321: 129.00. Complete it?']);
    expect((await session(started.id)).status).toBe('waiting');

    clock.advance(5 * minute);
    const inbound = await post('/api/v1/sandbox/inbound', { channel: 'whatsapp', phone: '+1 (415) 555-0123', button_id: 'yes' });
    expect(inbound.statusCode).toBe(201);
    expect(inbound.json().session_id).toBe(started.id);
    await worker.drain();
    expect(await texts(started.id)).toEqual(['Cart 987654321: 129.00. Complete it?', 'Here you go: /cart/987654321']);
    const done = await session(started.id);
    expect(done.status).toBe('completed');
    expect(done.history.find((h: { node_id: string; outcome: string }) => h.node_id === 'wait' && h.outcome === 'replied').detail.branch).toBe('yes');
  });

  it('branches on a keyword typed as text', async () => {
    const flowId = await publishedFlow(cartFlow());
    const started = (await post('/api/v1/actions/trigger-flow', { flow_id: flowId, phone: '+14155550124', context: { cart_id: '1', cart_total: '5' } })).json();
    const worker = createTestWorker(t.ctx);
    await worker.drain();
    await post('/api/v1/sandbox/inbound', { channel: 'whatsapp', phone: '+14155550124', text: 'No thanks' });
    await worker.drain();
    expect((await texts(started.id)).at(-1)).toBe('Okay, maybe later.');
  });

  it('takes the timeout branch when no reply comes', async () => {
    const flowId = await publishedFlow(cartFlow());
    const started = (await post('/api/v1/actions/trigger-flow', { flow_id: flowId, phone: '+14155550125', context: { cart_id: '2', cart_total: '9' } })).json();
    const worker = createTestWorker(t.ctx);
    await worker.drain();
    clock.advance(20 * minute - 1);
    await worker.drain();
    expect(await texts(started.id)).toHaveLength(1);
    clock.advance(1);
    await worker.drain();
    expect((await texts(started.id)).at(-1)).toBe('Still there?');
    expect((await session(started.id)).status).toBe('completed');
  });

  it('expires after its TTL even while waiting, and then ignores replies', async () => {
    const flowId = await publishedFlow(cartFlow(10));
    const started = (await post('/api/v1/actions/trigger-flow', { flow_id: flowId, phone: '+14155550126', context: { cart_id: '3', cart_total: '1' } })).json();
    const worker = createTestWorker(t.ctx);
    await worker.drain();
    expect((await session(started.id)).expires_at).toBe(new Date(clock.now() + 10 * minute).toISOString());
    clock.advance(10 * minute);
    await worker.drain();
    const expired = await session(started.id);
    expect(expired.status).toBe('expired');
    const late = await post('/api/v1/sandbox/inbound', { channel: 'whatsapp', phone: '+14155550126', button_id: 'yes' });
    expect(late.json().session_id).toBeNull();
    await worker.drain();
    expect(await texts(started.id)).toHaveLength(1);
  });

  it('defaults the TTL to 30 minutes', async () => {
    const flowId = await publishedFlow(cartFlow());
    const started = (await post('/api/v1/actions/trigger-flow', { flow_id: flowId, phone: '+14155550127' })).json();
    expect((await session(started.id)).expires_at).toBe(new Date(clock.now() + 30 * minute).toISOString());
  });

  it('answers 404 for a flow that is not published', async () => {
    const created = (await post('/api/v1/flows', cartFlow())).json().flow.id;
    const res = await post('/api/v1/actions/trigger-flow', { flow_id: created, phone: '+14155550128' });
    expect(res.statusCode).toBe(404);
    expect(res.json().error).toBe('Flow not found or not published');
  });
});
