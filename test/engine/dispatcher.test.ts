import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChannelAdapter, OutboundMessage, SendResult } from '../../src/channels/channel.js';
import { ManualClock } from '../../src/domain/clock.js';
import type { ChannelRegistry } from '../../src/engine/channel-registry.js';
import { computeBackoff } from '../../src/engine/backoff.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { dialects } from '../support/databases.js';
import { createTestWorker } from '../support/engine.js';

/** A provider whose answers the test scripts, one per attempt. */
class ScriptedChannel implements ChannelAdapter {
  readonly provider = 'scripted';
  readonly attempts: Array<{ at: number; to: string; text: string }> = [];
  constructor(private readonly clock: ManualClock, private readonly script: SendResult[]) {}
  async send(message: OutboundMessage): Promise<SendResult> {
    this.attempts.push({ at: this.clock.now(), to: message.to, text: message.content.kind === 'text' ? message.content.text : '' });
    return this.script.shift() ?? { ok: true, providerMessageId: `p-${message.id}` };
  }
}

function registryOf(adapter: ChannelAdapter): ChannelRegistry {
  return { adapterFor: () => adapter, providerFor: () => adapter.provider };
}

describe.each(dialects)('dispatcher on %s', (dialect) => {
  let t: TestApp;
  const clock = new ManualClock(Date.UTC(2026, 4, 7, 8, 0, 0));
  beforeAll(async () => {
    t = await createTestApp(dialect, { clock });
  });
  afterAll(async () => t.close());

  const post = async (url: string, payload: unknown) => t.app.inject({ method: 'POST', url, headers: t.auth, payload: payload as object });
  async function start(name: string, phone: string, graph: object): Promise<string> {
    const created = await post('/api/v1/sequences', { name, graph });
    expect(created.statusCode, created.body).toBe(201);
    const id = created.json().sequence.id;
    await post(`/api/v1/sequences/${id}/publish`, {});
    return (await post('/api/v1/actions/trigger-sequence', { sequence_id: id, phone })).json().id;
  }
  const messageOf = async (sessionId: string) =>
    (await t.app.inject({ method: 'GET', url: `/api/v1/messages?session_id=${sessionId}`, headers: t.auth })).json().data[0];

  it('retries a retryable failure with backoff, honours Retry-After, then records the send', async () => {
    const channel = new ScriptedChannel(clock, [
      { ok: false, retryable: true, code: '130429', message: 'throughput', retryAfterMs: 30_000 },
      { ok: false, retryable: true, code: 'http_503', message: 'unavailable' },
    ]);
    const worker = createTestWorker(t.ctx, { channels: registryOf(channel) });
    const sessionId = await start('Retry', '+14155550601', {
      entry: 'a',
      nodes: [{ id: 'a', type: 'send_message', channel: 'sms', content: { text: 'hello' } }],
      edges: [],
    });
    await worker.drain();
    expect(channel.attempts).toHaveLength(1);
    let message = await messageOf(sessionId);
    expect(message).toMatchObject({ status: 'queued', error_code: '130429', attempts: 1 });

    // Not before Retry-After, even though the backoff alone would allow it.
    clock.advance(29_999);
    await worker.drain();
    expect(channel.attempts).toHaveLength(1);
    clock.advance(1);
    await worker.drain();
    expect(channel.attempts).toHaveLength(2);
    message = await messageOf(sessionId);
    expect(message).toMatchObject({ status: 'queued', error_code: 'http_503', attempts: 2 });

    // The second backoff is at most 2 s (1 s to 2 s with jitter).
    clock.advance(2000);
    await worker.drain();
    expect(channel.attempts).toHaveLength(3);
    message = await messageOf(sessionId);
    expect(message).toMatchObject({ status: 'sent', attempts: 3, error_code: null });
    expect(message.provider_message_id).toMatch(/^p-/);
  });

  it('records a permanent failure on the message and applies the stop policy', async () => {
    const channel = new ScriptedChannel(clock, [{ ok: false, retryable: false, code: '21211', message: 'invalid To' }]);
    const worker = createTestWorker(t.ctx, { channels: registryOf(channel) });
    const sessionId = await start('Permanent', '+14155550602', {
      entry: 'a',
      nodes: [
        { id: 'a', type: 'send_message', channel: 'sms', on_failure: 'stop', content: { text: 'first' } },
        { id: 'wait', type: 'delay', duration: { hours: 1 } },
        { id: 'b', type: 'send_message', channel: 'sms', content: { text: 'second' } },
      ],
      edges: [
        { from: 'a', to: 'wait' },
        { from: 'wait', to: 'b' },
      ],
    });
    await worker.drain();
    const message = await messageOf(sessionId);
    expect(message).toMatchObject({ status: 'failed', error_code: '21211', error_message: 'invalid To' });
    const session = (await t.app.inject({ method: 'GET', url: `/api/v1/sessions/${sessionId}`, headers: t.auth })).json();
    expect(session).toMatchObject({ status: 'stopped', end_reason: 'send_failed' });
    clock.advance(2 * 3_600_000);
    await worker.drain();
    expect(channel.attempts.map((a) => a.text)).toEqual(['first']);
  });

  it('gives up after the last attempt', async () => {
    const failing: SendResult = { ok: false, retryable: true, code: 'http_500', message: 'boom' };
    const channel = new ScriptedChannel(clock, Array.from({ length: 20 }, () => failing));
    const worker = createTestWorker(t.ctx, { channels: registryOf(channel) });
    const sessionId = await start('Gives up', '+14155550603', {
      entry: 'a',
      nodes: [{ id: 'a', type: 'send_message', channel: 'sms', content: { text: 'x' } }],
      edges: [],
    });
    for (let i = 0; i < 12; i += 1) {
      await worker.drain();
      clock.advance(3_600_000);
    }
    expect(channel.attempts).toHaveLength(10);
    expect(await messageOf(sessionId)).toMatchObject({ status: 'failed', error_code: 'max_attempts_exceeded', attempts: 10 });
  });
});

describe('backoff', () => {
  it('doubles from one second with jitter in the upper half, caps at an hour, and never undercuts Retry-After', () => {
    expect(computeBackoff(1, undefined, () => 0)).toBe(500);
    expect(computeBackoff(1, undefined, () => 1)).toBe(1000);
    expect(computeBackoff(4, undefined, () => 1)).toBe(8000);
    expect(computeBackoff(30, undefined, () => 1)).toBe(3_600_000);
    expect(computeBackoff(1, 45_000, () => 1)).toBe(45_000);
  });
});

describe.each(dialects)('statuses that arrive before the send result on %s', (dialect) => {
  let t: TestApp;
  const clock = new ManualClock(Date.UTC(2026, 4, 7, 8, 0, 0));
  beforeAll(async () => {
    t = await createTestApp(dialect, { clock });
  });
  afterAll(async () => t.close());

  it('keeps a status the provider sends before Nudge has recorded the send, and applies it when it does', async () => {
    const { applyProviderStatus } = await import('../../src/engine/message-status.js');
    // A provider that calls back (delivered, then read) before its answer to the send reaches Nudge.
    const racing: ChannelAdapter = {
      provider: 'scripted',
      send: async (message) => {
        const providerMessageId = `p-${message.id}`;
        for (const status of ['delivered', 'read'] as const) {
          expect(await applyProviderStatus(t.ctx, { workspaceId: message.workspaceId, provider: 'scripted', providerMessageId, status, timestamp: clock.now(), errorCode: null, errorMessage: null })).toBe(false);
        }
        return { ok: true, providerMessageId };
      },
    };
    const worker = createTestWorker(t.ctx, { channels: registryOf(racing) });
    const post = async (url: string, payload: unknown) => t.app.inject({ method: 'POST', url, headers: t.auth, payload: payload as object });
    const created = await post('/api/v1/sequences', { name: 'Race', graph: { entry: 'a', nodes: [{ id: 'a', type: 'send_message', channel: 'sms', content: { text: 'hi' } }], edges: [] } });
    await post(`/api/v1/sequences/${created.json().sequence.id}/publish`, {});
    const sessionId = (await post('/api/v1/actions/trigger-sequence', { sequence_id: created.json().sequence.id, phone: '+14155550604' })).json().id;
    await worker.drain();
    const [message] = (await t.app.inject({ method: 'GET', url: `/api/v1/messages?session_id=${sessionId}`, headers: t.auth })).json().data;
    expect(message.status).toBe('read');
    expect(message.delivered_at).not.toBeNull();
    expect(await t.ctx.database.db.selectFrom('pending_statuses').selectAll().execute()).toEqual([]);
  });
});
