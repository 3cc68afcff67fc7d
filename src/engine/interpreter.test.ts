import { describe, expect, it } from 'vitest';
import { compileGraph, type Graph } from '../domain/definition.js';
import { advanceSession, type ContactSnapshot, type SessionInput, type SessionState } from './interpreter.js';

const contact: ContactSnapshot = {
  id: 'c1',
  phone: '+14155550123',
  email: null,
  name: 'Ada Lovelace',
  first_name: 'Ada',
  last_name: 'Lovelace',
  timezone: 'Europe/Paris',
  language: 'en',
  metadata: {},
  whatsapp_opted_out_at: null,
  sms_opted_out_at: null,
  email_opted_out_at: null,
};

const env = (now: number) => ({ now, tags: new Set<string>(), lastMessageStatus: null, defaultTimezone: 'UTC', callTimeoutMs: 10_000 });

function session(graph: Graph, state: SessionState = { visits: {} }, current = graph.entry ?? null, expiresAt: number | null = null): SessionInput {
  return { id: 's1', workspace_id: 'w', definition_id: 'd', contact_id: 'c1', kind: 'flow', current_node: current, expires_at: expiresAt, created_at: 0, steps_run: 0, context: { first: 'x' }, event: null, state };
}

describe('interpreter', () => {
  const hook: Graph = {
    entry: 'call',
    nodes: [
      { id: 'call', type: 'webhook', url: 'http://127.0.0.1:2/x', body: '{"a":"{{context.first}}"}' },
      { id: 'after', type: 'send_message', channel: 'sms', content: { text: 'done {{webhook.call.status}}' } },
    ],
    edges: [{ from: 'call', to: 'after' }],
  };

  it('calls a webhook again with the same idempotency key when its result never arrived', () => {
    const graph = compileGraph(hook);
    const first = advanceSession(graph, session(hook), contact, env(1000));
    expect(first.call?.request.idempotency_key).toBe('s1:call:1');
    expect(first.wake_at).toBe(1000 + 10_000 + 30_000);
    // Woken at the safety deadline with no result: the same visit, the same key.
    const again = advanceSession(graph, session(hook, first.state, 'call'), contact, env(first.wake_at!));
    expect(again.call?.request.idempotency_key).toBe('s1:call:1');
    expect(again.steps.map((s) => s.outcome)).toEqual(['calling_again']);
    // With the result stored, it goes on and the result is usable.
    const state = { ...again.state, calls: { 'call:1': { ok: true, status: 201, body: {} } } };
    const done = advanceSession(graph, session(hook, state, 'call'), contact, env(first.wake_at! + 5));
    expect(done.status).toBe('completed');
    expect(done.messages[0]?.content).toEqual({ kind: 'text', text: 'done 201' });
  });

  it('renders contact fields under their API names and their camelCase names', () => {
    const graph: Graph = { entry: 'm', nodes: [{ id: 'm', type: 'send_message', channel: 'sms', content: { text: '{{contact.first_name}}/{{contact.firstName}} {{contact.lastName}} {{contact.attributes.plan|free}}' } }], edges: [] };
    const sent = advanceSession(compileGraph(graph), session(graph), { ...contact, metadata: { plan: 'pro' } }, env(0));
    expect(sent.messages[0]?.content).toEqual({ kind: 'text', text: 'Ada/Ada Lovelace pro' });
  });

  it('renders the session tags, and leaves the state it was given as it was', () => {
    const graph: Graph = {
      entry: 'm',
      nodes: [
        { id: 'm', type: 'send_message', channel: 'sms', content: { text: '{{session.id}} {{session.started_at}}' } },
        { id: 'wait', type: 'delay', duration: { hours: 1 } },
      ],
      edges: [{ from: 'm', to: 'wait' }],
    };
    const given: SessionState = { visits: { m: 1 }, webhook: { order: { ok: true, status: 200, body: { items: [1] } } } };
    const input = { ...session(graph, given), created_at: Date.UTC(2026, 0, 2, 3, 4, 5) };
    const sent = advanceSession(compileGraph(graph), input, contact, env(Date.UTC(2026, 0, 3)));
    expect(sent.messages[0]?.content).toEqual({ kind: 'text', text: 's1 2026-01-02T03:04:05.000Z' });
    expect(sent.state.visits).toEqual({ m: 2, wait: 1 });
    expect(sent.state.wait?.node).toBe('wait');
    expect(given).toEqual({ visits: { m: 1 }, webhook: { order: { ok: true, status: 200, body: { items: [1] } } } });
    expect(sent.state.webhook).not.toBe(given.webhook);
  });

  const coupon: Graph = {
    entry: 'coupon',
    nodes: [
      { id: 'coupon', type: 'create_discount', discount: { percentOff: 20, codePrefix: 'winback', lockToSubscriber: true } },
      { id: 'mail', type: 'send_message', channel: 'sms', content: { text: 'Use {{discount.code}} for {{discount.percentOff}}%' } },
    ],
    edges: [{ from: 'coupon', to: 'mail' }],
  };

  it('asks for one discount per step run, again with the same code and time until a result is stored', () => {
    const graph = compileGraph(coupon);
    const first = advanceSession(graph, session(coupon), { ...contact, email: 'ada@example.com' }, env(1000));
    expect(first.discount).toMatchObject({ node_id: 'coupon', visit: 1, provider: 'stripe', at: 1000, attempt: 1, idempotency_key: 's1:coupon:1', customer_email: 'ada@example.com' });
    expect(first.discount!.code).toMatch(/^WINBACK-[2-9A-HJKMNP-Z]{10}$/);
    expect(first.status).toBe('running');
    expect(first.messages).toEqual([]);
    // Woken early: keep waiting for the call in flight, no second request.
    const early = advanceSession(graph, session(coupon, first.state, 'coupon'), contact, env(2000));
    expect(early.discount).toBeNull();
    expect(early.wake_at).toBe(first.wake_at);
    // Woken at the deadline with no result (a crash mid-call): the same code, time and key.
    const again = advanceSession(graph, session(coupon, first.state, 'coupon'), contact, env(first.wake_at!));
    expect(again.discount).toMatchObject({ code: first.discount!.code, at: 1000, idempotency_key: 's1:coupon:1' });
    expect(again.steps.map((s) => s.outcome)).toEqual(['creating_again']);
    // The result stored: the merge tags come from it and the run goes on without another call.
    const run = again.state.discount_runs!['coupon:1']!;
    const discount = { id: 'd1', code: first.discount!.code, percentOff: 20, amountOff: null, currency: null, expiresAt: null, provider: 'stripe' };
    const state = { ...again.state, discount_runs: { 'coupon:1': { ...run, result: { ok: true as const, discount } } } };
    const done = advanceSession(graph, session(coupon, state, 'coupon'), contact, env(first.wake_at! + 5));
    expect(done.discount).toBeNull();
    expect(done.status).toBe('completed');
    expect(done.messages[0]?.content).toEqual({ kind: 'text', text: `Use ${first.discount!.code} for 20%` });
    expect(done.state.discount_runs).toBeUndefined();
    expect(done.state.visits.coupon).toBe(1);
  });

  it('follows the failure policy of a discount step: stop by default, continue, or the failure branch', () => {
    const failed = (graph: Graph) => {
      const compiled = compileGraph(graph);
      const first = advanceSession(compiled, session(graph), contact, env(1000));
      const runs = { 'coupon:1': { ...first.state.discount_runs!['coupon:1']!, result: { ok: false as const, code: 'auth_failed', message: 'Stripe 401' } } };
      return advanceSession(compiled, session(graph, { ...first.state, discount_runs: runs }, 'coupon'), contact, env(2000));
    };
    const stopped = failed(coupon);
    expect(stopped).toMatchObject({ status: 'stopped', end_reason: 'discount_failed:auth_failed', messages: [] });
    expect(stopped.steps.at(-1)).toMatchObject({ outcome: 'failed', detail: { code: 'auth_failed', reason: 'Stripe 401' } });
    const going = failed({ ...coupon, nodes: [{ ...coupon.nodes[0]!, on_failure: 'continue' } as Graph['nodes'][number], coupon.nodes[1]!] });
    expect(going.status).toBe('completed');
    expect(going.messages).toHaveLength(1);
    const branched = failed({
      ...coupon,
      nodes: [...coupon.nodes, { id: 'sorry', type: 'send_message', channel: 'sms', content: { text: 'sorry' } }],
      edges: [...coupon.edges, { from: 'coupon', to: 'sorry', branch: 'failure' }],
    });
    expect(branched.messages.map((m) => m.content)).toEqual([{ kind: 'text', text: 'sorry' }]);
  });

  it('keeps waiting when a delay is woken early, and does not count a second visit', () => {
    const graph: Graph = {
      entry: 'd',
      nodes: [
        { id: 'd', type: 'delay', duration: { minutes: 5 } },
        { id: 'm', type: 'send_message', channel: 'sms', content: { text: 'hi' } },
      ],
      edges: [{ from: 'd', to: 'm' }],
    };
    const compiled = compileGraph(graph);
    const first = advanceSession(compiled, session(graph), contact, env(0));
    expect(first.wake_at).toBe(300_000);
    const early = advanceSession(compiled, session(graph, first.state, 'd'), contact, env(100_000));
    expect(early.wake_at).toBe(300_000);
    expect(early.messages).toHaveLength(0);
    const due = advanceSession(compiled, session(graph, early.state, 'd'), contact, env(300_000));
    expect(due.messages).toHaveLength(1);
    expect(due.state.visits).toEqual({ d: 1, m: 1 });
  });

  it('waits for a reply indefinitely when the node has no timeout, until the flow expires', () => {
    const graph: Graph = {
      entry: 'w',
      nodes: [{ id: 'w', type: 'wait_for_reply', branches: [{ id: 'any', match: { type: 'any' } }] }],
      edges: [],
    };
    const compiled = compileGraph(graph);
    const open = advanceSession(compiled, { ...session(graph), kind: 'sequence' }, contact, env(0));
    expect(open.status).toBe('waiting');
    expect(open.wake_at).toBeNull();
    const flow = advanceSession(compiled, session(graph, { visits: {} }, 'w', 60_000), contact, env(0));
    expect(flow.wake_at).toBe(60_000);
    const expired = advanceSession(compiled, session(graph, flow.state, 'w', 60_000), contact, env(60_000));
    expect(expired.status).toBe('expired');
  });

  it('waits until the next time of day in the contact’s time zone', () => {
    const graph: Graph = { entry: 'd', nodes: [{ id: 'd', type: 'delay', until: { time: '09:00' } }], edges: [] };
    // 2026-05-07 10:00 UTC is 12:00 in Paris: the next 09:00 Paris is the 8th at 07:00 UTC.
    const result = advanceSession(compileGraph(graph), session(graph), contact, env(Date.UTC(2026, 4, 7, 10, 0)));
    expect(new Date(result.wake_at!).toISOString()).toBe('2026-05-08T07:00:00.000Z');
  });
});

describe('template messages in definitions', () => {
  it('fills body, header and URL button parameters from the variables, in the contact’s language', () => {
    const graph: Graph = {
      entry: 't',
      nodes: [
        {
          id: 't',
          type: 'send_message',
          channel: 'whatsapp',
          template: { name: 'order_update', variables: { '2': '{{context.total}}', '1': '{{contact.first_name}}', header_1: 'Order {{context.order}}', button_0: 'track/{{context.order}}' } },
        },
      ],
      edges: [],
    };
    const result = advanceSession(compileGraph(graph), { ...session(graph), context: { total: '€12', order: 'A-7' } }, contact, env(0));
    expect(result.messages[0]?.content).toEqual({
      kind: 'template',
      name: 'order_update',
      language: 'en',
      components: { body: ['Ada', '€12'], header: ['Order A-7'], buttons: [{ index: 0, sub_type: 'url', parameter: 'track/A-7' }] },
    });
  });
});
