import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { buildApp } from '../../src/api/app.js';
import { createTestContext, type TestContext } from '../support/app.js';
import { dialects } from '../support/databases.js';
import { Cluster, type Member } from './support/cluster.js';
import { CountingMeta } from './support/counting-meta.js';
import { count, emptyStats, phoneNumber, runLoad, type Call } from './support/load.js';
import { figure, mode, report, sleep, waitFor } from './support/mode.js';
import { provisionWhatsAppSequence, type Provisioned } from './support/provision.js';

/**
 * Memory under a long mixed load: one `nudge api` and one `nudge worker` on PostgreSQL
 * (SQLite when PostgreSQL is not there), with the fake Meta as the WhatsApp provider.
 * The load mixes drip enrollments, flows answered by the customer (an inbound message
 * opens the 24-hour window, the flow asks, the fake replies YES), events that start an
 * email sequence, reads, and the status webhooks of every send. Every few seconds the
 * suite reads each process's RSS and, through a probe loaded into it, its heap after a
 * full GC. Over the second half of the run neither may grow by more than the threshold.
 */

const minutes = figure('soak_minutes', 1, 20);
const sampleEveryMs = figure('soak_sample_ms', 3000, 20_000);
/** Allowed growth over the second half: heap after GC, and RSS. */
const maxHeapGrowth = (mid: number) => Math.max(0.1 * mid, 8 * 2 ** 20);
const maxRssGrowth = 30 * 2 ** 20;

interface Sample {
  t: number;
  [process: string]: number;
}

const dialect = dialects.includes('postgres') ? 'postgres' : 'sqlite';

describe(`soak: ${minutes} min of mixed load on ${dialect}`, () => {
  let ctx: TestContext;
  let fake: CountingMeta;
  let setup: Provisioned;
  let flowId = '';
  let cluster: Cluster | null = null;

  beforeAll(async () => {
    fake = await new CountingMeta().start();
    // The customer answers the flow's question.
    fake.autoReply = (send) => (send.text.startsWith('text:Reply YES') ? 'YES' : null);
    ctx = await createTestContext(dialect);
    setup = await provisionWhatsAppSequence(ctx, fake, { steps: 3, delaySeconds: 2, name: 'Soak' });
    const app = await buildApp(ctx);
    await app.ready();
    const auth = { authorization: `Bearer ${setup.token}` };
    const flow = await app.inject({
      method: 'POST',
      url: '/api/v1/flows',
      headers: auth,
      payload: {
        name: 'Confirm',
        graph: {
          entry: 'ask',
          nodes: [
            { id: 'ask', type: 'send_message', channel: 'whatsapp', content: { text: 'Reply YES to confirm order {{context.n}}' } },
            { id: 'wait', type: 'wait_for_reply', timeout: { minutes: 10 }, branches: [{ id: 'yes', match: { type: 'keyword', keywords: ['yes'] } }] },
            { id: 'thanks', type: 'send_message', channel: 'whatsapp', content: { text: 'Order {{context.n}} confirmed' } },
          ],
          edges: [
            { from: 'ask', to: 'wait' },
            { from: 'wait', to: 'thanks', branch: 'yes' },
          ],
        },
      },
    });
    if (flow.statusCode !== 201) throw new Error(`flow: ${flow.body}`);
    flowId = flow.json().flow.id;
    await app.inject({ method: 'POST', url: `/api/v1/flows/${flowId}/publish`, headers: auth });
    const onEvent = await app.inject({
      method: 'POST',
      url: '/api/v1/sequences',
      headers: auth,
      payload: { name: 'Order follow-up', trigger: 'event_received', eventName: 'order.placed', steps: [{ type: 'email', subject: 'Order {{event.order.id}}', html: '<p>Thanks for order {{event.order.id}}</p>' }] },
    });
    if (onEvent.statusCode !== 201) throw new Error(`event sequence: ${onEvent.body}`);
    await app.inject({ method: 'POST', url: `/api/v1/sequences/${onEvent.json().sequence.id}/publish`, headers: auth });
    await app.close();
  });

  afterAll(async () => {
    await cluster?.stop();
    await fake.stop();
    await ctx.database.close();
  });

  it('keeps the heap after GC and the RSS of every process flat over the second half', async () => {
    cluster = new Cluster(
      {
        NUDGE_SECRET_KEY: ctx.secretKey,
        NUDGE_DATA_DIR: ctx.database.dataDir,
        ...(ctx.database.databaseUrl ? { DATABASE_URL: ctx.database.databaseUrl } : {}),
        NUDGE_POLL_INTERVAL_MS: '200',
        NUDGE_WHATSAPP_RATE_PER_SECOND: '10000',
        NUDGE_RATE_LIMIT: '10000000',
        LOG_LEVEL: 'info',
      },
      { probe: true },
    );
    const c = cluster;
    const members: Member[] = dialect === 'postgres' ? [await c.add('api'), await c.add('worker')] : [await c.add('start')];
    await c.waitAllReady();
    fake.webhookTargets = c.urls();

    // Phones that have written to us (their window is open) and sessions to read back.
    const windowOpen: string[] = [];
    const sessionIds: string[] = [];
    const stats = emptyStats();
    const kinds: Record<string, number> = {};
    let inboundSent = 0;
    const next = async (i: number): Promise<Call> => {
      const r = i % 20;
      if (r < 7) return { method: 'POST', path: '/api/v1/actions/trigger-sequence', body: { sequence_id: setup.sequenceId, phone: phoneNumber(i), context: { n: i } } };
      if (r < 10) {
        // A customer writes first; the next flow trigger may use the number.
        const phone = phoneNumber(i, 628);
        await fake.sendInbound(phone, `hello ${i}`);
        inboundSent += 1;
        windowOpen.push(phone);
        if (windowOpen.length > 1000) windowOpen.shift();
        return { method: 'GET', path: `/api/v1/contacts?phone=${encodeURIComponent(phone)}` };
      }
      if (r < 12 && windowOpen.length > 0) return { method: 'POST', path: '/api/v1/actions/trigger-flow', body: { flow_id: flowId, phone: windowOpen.shift(), context: { n: i } } };
      if (r < 15) return { method: 'POST', path: '/api/v1/subscribers/events', body: { email: `soak${i % 2000}@example.com`, event: 'order.placed', properties: { order: { id: `A-${i}`, total: i % 97 } } } };
      if (r === 15 && sessionIds.length > 0) return { method: 'GET', path: `/api/v1/sessions/${sessionIds[i % sessionIds.length]}` };
      if (r === 16) return { method: 'GET', path: '/api/v1/messages?limit=50' };
      if (r === 17) return { method: 'GET', path: `/api/v1/sequences/${setup.sequenceId}` };
      if (r === 18) return { method: 'GET', path: '/api/v1/contacts?limit=50' };
      return { method: 'GET', path: `/api/v1/sessions?limit=20&definition_id=${setup.sequenceId}` };
    };
    const load = runLoad({
      urls: () => c.urls(),
      token: setup.token,
      concurrency: 3,
      pauseMs: 10,
      hold: () => fake.pendingWebhooks() > 200,
      next,
      record: (_i, call, outcome) => {
        count(stats, call, outcome);
        const kind = `${call.method} ${call.path.split('?')[0]!.replace(/[0-9a-f-]{36}/g, '{id}')}`;
        kinds[kind] = (kinds[kind] ?? 0) + 1;
        if (outcome.kind === 'answered' && outcome.status === 201 && call.path.includes('trigger-')) {
          sessionIds.push((outcome.body as { id: string }).id);
          if (sessionIds.length > 500) sessionIds.shift();
        }
      },
    });

    const samples: Sample[] = [];
    const started = Date.now();
    const end = started + minutes * 60_000;
    while (Date.now() < end) {
      const sample: Sample = { t: Math.round((Date.now() - started) / 1000) };
      for (const m of members) {
        const memory = await m.memory();
        sample[`${m.name}.heap`] = memory.heapUsed;
        sample[`${m.name}.rss`] = m.rss();
      }
      samples.push(sample);
      await sleep(Math.min(sampleEveryMs, Math.max(0, end - Date.now())));
    }
    await load.stop();
    const seconds = (Date.now() - started) / 1000;

    // Let the work in flight finish, so the figures below count what the load caused.
    const db = ctx.database.db;
    await waitFor(
      async () => {
        const pending = Number((await sql<{ n: string }>`select count(*) as n from messages where status in ('queued', 'sending')`.execute(db)).rows[0]!.n);
        return (pending === 0 && fake.pendingWebhooks() === 0) || undefined;
      },
      120_000,
      () => 'messages still queued after the load stopped',
    );
    const messages = (await sql<{ channel: string; status: string; n: string }>`select channel, status, count(*) as n from messages group by channel, status`.execute(db)).rows;
    const sessions = (await sql<{ kind: string; status: string; n: string }>`select kind, status, count(*) as n from sessions group by kind, status`.execute(db)).rows;

    // The curve: medians of three samples at the middle and at the end of the run.
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
    const half = Math.floor(samples.length / 2);
    const growth: Record<string, { mid: number; end: number; growth: number; limit: number }> = {};
    for (const key of Object.keys(samples[0]!).filter((k) => k !== 't')) {
      const mid = median(samples.slice(Math.max(0, half - 1), half + 2).map((s) => s[key]!));
      const last = median(samples.slice(-3).map((s) => s[key]!));
      growth[key] = { mid, end: last, growth: last - mid, limit: key.endsWith('.heap') ? maxHeapGrowth(mid) : maxRssGrowth };
    }
    const mb = (n: number) => Math.round((n / 2 ** 20) * 10) / 10;
    report(`soak-${dialect}-${mode}`, {
      minutes,
      seconds,
      processes: members.map((m) => m.name),
      requests: stats.requests,
      answered: stats.byStatus,
      requestKinds: kinds,
      inboundMessages: inboundSent,
      statusWebhooks: fake.figures.delivered,
      acceptedAtProvider: fake.acceptedCount(),
      duplicatesAtProvider: fake.duplicates().length,
      messages,
      sessions,
      growthMb: Object.fromEntries(Object.entries(growth).map(([k, g]) => [k, { mid: mb(g.mid), end: mb(g.end), growth: mb(g.growth), limit: mb(g.limit) }])),
      curveMb: samples.map((s) => Object.fromEntries(Object.entries(s).map(([k, v]) => [k, k === 't' ? v : mb(v)]))),
    });

    expect(stats.serverErrors).toEqual([]);
    expect(c.crashes).toEqual([]);
    expect(fake.duplicates()).toEqual([]);
    expect(fake.figures.refused).toEqual([]);
    expect(samples.length).toBeGreaterThanOrEqual(6);
    for (const [key, g] of Object.entries(growth)) expect({ key, grewTooMuch: g.growth > g.limit, growthMb: mb(g.growth) }).toEqual({ key, grewTooMuch: false, growthMb: mb(g.growth) });
  });
});
