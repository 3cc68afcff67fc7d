import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/domain/clock.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { dialects } from '../support/databases.js';
import { createTestWorker } from '../support/engine.js';
import { WebhookReceiver } from '../support/webhook-receiver.js';

describe.each(dialects)('webhook subscription routes on %s', (dialect) => {
  let t: TestApp;
  let receiver: WebhookReceiver;
  const clock = new ManualClock(Date.UTC(2026, 4, 7, 8, 0, 0));
  beforeAll(async () => {
    // No test here hangs the receiver: a timeout long enough never to fire on a loaded machine.
    t = await createTestApp(dialect, { clock, env: { NUDGE_WEBHOOK_DELIVERY_TIMEOUT_MS: '5000' } });
    receiver = await new WebhookReceiver().start();
  });
  afterAll(async () => {
    await receiver.close();
    await t.close();
  });

  const api = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: unknown) =>
    t.app.inject({ method, url, headers: t.auth, ...(payload === undefined ? {} : { payload: payload as object }) });
  const count = async () => Number((await t.ctx.database.db.selectFrom('webhook_subscriptions').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);

  it('creates a subscription whose secret is shown once, with a test event queued, and never returns the secret again', async () => {
    const created = await api('POST', '/api/v1/webhooks', { url: receiver.url, events: ['message.received', 'message.status.*'], description: 'CRM' });
    expect(created.statusCode, created.body).toBe(201);
    const body = created.json();
    expect(body).toMatchObject({ url: receiver.url, events: ['message.received', 'message.status.*'], description: 'CRM', status: 'active', failing_since: null, previous_secret_expires_at: null });
    expect(body.secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    for (const res of [await api('GET', `/api/v1/webhooks/${body.id}`), await api('GET', '/api/v1/webhooks')]) {
      expect(res.statusCode).toBe(200);
      expect(res.body).not.toContain(body.secret);
      expect(res.body).not.toContain('"secret"');
    }
    // Stored sealed, not as the secret itself.
    const row = await t.ctx.database.db.selectFrom('webhook_subscriptions').select('secret').where('id', '=', body.id).executeTakeFirstOrThrow();
    expect(row.secret).not.toContain(body.secret);
    const log = (await api('GET', `/api/v1/webhooks/${body.id}/deliveries`)).json();
    expect(log.data.map((d: { event_type: string; status: string }) => [d.event_type, d.status])).toEqual([['webhook.test', 'pending']]);
    expect(log.data[0].payload).toMatchObject({ type: 'webhook.test', workspace_id: t.workspaceId, data: { subscription_id: body.id } });
  });

  it('refuses bad input with a 422 naming the field, and creates nothing', async () => {
    const before = await count();
    const cases: Array<[unknown, string]> = [
      [{ url: 'ftp://example.com/x', events: ['*'] }, 'url'],
      [{ url: 'not a url', events: ['*'] }, 'url'],
      [{ url: 'https://user:pass@example.com/hooks', events: ['*'] }, 'url'],
      [{ url: 'http://hooks.example.com:6667/nudge', events: ['*'] }, 'url'],
      [{ url: '', events: ['*'] }, 'url'],
      [{ events: ['*'] }, 'url'],
      [{ url: 'https://example.com/hooks', events: ['message.teleported'] }, 'events[0]'],
      [{ url: 'https://example.com/hooks', events: ['message.received', 'mess*'] }, 'events[1]'],
      [{ url: 'https://example.com/hooks', events: ['*', '*'] }, 'events[1]'],
      [{ url: 'https://example.com/hooks', events: [] }, 'events'],
      [{ url: 'https://example.com/hooks', events: 'message.received' }, 'events'],
      [{ url: 'https://example.com/hooks' }, 'events'],
      [{ url: 'https://example.com/hooks', events: ['*'], secret: 'mine' }, 'secret'],
      [{ url: 'https://example.com/hooks', events: ['*'], description: 'x'.repeat(501) }, 'description'],
    ];
    for (const [payload, field] of cases) {
      const res = await api('POST', '/api/v1/webhooks', payload);
      expect({ payload, status: res.statusCode }).toEqual({ payload, status: 422 });
      expect({ payload, fields: Object.keys(res.json().errors ?? {}) }).toEqual({ payload, fields: expect.arrayContaining([field]) });
    }
    expect(await count()).toBe(before);
    const id = (await api('GET', '/api/v1/webhooks')).json().data[0].id as string;
    const patch = await api('PATCH', `/api/v1/webhooks/${id}`, { events: ['nope'] });
    expect(patch.statusCode).toBe(422);
    expect(patch.json().errors).toHaveProperty(['events[0]']);
    expect((await api('GET', `/api/v1/webhooks/${id}`)).json().events).toEqual(['message.received', 'message.status.*']);
    expect((await api('POST', `/api/v1/webhooks/${id}/rotate-secret`, { grace_period_hours: 500 })).statusCode).toBe(422);
    expect((await api('GET', `/api/v1/webhooks/${id}/deliveries?status=lost`)).statusCode).toBe(422);
    expect((await api('GET', `/api/v1/webhooks/${id}/deliveries?cursor=bogus!`)).statusCode).toBe(422);
  });

  it('updates, lists event types, pages the delivery log, redelivers one delivery and deletes', async () => {
    const created = (await api('POST', '/api/v1/webhooks', { url: receiver.url, events: ['*'] })).json();
    const patched = await api('PATCH', `/api/v1/webhooks/${created.id}`, { description: 'All events', events: ['message.*', 'session.*'] });
    expect(patched.statusCode, patched.body).toBe(200);
    expect(patched.json()).toMatchObject({ description: 'All events', events: ['message.*', 'session.*'], url: receiver.url });
    const types = (await api('GET', '/api/v1/webhooks/event-types')).json();
    expect(types.data).toEqual(expect.arrayContaining(['message.received', 'message.status.read', 'sequence.finished', 'flow.finished', 'contact.opted_out']));

    for (let i = 0; i < 2; i += 1) expect((await api('POST', `/api/v1/webhooks/${created.id}/test`)).statusCode).toBe(202);
    await createTestWorker(t.ctx).drain();
    const first = (await api('GET', `/api/v1/webhooks/${created.id}/deliveries?limit=2`)).json();
    expect(first.data).toHaveLength(2);
    expect(first.next_cursor).toEqual(expect.any(String));
    const second = (await api('GET', `/api/v1/webhooks/${created.id}/deliveries?limit=2&cursor=${first.next_cursor}`)).json();
    expect(second.data).toHaveLength(1);
    expect(second.next_cursor).toBeNull();
    const all = [...first.data, ...second.data];
    expect(new Set(all.map((d: { id: string }) => d.id)).size).toBe(3);
    expect(all.every((d: { status: string; last_status_code: number; attempts: unknown[] }) => d.status === 'delivered' && d.last_status_code === 204 && d.attempts.length === 1)).toBe(true);
    expect((await api('GET', `/api/v1/webhooks/${created.id}/deliveries?status=pending`)).json().data).toEqual([]);

    const target = all[2] as { id: string; event_id: string };
    const requestsBefore = receiver.requests.length;
    const again = await api('POST', `/api/v1/webhooks/${created.id}/deliveries/${target.id}/redeliver`);
    expect(again.statusCode, again.body).toBe(202);
    expect(again.json()).toMatchObject({ id: target.id, status: 'pending', delivered_at: null });
    await createTestWorker(t.ctx).drain();
    expect(receiver.requests.length).toBe(requestsBefore + 1);
    expect(JSON.parse(receiver.requests.at(-1)!.rawBody.toString()).id).toBe(target.event_id);
    const redelivered = (await api('GET', `/api/v1/webhooks/${created.id}/deliveries`)).json().data.find((d: { id: string }) => d.id === target.id);
    expect(redelivered).toMatchObject({ status: 'delivered', attempt_count: 2 });
    expect(redelivered.attempts).toHaveLength(2);

    expect((await api('POST', `/api/v1/webhooks/${created.id}/disable`)).json().status).toBe('disabled');
    expect((await api('POST', `/api/v1/webhooks/${created.id}/test`)).statusCode).toBe(422);
    expect((await api('POST', `/api/v1/webhooks/${created.id}/deliveries/${target.id}/redeliver`)).statusCode).toBe(422);

    const deleted = await api('DELETE', `/api/v1/webhooks/${created.id}`);
    expect(deleted.statusCode).toBe(200);
    expect(deleted.json()).toEqual({ id: created.id, deleted: true });
    expect((await api('GET', `/api/v1/webhooks/${created.id}`)).statusCode).toBe(404);
    const left = await t.ctx.database.db.selectFrom('webhook_deliveries').select('id').where('subscription_id', '=', created.id).execute();
    expect(left).toEqual([]);
    expect((await api('DELETE', `/api/v1/webhooks/${created.id}`)).statusCode).toBe(404);
  });

  it('answers 404 for unknown and malformed ids', async () => {
    for (const id of ['0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a90', 'not-an-id']) {
      expect((await api('GET', `/api/v1/webhooks/${id}`)).statusCode).toBe(404);
      expect((await api('POST', `/api/v1/webhooks/${id}/enable`)).statusCode).toBe(404);
      expect((await api('GET', `/api/v1/webhooks/${id}/deliveries`)).statusCode).toBe(404);
    }
    const mine = (await api('GET', '/api/v1/webhooks')).json().data[0].id as string;
    expect((await api('POST', `/api/v1/webhooks/${mine}/deliveries/0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a91/redeliver`)).statusCode).toBe(404);
  });
});
