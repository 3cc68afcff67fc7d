import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/domain/clock.js';
import { newId } from '../../src/domain/ids.js';
import { deliveryRow } from '../../src/engine/webhook-emitter.js';
import { createSubscription } from '../../src/engine/webhook-service.js';
import { LocalWaker, WakeRelay } from '../../src/engine/waker.js';
import { Worker } from '../../src/engine/worker.js';
import { applyPendingStatuses, applyProviderStatus } from '../../src/engine/message-status.js';
import { unsubscribe } from '../../src/engine/unsubscribe-service.js';
import { signUnsubscribeToken } from '../../src/domain/unsubscribe-token.js';
import { queuedOutboundRow } from '../../src/store/message-repository.js';
import { claimDueDeliveries, saveDeliveryOutcome } from '../../src/store/webhook-repository.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { dialects } from '../support/databases.js';
import { createTestWorker } from '../support/engine.js';
import { signatureMatches, WebhookReceiver, type ReceiverAnswer } from '../support/webhook-receiver.js';

const hour = 3_600_000;
const day = 24 * hour;

/**
 * Outbound webhooks end to end: real HTTP to a local receiver that checks every
 * signature with the documented algorithm, a ManualClock for the backoff, and the
 * worker's own delivery loop.
 */
describe.each(dialects)('outbound webhooks on %s', (dialect) => {
  let t: TestApp;
  const clock = new ManualClock(Date.UTC(2026, 4, 7, 8, 0, 0));
  const receivers: WebhookReceiver[] = [];
  let phone = 0;
  beforeAll(async () => {
    // Long enough that a delivery to the local receiver never times out on a loaded machine;
    // the one test that hangs the receiver waits this out once.
    t = await createTestApp(dialect, { clock, env: { NUDGE_WEBHOOK_DELIVERY_TIMEOUT_MS: '2000' } });
  });
  afterEach(async () => {
    // Each test subscribes afresh: remove what the previous one left.
    for (const s of (await api('GET', '/api/v1/webhooks')).json().data as Array<{ id: string }>) await api('DELETE', `/api/v1/webhooks/${s.id}`);
    for (const r of receivers.splice(0)) await r.close();
  });
  afterAll(async () => t.close());

  const api = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: unknown) =>
    t.app.inject({ method, url, headers: t.auth, ...(payload === undefined ? {} : { payload: payload as object }) });
  const nextPhone = () => `+1415555${String(3000 + phone++).padStart(4, '0')}`;
  const receiver = async (answer: () => ReceiverAnswer = () => ({ status: 204 })) => {
    const r = await new WebhookReceiver().start();
    r.behave = answer;
    receivers.push(r);
    return r;
  };
  const subscribe = async (r: WebhookReceiver, events: string[] = ['*']) => {
    const res = await api('POST', '/api/v1/webhooks', { url: r.url, events });
    expect(res.statusCode, res.body).toBe(201);
    return res.json() as { id: string; secret: string; status: string };
  };
  const deliveries = (subscriptionId: string) => t.ctx.database.db.selectFrom('webhook_deliveries').selectAll().where('subscription_id', '=', subscriptionId).orderBy('id').execute();
  const inbound = async (text: string, to = nextPhone()) => {
    const res = await api('POST', '/api/v1/sandbox/inbound', { channel: 'sms', phone: to, text });
    expect(res.statusCode, res.body).toBe(201);
    return res.json() as { id: string; contact_id: string };
  };

  it('delivers every event exactly once, correctly signed, to a receiver that fails with 500s, a timeout and a reset before it recovers', async () => {
    let answer: ReceiverAnswer = { status: 500, body: 'database is down' };
    const r = await receiver(() => answer);
    const sub = await subscribe(r);
    for (let i = 0; i < 3; i += 1) await inbound(`hello ${i}`);
    const worker = createTestWorker(t.ctx);
    await worker.drain();

    let rows = await deliveries(sub.id);
    expect(rows.map((d) => d.event_type).sort()).toEqual(['message.received', 'message.received', 'message.received', 'webhook.test']);
    expect(rows.map((d) => ({ status: d.status, attempts: d.attempts, code: d.last_status_code }))).toEqual(rows.map(() => ({ status: 'pending', attempts: 1, code: 500 })));
    // The first retry waits 5 to 10 s (10 s with jitter in the upper half).
    for (const d of rows) expect(d.next_attempt_at! - clock.now()).toBeGreaterThanOrEqual(5000);
    for (const d of rows) expect(d.next_attempt_at! - clock.now()).toBeLessThanOrEqual(10_000);
    const firstRound = r.requests.length;
    clock.advance(4999);
    expect(await worker.runWebhooksOnce()).toBe(0);
    expect(r.requests.length).toBe(firstRound);

    answer = 'hang';
    clock.advance(5001);
    expect(await worker.runWebhooksOnce()).toBe(4);
    rows = await deliveries(sub.id);
    for (const d of rows) expect(d).toMatchObject({ status: 'pending', attempts: 2, last_status_code: null, last_error: expect.stringMatching(/^timeout/) });

    answer = 'reset';
    clock.advance(20_000);
    expect(await worker.runWebhooksOnce()).toBe(4);
    rows = await deliveries(sub.id);
    for (const d of rows) expect(d).toMatchObject({ status: 'pending', attempts: 3, last_status_code: null, last_error: expect.stringMatching(/^connection failed/) });

    answer = { status: 200, body: 'ok' };
    clock.advance(40_000);
    await worker.drain();
    rows = await deliveries(sub.id);
    expect(rows.map((d) => d.status)).toEqual(rows.map(() => 'delivered'));

    // Every event arrived once with a 2xx, each signed with the subscription's secret.
    const accepted = r.accepted();
    expect(accepted.map((a) => JSON.parse(a.rawBody.toString()).id).sort()).toEqual(rows.map((d) => d.event_id).sort());
    for (const request of r.requests) {
      expect(request.method).toBe('POST');
      expect(request.headers['content-type']).toBe('application/json');
      expect(signatureMatches(sub.secret, request.headers['nudge-signature'], request.rawBody)).toMatchObject({ matches: 1, signatures: 1 });
      const event = JSON.parse(request.rawBody.toString());
      expect(request.headers['nudge-event']).toBe(event.type);
      expect(rows.find((d) => d.id === request.headers['nudge-delivery'])?.event_id).toBe(event.id);
    }
    // The signed timestamp is the send time, in seconds.
    expect(signatureMatches(sub.secret, accepted[0]!.headers['nudge-signature'], accepted[0]!.rawBody).timestamp).toBe(Math.floor(clock.now() / 1000));

    // The delivery log shows each attempt's answer.
    const log = (await api('GET', `/api/v1/webhooks/${sub.id}/deliveries`)).json();
    expect(log.data).toHaveLength(4);
    for (const d of log.data) {
      expect(d.status).toBe('delivered');
      expect(d.attempts.map((a: { status_code: number | null }) => a.status_code)).toEqual([500, null, null, 200]);
      expect(d.attempts[0].error).toBe('HTTP 500: database is down');
    }
  });

  it('waits at least as long as Retry-After says on 429 and 503', async () => {
    let answer: ReceiverAnswer = { status: 429, headers: { 'retry-after': '120' } };
    const r = await receiver(() => answer);
    const sub = await subscribe(r);
    const worker = createTestWorker(t.ctx);
    await worker.drain();
    let [row] = await deliveries(sub.id);
    expect(row!.next_attempt_at).toBe(clock.now() + 120_000);

    clock.advance(120_000);
    // An HTTP date has whole seconds.
    const until = Math.floor((clock.now() + 600_000) / 1000) * 1000;
    answer = { status: 503, headers: { 'retry-after': new Date(until).toUTCString() } };
    expect(await worker.runWebhooksOnce()).toBe(1);
    [row] = await deliveries(sub.id);
    expect(row!.next_attempt_at).toBe(until);
    clock.set(until - 1);
    expect(await worker.runWebhooksOnce()).toBe(0);
    answer = { status: 202 };
    clock.advance(1);
    expect(await worker.runWebhooksOnce()).toBe(1);
    expect((await deliveries(sub.id))[0]!.status).toBe('delivered');
  });

  it('disables a subscription failing for a day, queues nothing for it meanwhile, and delivers the backlog once re-enabled', async () => {
    let answer: ReceiverAnswer = { status: 500 };
    const r = await receiver(() => answer);
    const sub = await subscribe(r);
    await inbound('one');
    await inbound('two');
    const worker = createTestWorker(t.ctx);
    await worker.drain();
    const failingSince = clock.now();
    expect((await api('GET', `/api/v1/webhooks/${sub.id}`)).json().failing_since).toBe(new Date(failingSince).toISOString());

    let hours = 0;
    while ((await api('GET', `/api/v1/webhooks/${sub.id}`)).json().status === 'active' && hours < 30) {
      clock.advance(hour);
      await worker.runWebhooksOnce();
      hours += 1;
    }
    expect(hours).toBe(24);
    const disabled = (await api('GET', `/api/v1/webhooks/${sub.id}`)).json();
    expect(disabled).toMatchObject({ status: 'disabled', disabled_at: new Date(clock.now()).toISOString(), disabled_reason: expect.stringContaining('24 hours') });
    const paused = await deliveries(sub.id);
    expect(paused.map((d) => [d.status, d.next_attempt_at])).toEqual(paused.map(() => ['pending', null]));

    // Disabled: new events are not queued for it, and nothing is attempted.
    await inbound('three');
    answer = { status: 200 };
    clock.advance(hour);
    const requestsBefore = r.requests.length;
    await worker.drain();
    expect(r.requests.length).toBe(requestsBefore);
    expect(await deliveries(sub.id)).toHaveLength(3);

    const enabled = await api('POST', `/api/v1/webhooks/${sub.id}/enable`);
    expect(enabled.statusCode, enabled.body).toBe(200);
    expect(enabled.json()).toMatchObject({ status: 'active', failing_since: null, disabled_at: null, disabled_reason: null, resumed_deliveries: 3, expired_deliveries: 0 });
    await worker.drain();
    const rows = await deliveries(sub.id);
    expect(rows.map((d) => d.status)).toEqual(['delivered', 'delivered', 'delivered']);
    expect(r.acceptedEvents().map((e) => e.id).sort()).toEqual(rows.map((d) => d.event_id).sort());
    for (const request of r.accepted()) expect(signatureMatches(sub.secret, request.headers['nudge-signature'], request.rawBody).matches).toBe(1);
  });

  it('fails paused deliveries older than 3 days when the subscription is enabled again', async () => {
    const r = await receiver(() => ({ status: 500 }));
    const sub = await subscribe(r);
    const worker = createTestWorker(t.ctx);
    await worker.drain();
    expect((await api('POST', `/api/v1/webhooks/${sub.id}/disable`)).json()).toMatchObject({ status: 'disabled', disabled_reason: 'disabled through the API' });
    clock.advance(3 * day + 60_000);
    const enabled = (await api('POST', `/api/v1/webhooks/${sub.id}/enable`)).json();
    expect(enabled).toMatchObject({ status: 'active', resumed_deliveries: 0, expired_deliveries: 1 });
    expect((await deliveries(sub.id))[0]).toMatchObject({ status: 'failed', next_attempt_at: null, last_error: expect.stringMatching(/^expired/) });
  });

  it('signs with both secrets during a rotation’s grace period, then with the new one only', async () => {
    const r = await receiver();
    const sub = await subscribe(r);
    const worker = createTestWorker(t.ctx);
    await worker.drain();
    expect(signatureMatches(sub.secret, r.requests[0]!.headers['nudge-signature'], r.requests[0]!.rawBody)).toEqual({ timestamp: expect.any(Number), matches: 1, signatures: 1 });

    const rotated = await api('POST', `/api/v1/webhooks/${sub.id}/rotate-secret`, {});
    expect(rotated.statusCode, rotated.body).toBe(200);
    const second = rotated.json() as { secret: string; previous_secret_expires_at: string };
    expect(second.secret).toMatch(/^whsec_/);
    expect(second.secret).not.toBe(sub.secret);
    expect(second.previous_secret_expires_at).toBe(new Date(clock.now() + day).toISOString());
    expect((await api('GET', `/api/v1/webhooks/${sub.id}`)).json()).not.toHaveProperty('secret');

    expect((await api('POST', `/api/v1/webhooks/${sub.id}/test`)).statusCode).toBe(202);
    await worker.drain();
    let last = r.requests.at(-1)!;
    expect(signatureMatches(sub.secret, last.headers['nudge-signature'], last.rawBody)).toMatchObject({ matches: 1, signatures: 2 });
    expect(signatureMatches(second.secret, last.headers['nudge-signature'], last.rawBody)).toMatchObject({ matches: 1, signatures: 2 });

    clock.advance(day + 1000);
    await api('POST', `/api/v1/webhooks/${sub.id}/test`);
    await worker.drain();
    last = r.requests.at(-1)!;
    expect(signatureMatches(second.secret, last.headers['nudge-signature'], last.rawBody)).toMatchObject({ matches: 1, signatures: 1 });
    expect(signatureMatches(sub.secret, last.headers['nudge-signature'], last.rawBody).matches).toBe(0);

    const third = (await api('POST', `/api/v1/webhooks/${sub.id}/rotate-secret`, { grace_period_hours: 0 })).json() as { secret: string; previous_secret_expires_at: string | null };
    expect(third.previous_secret_expires_at).toBeNull();
    await api('POST', `/api/v1/webhooks/${sub.id}/test`);
    await worker.drain();
    last = r.requests.at(-1)!;
    expect(signatureMatches(third.secret, last.headers['nudge-signature'], last.rawBody)).toMatchObject({ matches: 1, signatures: 1 });
    expect(signatureMatches(second.secret, last.headers['nudge-signature'], last.rawBody).matches).toBe(0);
  });

  it('sends again a delivery whose worker died mid-request once its lease expires, and ignores the dead worker’s late outcome', async () => {
    const r = await receiver();
    const sub = await subscribe(r);
    const { db, dialect: engine } = t.ctx.database;
    // A worker claims the test event and dies before it answers.
    const [dead] = await db.transaction().execute((trx) => claimDueDeliveries(trx, engine, clock.now(), 10, 60_000));
    expect(dead!.subscription_id).toBe(sub.id);
    const worker = createTestWorker(t.ctx);
    expect(await worker.runWebhooksOnce()).toBe(0);
    clock.advance(59_999);
    expect(await worker.runWebhooksOnce()).toBe(0);
    clock.advance(1);
    expect(await worker.runWebhooksOnce()).toBe(1);
    expect(r.accepted()).toHaveLength(1);
    const late = await saveDeliveryOutcome(db, dead!.id, dead!.lease_until!, { status: 'failed', next_attempt_at: null, last_status_code: 500, last_error: 'late', delivered_at: null });
    expect(late).toBe(false);
    expect((await deliveries(sub.id))[0]).toMatchObject({ status: 'delivered', attempts: 2, last_status_code: 204 });
  });

  it('drops a delivery queued for a subscription deleted meanwhile (by a process with stale filters) instead of claiming it forever', async () => {
    const r = await receiver();
    const sub = await subscribe(r);
    await api('DELETE', `/api/v1/webhooks/${sub.id}`);
    const stale = deliveryRow(t.workspaceId, sub.id, newId(clock.now()), 'message.received', '{}', clock.now());
    await t.ctx.database.db.insertInto('webhook_deliveries').values(stale).execute();
    const worker = createTestWorker(t.ctx);
    expect(await worker.runWebhooksOnce()).toBe(1);
    expect(await deliveries(sub.id)).toEqual([]);
    clock.advance(hour);
    expect(await worker.runWebhooksOnce()).toBe(0);
    expect(r.requests).toEqual([]);
  });

  it('lets two workers share the outbox without sending any delivery twice', async () => {
    const r = await receiver();
    const sub = await subscribe(r);
    for (let i = 0; i < 60; i += 1) await api('POST', `/api/v1/webhooks/${sub.id}/test`);
    const [a, b] = [createTestWorker(t.ctx), createTestWorker(t.ctx)];
    let rounds = 0;
    while (rounds < 20) {
      const [x, y] = await Promise.all([a.runWebhooksOnce(), b.runWebhooksOnce()]);
      if (x + y === 0) break;
      rounds += 1;
    }
    const rows = await deliveries(sub.id);
    expect(rows).toHaveLength(61);
    expect(rows.every((d) => d.status === 'delivered' && d.attempts === 1)).toBe(true);
    const sent = r.requests.map((q) => q.headers['nudge-delivery']);
    expect(sent).toHaveLength(61);
    expect(new Set(sent).size).toBe(61);
  });

  it('emits an event for each wired source with the documented payload', async () => {
    const r = await receiver();
    const sub = await subscribe(r);
    const worker = createTestWorker(t.ctx);
    const contactPhone = nextPhone();

    const sequence = (await api('POST', '/api/v1/sequences', { name: 'Welcome', steps: [{ type: 'sms', text: 'Hi' }] })).json().sequence.id as string;
    await api('POST', `/api/v1/sequences/${sequence}/publish`, {});
    const run = (await api('POST', '/api/v1/actions/trigger-sequence', { sequence_id: sequence, phone: contactPhone })).json() as { id: string; contact_id: string };
    const flow = (await api('POST', '/api/v1/flows', { name: 'Ask', steps: [{ type: 'whatsapp', text: 'Still there?' }] })).json().flow.id as string;
    await api('POST', `/api/v1/flows/${flow}/publish`, {});
    const flowRun = (await api('POST', '/api/v1/actions/trigger-flow', { flow_id: flow, phone: contactPhone })).json() as { id: string };
    const long = (await api('POST', '/api/v1/sequences', { name: 'Long', steps: [{ type: 'sms', delay: { days: 1 }, text: 'Tomorrow' }] })).json().sequence.id as string;
    await api('POST', `/api/v1/sequences/${long}/publish`, {});
    const longRun = (await api('POST', '/api/v1/actions/trigger-sequence', { sequence_id: long, phone: contactPhone })).json() as { id: string };
    await worker.drain();
    expect((await api('POST', `/api/v1/sessions/${longRun.id}/stop`, {})).statusCode).toBe(200);
    const hello = await inbound('hello there', contactPhone);
    await inbound('STOP', contactPhone);
    await inbound('START', contactPhone);
    await worker.drain();

    const events = r.acceptedEvents();
    for (const e of events) {
      expect(e.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(e.workspace_id).toBe(t.workspaceId);
      expect(new Date(e.created_at).toISOString()).toBe(e.created_at);
    }
    const ofType = (type: string) => events.filter((e) => e.type === type);
    const sessionEvent = (type: string, id: string) => ofType(type).find((e) => (e.data.session as { id: string }).id === id);

    expect(sessionEvent('session.started', run.id)?.data).toEqual({
      session: { id: run.id, kind: 'sequence', definition_id: sequence, contact_id: run.contact_id, status: 'running', end_reason: null, started_at: expect.any(String), ended_at: null },
    });
    expect(sessionEvent('sequence.finished', run.id)?.data.session).toMatchObject({ status: 'completed', end_reason: expect.any(String), ended_at: expect.any(String) });
    expect(sessionEvent('session.started', flowRun.id)?.data.session).toMatchObject({ kind: 'flow', definition_id: flow });
    expect(sessionEvent('flow.finished', flowRun.id)?.data.session).toMatchObject({ kind: 'flow', status: 'completed' });
    expect(sessionEvent('session.stopped', longRun.id)?.data.session).toMatchObject({ kind: 'sequence', status: 'stopped', end_reason: 'stopped_by_api' });

    const sms = ofType('message.status.sent').map((e) => e.data.message as Record<string, unknown>).find((m) => m.session_id === run.id);
    expect(sms).toMatchObject({ contact_id: run.contact_id, definition_id: sequence, channel: 'sms', provider: 'sandbox', status: 'sent', error_code: null });
    expect(ofType('message.status.delivered').map((e) => (e.data.message as { id: string }).id)).toContain(sms!.id);

    const received = ofType('message.received').find((e) => (e.data.message as { id: string }).id === hello.id);
    expect(received?.data).toEqual({
      message: { id: hello.id, contact_id: hello.contact_id, session_id: null, channel: 'sms', provider: 'sandbox', provider_message_id: null, kind: 'text', text: 'hello there', button_id: null, received_at: expect.any(String) },
      contact: { id: hello.contact_id, phone: contactPhone, email: null },
    });
    expect(ofType('contact.opted_out').map((e) => e.data)).toEqual([{ contact: { id: hello.contact_id, phone: contactPhone, email: null }, channel: 'sms', source: 'keyword', keyword: 'STOP' }]);
    expect(ofType('contact.opted_in').map((e) => e.data)).toEqual([{ contact: { id: hello.contact_id, phone: contactPhone, email: null }, channel: 'sms', source: 'keyword', keyword: 'START' }]);
    expect(r.accepted().every((a) => signatureMatches(sub.secret, a.headers['nudge-signature'], a.rawBody).matches === 1)).toBe(true);
  });

  it('announces statuses from provider callbacks (also ones that arrived before the send result) and from the email unsubscribe link', async () => {
    const r = await receiver();
    await subscribe(r, ['message.status.*', 'contact.opted_out']);
    const contact = await inbound('hi');
    const db = t.ctx.database.db;
    const sent = (id: string) =>
      queuedOutboundRow({ id, workspace_id: t.workspaceId, contact_id: contact.contact_id, channel: 'sms', provider: 'twilio', recipient: '+14155550100', kind: 'text', content: '{}', now: clock.now() });
    const first = newId(clock.now());
    await db.insertInto('messages').values({ ...sent(first), status: 'sent', provider_message_id: 'SM1', next_attempt_at: null, sent_at: clock.now() }).execute();
    // Read straight after sent: delivered is announced on the way.
    expect(await applyProviderStatus(t.ctx, { workspaceId: t.workspaceId, provider: 'twilio', providerMessageId: 'SM1', status: 'read', timestamp: 0, errorCode: null, errorMessage: null })).toBe(true);
    // A status for a send whose result is not recorded yet waits, then is announced with it.
    expect(await applyProviderStatus(t.ctx, { workspaceId: t.workspaceId, provider: 'twilio', providerMessageId: 'SM2', status: 'failed', timestamp: 0, errorCode: '30003', errorMessage: 'Unreachable' })).toBe(false);
    const second = newId(clock.now());
    await db.insertInto('messages').values({ ...sent(second), status: 'sent', provider_message_id: 'SM2', next_attempt_at: null, sent_at: clock.now() }).execute();
    await db.transaction().execute((trx) => applyPendingStatuses(t.ctx, trx, [{ workspace_id: t.workspaceId, provider: 'twilio', provider_message_id: 'SM2' }]));

    const token = signUnsubscribeToken(t.ctx.secretKey, { workspaceId: t.workspaceId, contactId: contact.contact_id, channel: 'email' });
    expect((await unsubscribe(t.ctx, token)).changed).toBe(true);
    expect((await unsubscribe(t.ctx, token)).changed).toBe(false);
    await createTestWorker(t.ctx).drain();

    // Deliveries run concurrently, so they may arrive in any order: compare in the order
    // the events happened (their ids are time-ordered).
    const events = r.acceptedEvents().filter((e) => e.type !== 'webhook.test').sort((x, y) => (x.id < y.id ? -1 : 1));
    const summary = events.map((e) => (e.type.startsWith('message.') ? [e.type, (e.data.message as { id: string }).id] : [e.type, e.data.source]));
    expect(summary).toEqual([
      ['message.status.delivered', first],
      ['message.status.read', first],
      ['message.status.failed', second],
      ['contact.opted_out', 'unsubscribe_link'],
    ]);
    expect(events[2]!.data.message).toMatchObject({ status: 'failed', provider: 'twilio', provider_message_id: 'SM2', error_code: '30003', error_message: 'Unreachable' });
  });

  it('announces the dispatcher’s send results', async () => {
    const dispatching = await createTestApp(dialect, { clock, env: { NUDGE_SANDBOX_DELIVERY: 'dispatch', NUDGE_WEBHOOK_DELIVERY_TIMEOUT_MS: '5000' } });
    try {
      const r = await receiver();
      const created = await createSubscription(dispatching.ctx, dispatching.workspaceId, { url: r.url, events: ['message.status.*'] });
      const post = (url: string, payload: object) => dispatching.app.inject({ method: 'POST', url, headers: dispatching.auth, payload });
      const sequence = (await post('/api/v1/sequences', { name: 'Dispatched', steps: [{ type: 'sms', text: 'Hi' }] })).json().sequence.id as string;
      await post(`/api/v1/sequences/${sequence}/publish`, {});
      const run = (await post('/api/v1/actions/trigger-sequence', { sequence_id: sequence, phone: nextPhone() })).json() as { id: string };
      const worker = createTestWorker(dispatching.ctx);
      expect(await worker.runSchedulerOnce()).toBe(1);
      expect(await worker.runWebhooksOnce()).toBe(1); // only the test event: the message is still queued
      expect(await worker.runDispatcherOnce()).toBe(1);
      await worker.drain();
      const statuses = r.acceptedEvents().filter((e) => e.type !== 'webhook.test').map((e) => [e.type, (e.data.message as { session_id: string }).session_id]);
      expect(statuses.map(([type]) => type).sort()).toEqual(['message.status.delivered', 'message.status.sent']);
      expect(statuses.every(([, session]) => session === run.id)).toBe(true);
      expect(r.accepted().every((a) => signatureMatches(created.secret, a.headers['nudge-signature'], a.rawBody).matches === 1)).toBe(true);
    } finally {
      await dispatching.close();
    }
  });

  it('sends a subscription only the events its filter names, and queues nothing for a workspace without subscriptions', async () => {
    const r = await receiver();
    const sub = await subscribe(r, ['message.status.*', 'contact.opted_out']);
    const other = createTestWorker(t.ctx);
    const sequence = (await api('POST', '/api/v1/sequences', { name: 'Filtered', steps: [{ type: 'sms', text: 'Hi' }] })).json().sequence.id as string;
    await api('POST', `/api/v1/sequences/${sequence}/publish`, {});
    await api('POST', '/api/v1/actions/trigger-sequence', { sequence_id: sequence, phone: nextPhone() });
    await inbound('STOP');
    await other.drain();
    expect([...new Set(r.acceptedEvents().map((e) => e.type))].sort()).toEqual(['contact.opted_out', 'message.status.delivered', 'message.status.sent', 'webhook.test']);

    const before = await t.ctx.database.db.selectFrom('webhook_deliveries').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    await t.app.inject({ method: 'POST', url: '/api/v1/sandbox/inbound', headers: { authorization: `Bearer ${t.other.token}` }, payload: { channel: 'sms', phone: nextPhone(), text: 'hi' } });
    const after = await t.ctx.database.db.selectFrom('webhook_deliveries').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    expect(Number(after.n)).toBe(Number(before.n));
    expect((await deliveries(sub.id)).every((d) => d.status === 'delivered')).toBe(true);
  });

  it('announces an opt-out made through the subscribers API', async () => {
    const r = await receiver();
    await subscribe(r, ['contact.*']);
    await api('POST', '/api/v1/subscribers', { email: 'ana@example.com', firstName: 'Ana' });
    expect((await api('PATCH', '/api/v1/subscribers/ana@example.com', { status: 'unsubscribed' })).statusCode).toBe(200);
    await api('PATCH', '/api/v1/subscribers/ana@example.com', { status: 'unsubscribed' });
    await createTestWorker(t.ctx).drain();
    const events = r.acceptedEvents().filter((e) => e.type !== 'webhook.test');
    expect(events.map((e) => [e.type, e.data.channel, e.data.source])).toEqual([['contact.opted_out', 'email', 'api']]);
  });
});

describe.each(dialects)('the running worker’s webhook loop on %s', (dialect) => {
  it('delivers without being driven by hand, woken by the queuing, and stops cleanly', async () => {
    const t = await createTestApp(dialect);
    const r = await new WebhookReceiver().start();
    const local = new LocalWaker();
    const ctx = { ...t.ctx, wake: new WakeRelay(local, t.ctx.database, t.ctx.log) };
    // A long poll: only the wake-up can make the delivery prompt.
    const worker = new Worker(ctx, ctx.channels, ctx.versions, local, { batchSize: 100, pollIntervalMs: 60_000, dispatchConcurrency: 4 });
    try {
      worker.start();
      const created = await createSubscription(ctx, t.workspaceId, { url: r.url, events: ['*'] });
      const deadline = Date.now() + 10_000;
      while (r.accepted().length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      expect(r.acceptedEvents().map((e) => e.type)).toEqual(['webhook.test']);
      expect(signatureMatches(created.secret, r.accepted()[0]!.headers['nudge-signature'], r.accepted()[0]!.rawBody).matches).toBe(1);
    } finally {
      await worker.stop();
      await r.close();
      await t.close();
    }
  });
});
