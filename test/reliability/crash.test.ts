import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { createTestContext, type TestContext } from '../support/app.js';
import { dialects } from '../support/databases.js';
import { Cluster, type Member } from './support/cluster.js';
import { CountingMeta } from './support/counting-meta.js';
import { count, emptyStats, phoneNumber, runLoad, type Outcome } from './support/load.js';
import { figure, report, sleep, waitFor } from './support/mode.js';
import { provisionWhatsAppSequence, type Provisioned } from './support/provision.js';

/**
 * Crash safety with real processes and a real remote provider path. While a load
 * generator keeps calling trigger-sequence, Nudge processes are killed with SIGKILL at
 * random instants and restarted: on PostgreSQL two `nudge api` and two `nudge worker`
 * processes, on SQLite one `nudge start`. A third of the kills are aimed at the most
 * hazardous instant: the worker whose send the provider has just accepted, before the
 * answer reaches it. The provider is the fake Meta, which counts every message it
 * accepts and calls back with signed status webhooks naming Nudge's message id, the
 * way Nudge settles a send whose answer was lost.
 *
 * Afterwards, with every process up again and the queues drained: every request that
 * got a 2xx has its enrollment, every enrollment (whether or not its request got an
 * answer) received each drip message exactly once at the provider, and nothing else
 * was sent.
 */

interface Case {
  dialect: (typeof dialects)[number];
  kills: number;
  topology: string;
}

const cases: Case[] = dialects.map((dialect) =>
  dialect === 'postgres'
    ? { dialect, kills: figure('crash_kills', 10, 30), topology: '2 api + 2 worker processes' }
    : { dialect, kills: figure('crash_sqlite_kills', 6, 30), topology: '1 start process' },
);

const steps = 3;
const maxWebhookBacklog = figure('crash_max_backlog', 200, 200);
// Half the default (60 s): long enough for the status webhook of a send whose worker died
// to settle it (see RELIABILITY.md for the window this leaves), short enough for the run
// to drain quickly the sends that never left.
const leaseMs = figure('crash_lease_ms', 30_000, 30_000);

describe.each(cases)('kill -9 under load on $dialect ($topology)', ({ dialect, kills }) => {
  let ctx: TestContext;
  let fake: CountingMeta;
  let setup: Provisioned;
  let cluster: Cluster | null = null;

  beforeAll(async () => {
    fake = await new CountingMeta().start();
    ctx = await createTestContext(dialect);
    setup = await provisionWhatsAppSequence(ctx, fake, { steps, delaySeconds: 1 });
  });

  afterAll(async () => {
    await cluster?.stop();
    await fake.stop();
    await ctx.database.close();
  });

  it('loses no accepted request and sends every drip message exactly once', async () => {
    const env: Record<string, string> = {
      NUDGE_SECRET_KEY: ctx.secretKey,
      NUDGE_DATA_DIR: ctx.database.dataDir,
      ...(ctx.database.databaseUrl ? { DATABASE_URL: ctx.database.databaseUrl } : {}),
      NUDGE_DISPATCH_LEASE_MS: String(leaseMs),
      NUDGE_POLL_INTERVAL_MS: '200',
      NUDGE_WORKER_BATCH_SIZE: '100',
      NUDGE_DISPATCH_CONCURRENCY: '16',
      NUDGE_WHATSAPP_RATE_PER_SECOND: '10000',
      NUDGE_WEBHOOK_TIMEOUT_MS: '5000',
      NUDGE_RATE_LIMIT: '10000000',
    };
    cluster = new Cluster(env);
    const c = cluster;
    if (dialect === 'postgres') {
      await c.add('api');
      await c.add('api');
      await c.add('worker');
      await c.add('worker');
    } else {
      await c.add('start');
    }
    await c.waitAllReady();
    fake.webhookTargets = c.urls();

    // The load: a new phone number per request, so every 201 is a new enrollment.
    const outcomes = new Map<number, Outcome>();
    const stats = emptyStats();
    const load = runLoad({
      urls: () => c.urls(),
      token: setup.token,
      concurrency: dialect === 'postgres' ? 4 : 2,
      // Within capacity: a crash test is about correctness, and a webhook backlog longer
      // than the lease is the duplicate window RELIABILITY.md describes, measured apart.
      hold: () => fake.pendingWebhooks() > maxWebhookBacklog,
      next: (i) => ({ method: 'POST', path: '/api/v1/actions/trigger-sequence', body: { sequence_id: setup.sequenceId, phone: phoneNumber(i), context: { n: i } } }),
      record: (i, call, outcome) => {
        outcomes.set(i, outcome);
        count(stats, call, outcome);
      },
    });

    const restart = (member: Member, reason: string) =>
      c.killAndRestart(member, reason).then(() => {
        void c.waitReady(member).catch(() => undefined); // a failed start is recorded as a crash
      });
    const ready = (members: Member[]) => members.filter((m) => m.ready && m.alive);
    // Kills the process that sent the next message the provider accepts, before it reads the answer.
    const killNextSender = () =>
      Promise.race([
        new Promise<boolean>((resolve) => {
          fake.onAccepted = async (_attempt, socket) => {
            fake.onAccepted = null;
            const sender = socket.remotePort === undefined ? null : c.memberOwningLocalPort(socket.remotePort);
            if (sender) await restart(sender, `right after the provider accepted its send (${sender.role})`);
            resolve(sender !== null);
          };
        }),
        sleep(5000).then(() => {
          fake.onAccepted = null;
          return false;
        }),
      ]);

    const started = Date.now();
    await sleep(1000);
    for (let k = 0; k < kills; k += 1) {
      const kind = k % 3 === 0 ? 'provoked' : Math.random() < 0.5 ? 'worker' : 'api';
      const pool = kind === 'api' ? c.apis() : c.workers();
      // A random instant while the victim's role is up: the pause starts once one is ready,
      // so the cluster is not kept down by kills landing on processes still starting.
      await waitFor(async () => ready(pool).length > 0 || undefined, 60_000, () => `no ${kind} process became ready`, 50);
      await sleep(300 + Math.floor(Math.random() * 1200));
      if (kind === 'provoked' && (await killNextSender())) continue;
      const candidates = await waitFor(async () => (ready(pool).length > 0 ? ready(pool) : undefined), 60_000, () => `no ${kind} process became ready`, 50);
      const victim = candidates[Math.floor(Math.random() * candidates.length)]!;
      await restart(victim, `at a random instant (${victim.role})`);
    }
    await c.waitAllReady();
    await sleep(1000);
    await load.stop();
    const loadSeconds = (Date.now() - started) / 1000;

    // Drain: every session ended, no message waiting, every callback delivered and applied.
    const db = ctx.database.db;
    const scalar = async (query: ReturnType<typeof sql<{ n: number | string }>>) => Number((await query.execute(db)).rows[0]?.n ?? 0);
    const state = async () => ({
      openSessions: await scalar(sql`select count(*) as n from sessions where definition_id = ${setup.sequenceId} and active = 1`),
      pendingMessages: await scalar(sql`select count(*) as n from messages where definition_id = ${setup.sequenceId} and status in ('queued', 'sending')`),
      undelivered: await scalar(sql`select count(*) as n from messages where definition_id = ${setup.sequenceId} and status <> 'delivered'`),
      pendingWebhooks: fake.pendingWebhooks(),
    });
    const drainStarted = Date.now();
    await waitFor(
      async () => {
        const s = await state();
        return s.openSessions === 0 && s.pendingMessages === 0 && s.undelivered === 0 && s.pendingWebhooks === 0 ? s : undefined;
      },
      leaseMs + 120_000,
      async () => {
        const stuck = await sql`select status, error_code, count(*) as n from messages where definition_id = ${setup.sequenceId} and status <> 'delivered' group by status, error_code`.execute(db);
        return `${JSON.stringify(await state())}; not delivered: ${JSON.stringify(stuck.rows)}\n${c.members.flatMap((m) => m.output.slice(-10)).join('\n')}`;
      },
    );
    const drainSeconds = (Date.now() - drainStarted) / 1000;

    // What Nudge holds.
    const sessions = await db.selectFrom('sessions').innerJoin('contacts', 'contacts.id', 'sessions.contact_id').select(['sessions.id', 'sessions.status', 'sessions.context', 'contacts.phone']).where('sessions.definition_id', '=', setup.sequenceId).execute();
    const byRequest = new Map(sessions.map((s) => [Number(JSON.parse(s.context).n), s]));
    const perSession = await sql<{ session_id: string; n: number | string; delivered: number | string; nodes: number | string }>`
      select session_id, count(*) as n, sum(case when status = 'delivered' then 1 else 0 end) as delivered, count(distinct node_id) as nodes
      from messages where definition_id = ${setup.sequenceId} group by session_id`.execute(db);
    const messagesOf = new Map(perSession.rows.map((r) => [r.session_id, r]));

    const lostEnrolled = [...outcomes.entries()].filter(([i, o]) => o.kind === 'lost' && byRequest.has(i)).length;
    const byReason: Record<string, number> = {};
    for (const kill of c.kills) byReason[kill.reason] = (byReason[kill.reason] ?? 0) + 1;
    report(`crash-${dialect}`, {
      topology: dialect === 'postgres' ? '2 api + 2 worker' : '1 start',
      kills: c.kills.length,
      killsByReason: byReason,
      loadSeconds,
      drainSeconds,
      requests: stats.requests,
      answered: stats.byStatus,
      connectionLost: stats.lost,
      connectionRefused: stats.refused,
      lostButEnrolled: lostEnrolled,
      enrollments: sessions.length,
      messages: sessions.length * steps,
      acceptedAtProvider: fake.acceptedCount(),
      duplicatesAtProvider: fake.duplicates().length,
      serverErrors: stats.serverErrors.length,
      callbacks: { delivered: fake.figures.delivered, retried: fake.figures.retried, latencyMs: fake.callbackLatency() },
      leaseMs,
      startupMs: c.startupFigures(),
    });

    // Every answered 2xx is an enrollment that ran to completion.
    const answered2xx = [...outcomes.entries()].filter(([, o]) => o.kind === 'answered' && o.status >= 200 && o.status < 300);
    const missing = answered2xx.filter(([i, o]) => byRequest.get(i)?.id !== (o as { body: { id?: string } }).body.id);
    expect(missing.map(([i]) => i), 'requests answered 2xx without their enrollment').toEqual([]);
    expect(answered2xx.every(([, o]) => o.kind === 'answered' && o.status === 201)).toBe(true);

    // Each enrollment belongs to a request that was sent, for the phone it named, and is complete.
    const wrong: string[] = [];
    for (const [i, s] of byRequest) {
      const outcome = outcomes.get(i);
      if (!outcome) wrong.push(`session ${s.id} for request ${i}, never sent`);
      else if (outcome.kind === 'refused') wrong.push(`session ${s.id} for request ${i}, whose connection was refused`);
      if (s.phone !== phoneNumber(i)) wrong.push(`session ${s.id} of request ${i} has phone ${s.phone}`);
      if (s.status !== 'completed') wrong.push(`session ${s.id} is ${s.status}`);
      const m = messagesOf.get(s.id);
      if (!m || Number(m.n) !== steps || Number(m.delivered) !== steps || Number(m.nodes) !== steps) wrong.push(`session ${s.id}: ${JSON.stringify(m)}`);
      for (let step = 1; step <= steps; step += 1) {
        const got = fake.accepted.get(`${phoneNumber(i)}|${setup.expectedText(step, i)}`)?.length ?? 0;
        if (got !== 1) wrong.push(`request ${i} step ${step} reached the provider ${got} times`);
      }
    }
    if (wrong.length > 0) {
      // What the provider saw and what Nudge holds for each message sent more than once, beside the kills.
      const duplicated = fake.duplicates().slice(0, 20);
      const ids = duplicated.flatMap((d) => d.messageIds).filter((id): id is string => id !== null);
      const rows = ids.length === 0 ? [] : await db.selectFrom('messages').select(['id', 'session_id', 'node_id', 'dedupe_key', 'status', 'attempts', 'provider_message_id', 'error_code', 'created_at', 'updated_at', 'sent_at']).where('id', 'in', ids).execute();
      report(`crash-${dialect}-failure`, {
        duplicated: duplicated.map((d) => ({ ...d, attempts: fake.attempts.filter((a) => `${a.to}|${a.text}` === d.key).map((a) => ({ messageId: a.messageId, arrivedAt: a.arrivedAt, answeredAt: a.answeredAt, wamid: a.wamid })) })),
        rows,
        kills: c.kills,
      });
    }
    expect(wrong).toEqual([]);
    expect(sessions).toHaveLength(byRequest.size);

    // Nothing else reached the provider, and nothing twice.
    const duplicates = fake.duplicates();
    expect(duplicates).toEqual([]);
    expect(fake.acceptedCount()).toBe(sessions.length * steps);
    expect(stats.serverErrors).toEqual([]);
    expect(fake.figures.refused).toEqual([]);
    expect(c.crashes).toEqual([]);

  });
});
