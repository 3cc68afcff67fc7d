import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import pg from 'pg';
import pino from 'pino';
import { systemClock } from '../src/domain/clock.js';
import { loadConfig } from '../src/domain/config.js';
import { newId } from '../src/domain/ids.js';
import { createWorkspace } from '../src/engine/auth-service.js';
import { SandboxOnlyRegistry } from '../src/engine/channel-registry.js';
import type { Context } from '../src/engine/context.js';
import { createDefinition, publishDefinition } from '../src/engine/definition-service.js';
import { triggerDefinition } from '../src/engine/enrollment-service.js';
import { VersionCache } from '../src/engine/version-cache.js';
import { WebhookSubscriptionCache } from '../src/engine/webhook-subscription-cache.js';
import { LocalWaker, WakeRelay } from '../src/engine/waker.js';
import { Worker } from '../src/engine/worker.js';
import { openDatabase, type Database, type Dialect } from '../src/store/database.js';
import { migrateToLatest } from '../src/store/migrate.js';
import { claimDueSessions } from '../src/store/session-repository.js';
import { percentile } from './support/figures.js';
import { dripDelayMs } from './peers/message-store.js';
import { sampleOwnRss, sampleProcessRss } from './support/memory.js';
import { benchSecretKey, startNudge } from './support/nudge-process.js';
import { LookupCache } from '../src/engine/lookup-cache.js';

export interface EngineFigures {
  dialect: Dialect;
  delivery: 'inline' | 'dispatch';
  contacts: number;
  workers: number;
  enrollmentsPerSecond: number;
  stepsPerSecond: number;
  runSeconds: number;
  timerLatenessP50Ms: number;
  timerLatenessP99Ms: number;
  sendLatenessP50Ms: number;
  sendLatenessP99Ms: number;
  /** Peak RSS of the process that enrolled and ran the drip (the bench runs each drip in its own process). */
  peakRssBytes: number;
  /** Null when the run's own check passed (3 × contacts messages delivered, none twice); otherwise what was wrong. */
  failure: string | null;
}

export interface ClaimFigures {
  dialect: Dialect;
  waiting: number;
  claimMicrosEmpty: number;
  claimMicrosWithWaiting: number;
  /** Time to bulk-insert the waiting sessions (setup, not a product figure). */
  insertSeconds: number;
  /** Contacts in the due batch each `nudge worker` ran (the drip: 3 messages each). */
  due: number;
  workerPeakRssEmptyBytes: number;
  workerPeakRssWithWaitingBytes: number;
  workerSecondsEmpty: number;
  workerSecondsWithWaiting: number;
  failure: string | null;
}

export interface BenchDatabase {
  database: Database;
  url: string | null;
  /** The SQLite data folder (empty on PostgreSQL), for a `nudge` process pointed at the same database. */
  dataDir: string;
  drop(): Promise<void>;
}

export async function createBenchDatabase(dialect: Dialect, adminUrl: string, poolSize = 10): Promise<BenchDatabase> {
  if (dialect === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'nudge-bench-'));
    const database = openDatabase({ databaseUrl: null, dataDir: dir, backgroundCheckpoints: true });
    await migrateToLatest(database.db);
    return { database, url: null, dataDir: dir, drop: async () => { await database.close(); rmSync(dir, { recursive: true, force: true }); } };
  }
  const name = `nudge_bench_${process.pid}_${Date.now()}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`create database "${name}"`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const database = openDatabase({ databaseUrl: url.toString(), dataDir: '', poolSize });
  await migrateToLatest(database.db);
  return {
    database,
    url: url.toString(),
    dataDir: '',
    drop: async () => {
      await database.close();
      const a = new pg.Client({ connectionString: adminUrl });
      await a.connect();
      await a.query(`drop database if exists "${name}" with (force)`);
      await a.end();
    },
  };
}

export function benchContext(database: Database, waker: LocalWaker, inline = true): Context {
  const log = pino({ level: 'silent' });
  return {
    // The product's own settings (NUDGE_WORKER_BATCH_SIZE and the rest can be set in the environment).
    config: loadConfig({ ...process.env, LOG_LEVEL: 'silent', DATABASE_URL: undefined }),
    database,
    clock: systemClock,
    log,
    secretKey: benchSecretKey,
    wake: new WakeRelay(waker, database, log),
    channels: new SandboxOnlyRegistry({ inline }),
    versions: new VersionCache(),
    webhooks: new WebhookSubscriptionCache(),
    lookups: new LookupCache(database),
  };
}

function workerOptions(ctx: Context) {
  return { batchSize: ctx.config.workerBatchSize, pollIntervalMs: ctx.config.pollIntervalMs, dispatchConcurrency: ctx.config.dispatchConcurrency, leaseMs: ctx.config.dispatchLeaseMs };
}

/** The drip: send → 1 s → send → 1 s → send, one merge tag per message, published. */
export async function publishDrip(ctx: Context) {
  const workspaceId = (await createWorkspace(ctx, 'Bench')).id;
  const sequence = await createDefinition(ctx, workspaceId, 'sequence', {
    name: 'Drip',
    steps: [
      { type: 'sms', text: 'Hello {{context.first_name}}' },
      { type: 'sms', delay: { seconds: dripDelayMs / 1000 }, text: 'Day two, {{context.first_name}}' },
      { type: 'sms', delay: { seconds: dripDelayMs / 1000 }, text: 'Last one, {{context.first_name}}' },
    ],
  });
  await publishDefinition(ctx, workspaceId, 'sequence', sequence.id);
  return { workspaceId, sequence };
}

/**
 * Done when no session waits and no message is pending: two reads of the indexes' low
 * ends. The peers notice their last message the moment it is recorded; so that the
 * drip's figure is not rounded up by the polling, it sleeps until the earliest the run
 * can end (`notBefore`, a `performance.now()` time) and from then on looks every 5 ms.
 */
async function waitUntilIdle(ctx: Context, notBefore = 0, everyMs = 50): Promise<void> {
  const db = ctx.database.db;
  const early = notBefore - performance.now();
  if (early > 0) await new Promise((r) => setTimeout(r, early));
  for (;;) {
    const open = await db.selectFrom('sessions').select('id').where('wake_at', 'is not', null).limit(1).execute();
    const pending = await db.selectFrom('messages').select('id').where('next_attempt_at', 'is not', null).limit(1).execute();
    if (open.length === 0 && pending.length === 0) return;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}


/**
 * The drip workload: each contact enrolled in send → 1 s → send → 1 s → send, one merge
 * tag per message, each message recorded durably (queued, dispatched to the sandbox,
 * delivered). A step is one node run that queues and dispatches a message.
 */
export async function runDrip(dialect: Dialect, adminUrl: string, contacts: number, workers = 1, delivery: 'inline' | 'dispatch' = 'inline'): Promise<EngineFigures> {
  const rss = sampleOwnRss();
  const bench = await createBenchDatabase(dialect, adminUrl);
  const waker = new LocalWaker();
  const ctx = benchContext(bench.database, waker, delivery === 'inline');
  try {
    const { workspaceId, sequence } = await publishDrip(ctx);

    // Enrollment first, measured alone; then the workers run the whole backlog and the timers.
    const enrollStart = performance.now();
    const concurrency = 64;
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < contacts) {
          const i = next++;
          await triggerDefinition(ctx, ctx.versions, workspaceId, 'sequence', {
            definitionId: sequence.id,
            phone: `+1415${String(5000000 + i).padStart(7, '0')}`,
            context: { first_name: `Contact ${i}` },
          });
        }
      }),
    );
    const enrollSeconds = (performance.now() - enrollStart) / 1000;

    const pool = Array.from({ length: workers }, () => new Worker(ctx, ctx.channels, ctx.versions, waker, workerOptions(ctx)));
    const started = performance.now();
    for (const w of pool) w.start();

    // No contact's third message can be recorded before both delays have passed.
    await waitUntilIdle(ctx, started + 2 * dripDelayMs, 5);
    const runSeconds = (performance.now() - started) / 1000;
    for (const w of pool) await w.stop();

    const failure = await verifyDrip(ctx, contacts);

    const { timer, sendLate } = await lateness(ctx);
    return {
      dialect,
      delivery,
      contacts,
      workers,
      enrollmentsPerSecond: Math.round(contacts / enrollSeconds),
      stepsPerSecond: Math.round((contacts * 3) / runSeconds),
      runSeconds: Math.round(runSeconds * 100) / 100,
      timerLatenessP50Ms: percentile(timer, 50),
      timerLatenessP99Ms: percentile(timer, 99),
      sendLatenessP50Ms: percentile(sendLate, 50),
      sendLatenessP99Ms: percentile(sendLate, 99),
      peakRssBytes: rss.stop(),
      failure,
    };
  } finally {
    await bench.drop();
  }
}

/** The drip's own check: every contact got its three messages, delivered, and none twice. */
async function verifyDrip(ctx: Context, contacts: number): Promise<string | null> {
  const row = await sql<{ total: number | string; delivered: number | string; distinct_steps: number | string }>`
    select count(*) as total,
           sum(case when status = 'delivered' then 1 else 0 end) as delivered,
           count(distinct contact_id || ':' || node_id) as distinct_steps
    from messages`.execute(ctx.database.db);
  const counts = row.rows[0]!;
  const expected = contacts * 3;
  if (Number(counts.total) !== expected) return `expected ${expected} messages, found ${counts.total}`;
  if (Number(counts.delivered) !== expected) return `expected ${expected} delivered messages, found ${counts.delivered}`;
  if (Number(counts.distinct_steps) !== expected) return `${expected - Number(counts.distinct_steps)} duplicate (contact, step) messages`;
  return null;
}

/**
 * Timer lateness: how late each delay's wake-up ran against when it was due; send
 * lateness: how long after its step queued it each message was delivered.
 */
async function lateness(ctx: Context): Promise<{ timer: number[]; sendLate: number[] }> {
  const db = ctx.database.db;
  const steps = await sql<{ session_id: string; outcome: string; detail: string | null; at: number | string }>`
      select session_id, outcome, detail, at from session_steps order by session_id, id`.execute(db);
    const timer: number[] = [];
    let due: number | null = null;
    let current = '';
    for (const row of steps.rows) {
      if (row.session_id !== current) {
        current = row.session_id;
        due = null;
      }
      if (row.outcome === 'waiting') due = Date.parse(JSON.parse(row.detail ?? '{}').until as string);
      else if (row.outcome === 'queued' && due !== null) {
        timer.push(Number(row.at) - due);
        due = null;
      }
    }
    // Send lateness: when the message was delivered, against when its step was due.
    const sends = await sql<{ created_at: number | string; sent_at: number | string }>`select created_at, sent_at from messages`.execute(db);
    const sendLate = sends.rows.map((r) => Number(r.sent_at) - Number(r.created_at));
    timer.sort((a, b) => a - b);
    sendLate.sort((a, b) => a - b);
    return { timer, sendLate };
}

export interface SteadyFigures {
  dialect: Dialect;
  ratePerSecond: number;
  seconds: number;
  timerLatenessP50Ms: number;
  timerLatenessP99Ms: number;
  timerLatenessMaxMs: number;
  startLatenessP99Ms: number;
}

/**
 * Timer precision under a steady load below capacity: enrollments arrive at a fixed
 * rate for a while (as API traffic would) while the worker runs the same drip.
 */
export async function runSteady(dialect: Dialect, adminUrl: string, ratePerSecond: number, seconds: number): Promise<SteadyFigures> {
  const bench = await createBenchDatabase(dialect, adminUrl);
  const waker = new LocalWaker();
  const ctx = benchContext(bench.database, waker);
  try {
    const { workspaceId, sequence } = await publishDrip(ctx);
    const worker = new Worker(ctx, ctx.channels, ctx.versions, waker, workerOptions(ctx));
    worker.start();
    const tick = 50;
    const perTick = Math.max(1, Math.round((ratePerSecond * tick) / 1000));
    let n = 0;
    const start = performance.now();
    while (performance.now() - start < seconds * 1000) {
      const due = start + (n / perTick) * tick;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      await Promise.all(
        Array.from({ length: perTick }, (_, j) =>
          triggerDefinition(ctx, ctx.versions, workspaceId, 'sequence', {
            definitionId: sequence.id,
            phone: `+1415${String(5000000 + n * perTick + j).padStart(7, '0')}`,
            context: { first_name: 'Steady' },
          }),
        ),
      );
      n += 1;
    }
    const db = ctx.database.db;
    await waitUntilIdle(ctx);
    await worker.stop();
    const { timer } = await lateness(ctx);
    const starts = await sql<{ late: number | string }>`select m.sent_at - s.created_at as late from messages m join sessions s on s.id = m.session_id where m.node_id = 'step-1'`.execute(db);
    const startLate = starts.rows.map((r) => Number(r.late)).sort((a, b) => a - b);
    return {
      dialect,
      ratePerSecond,
      seconds,
      timerLatenessP50Ms: percentile(timer, 50),
      timerLatenessP99Ms: percentile(timer, 99),
      timerLatenessMaxMs: timer.at(-1) ?? 0,
      startLatenessP99Ms: percentile(startLate, 99),
    };
  } finally {
    await bench.drop();
  }
}

/**
 * Claim cost with `waiting` sessions scheduled far in the future versus none: the
 * claim reads only the low end of the due index, so the two should match. Then the
 * memory of a separate `nudge worker` process that runs a small due batch (the drip
 * for `due` contacts) with none waiting and with them waiting: a worker must not
 * load what is not due.
 */
export async function measureClaimCost(dialect: Dialect, adminUrl: string, waiting: number, due = Number(process.env.BENCH_CLAIM_DUE ?? 1000)): Promise<ClaimFigures> {
  const bench = await createBenchDatabase(dialect, adminUrl);
  const waker = new LocalWaker();
  const ctx = benchContext(bench.database, waker);
  try {
    const db = bench.database.db;
    const timeClaims = async () => {
      // 500 sessions due now in both measurements, so the claim returns a full batch.
      const ids = await insertDueSessions(bench.database, 500, Date.now() - 1000);
      // 200 claims of up to 500 due sessions each, in transactions as the worker makes them.
      const rounds = 200;
      const start = performance.now();
      for (let i = 0; i < rounds; i += 1) {
        await db.transaction().execute((trx) => claimDueSessions(trx, bench.database.dialect, Date.now(), 500));
      }
      const micros = Math.round(((performance.now() - start) / rounds) * 1000);
      // Gone before a real worker runs: they name no definition it could run.
      for (let i = 0; i < ids.length; i += 100) await db.deleteFrom('sessions').where('id', 'in', ids.slice(i, i + 100)).execute();
      return micros;
    };
    const { workspaceId, sequence } = await publishDrip(ctx);
    let batch = 0;
    const workerRun = async () => {
      const first = batch * due;
      batch += 1;
      for (let i = 0; i < due; i += 1) {
        await triggerDefinition(ctx, ctx.versions, workspaceId, 'sequence', {
          definitionId: sequence.id,
          phone: `+1415${String(5000000 + first + i).padStart(7, '0')}`,
          context: { first_name: `Due ${first + i}` },
        });
      }
      const worker = await startNudge('worker', { databaseUrl: bench.url, dataDir: bench.dataDir });
      const rss = sampleProcessRss(worker.pid);
      const started = performance.now();
      const expected = batch * due * 3;
      const deadline = Date.now() + 120_000;
      for (;;) {
        const row = await db.selectFrom('messages').select((eb) => eb.fn.countAll<number>().as('n')).where('status', '=', 'delivered').executeTakeFirstOrThrow();
        if (Number(row.n) >= expected) break;
        if (worker.exited()) throw new Error('nudge worker exited before it ran the due batch');
        if (Date.now() > deadline) throw new Error(`nudge worker delivered ${row.n} of ${expected} messages in 120 s`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const seconds = (performance.now() - started) / 1000;
      const peak = rss.stop();
      await worker.stop();
      return { peak, seconds: Math.round(seconds * 100) / 100 };
    };

    const empty = await timeClaims();
    const idle = await workerRun();
    const insertStart = performance.now();
    await insertWaitingSessions(bench.database, waiting, Date.now() + 30 * 86_400_000);
    const insertSeconds = Math.round((performance.now() - insertStart) / 100) / 10;
    const loaded = await timeClaims();
    const busy = await workerRun();

    const counted = await db.selectFrom('sessions').select((eb) => eb.fn.countAll<number>().as('n')).where('wake_at', '>', Date.now() + 86_400_000).executeTakeFirstOrThrow();
    const failure = Number(counted.n) === waiting ? null : `expected ${waiting} sessions waiting in the future, found ${counted.n}`;
    return {
      dialect,
      waiting,
      claimMicrosEmpty: empty,
      claimMicrosWithWaiting: loaded,
      insertSeconds,
      due,
      workerPeakRssEmptyBytes: idle.peak,
      workerPeakRssWithWaitingBytes: busy.peak,
      workerSecondsEmpty: idle.seconds,
      workerSecondsWithWaiting: busy.seconds,
      failure,
    };
  } finally {
    await bench.drop();
  }
}

function sessionRow(id: string, contactId: string, wakeAt: number, now: number) {
  return {
    id,
    workspace_id: 'bench',
    definition_id: 'bench',
    version_id: 'bench',
    kind: 'sequence' as const,
    contact_id: contactId,
    status: 'waiting',
    active: 1,
    enrollment_key: '',
    current_node: 'a',
    wake_at: wakeAt,
    expires_at: null,
    context: '{}',
    event: null,
    state: '{"visits":{}}',
    source: 'bench',
    end_reason: null,
    steps_run: 0,
    created_at: now,
    updated_at: now,
    ended_at: null,
  };
}

async function insertDueSessions(database: Database, count: number, wakeAt: number): Promise<string[]> {
  const now = Date.now();
  const rows = Array.from({ length: count }, (_, i) => sessionRow(newId(), `due-${i}-${wakeAt}`, wakeAt + i, now));
  for (let i = 0; i < rows.length; i += 100) await database.db.insertInto('sessions').values(rows.slice(i, i + 100)).execute();
  return rows.map((r) => r.id);
}

/**
 * `count` sessions waiting in the future, inserted as fast as each engine allows: on
 * SQLite one prepared statement in transactions of 100,000 rows, on PostgreSQL
 * `insert … select` over generate_series, a million rows per statement.
 */
async function insertWaitingSessions(database: Database, count: number, wakeAt: number): Promise<void> {
  const now = Date.now();
  const columns = 'id, workspace_id, definition_id, version_id, kind, contact_id, status, active, enrollment_key, current_node, wake_at, expires_at, context, event, state, source, end_reason, steps_run, created_at, updated_at, ended_at';
  if (database.sqlite) {
    const insert = database.sqlite.prepare(
      `insert into sessions (${columns}) values (?, 'bench', 'bench', 'bench', 'sequence', ?, 'waiting', 1, '', 'a', ?, null, '{}', null, '{"visits":{}}', 'bench', null, 0, ?, ?, null)`,
    );
    const insertRange = database.sqlite.transaction((from: number, to: number) => {
      for (let i = from; i < to; i += 1) insert.run(waitingId(i), `w${i}`, wakeAt + (i % 1000), now, now);
    });
    for (let i = 0; i < count; i += 100_000) insertRange(i, Math.min(count, i + 100_000));
    return;
  }
  for (let i = 0; i < count; i += 1_000_000) {
    const to = Math.min(count, i + 1_000_000);
    await sql`insert into sessions (${sql.raw(columns)})
      select '00000000-0000-7000-8000-' || lpad(to_hex(i), 12, '0'), 'bench', 'bench', 'bench', 'sequence', 'w' || i, 'waiting', 1, '', 'a',
             ${wakeAt}::bigint + (i % 1000), null, '{}', null, '{"visits":{}}', 'bench', null, 0, ${now}::bigint, ${now}::bigint, null
      from generate_series(${i}::bigint, ${to - 1}::bigint) as i`.execute(database.db);
  }
  await sql`analyze sessions`.execute(database.db);
}

/** The same ids on both engines: a valid UUID per index, in index order. */
function waitingId(i: number): string {
  return `00000000-0000-7000-8000-${i.toString(16).padStart(12, '0')}`;
}
