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
}

export interface ClaimFigures {
  dialect: Dialect;
  waiting: number;
  claimMicrosEmpty: number;
  claimMicrosWithWaiting: number;
}

export interface BenchDatabase {
  database: Database;
  url: string | null;
  drop(): Promise<void>;
}

export async function createBenchDatabase(dialect: Dialect, adminUrl: string): Promise<BenchDatabase> {
  if (dialect === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'nudge-bench-'));
    const database = openDatabase({ databaseUrl: null, dataDir: dir });
    await migrateToLatest(database.db);
    return { database, url: null, drop: async () => { await database.close(); rmSync(dir, { recursive: true, force: true }); } };
  }
  const name = `nudge_bench_${process.pid}_${Date.now()}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`create database "${name}"`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const database = openDatabase({ databaseUrl: url.toString(), dataDir: '', poolSize: 10 });
  await migrateToLatest(database.db);
  return {
    database,
    url: url.toString(),
    drop: async () => {
      await database.close();
      const a = new pg.Client({ connectionString: adminUrl });
      await a.connect();
      await a.query(`drop database if exists "${name}" with (force)`);
      await a.end();
    },
  };
}

function benchContext(database: Database, waker: LocalWaker, inline = true): Context {
  const log = pino({ level: 'silent' });
  return {
    // The product's own settings (NUDGE_WORKER_BATCH_SIZE and the rest can be set in the environment).
    config: loadConfig({ ...process.env, LOG_LEVEL: 'silent', DATABASE_URL: undefined }),
    database,
    clock: systemClock,
    log,
    secretKey: 'bench-secret-key-0123456789abcdef0123',
    wake: new WakeRelay(waker, database, log),
    channels: new SandboxOnlyRegistry({ inline }),
    versions: new VersionCache(),
    webhooks: new WebhookSubscriptionCache(),
  };
}

function workerOptions(ctx: Context) {
  return { batchSize: ctx.config.workerBatchSize, pollIntervalMs: ctx.config.pollIntervalMs, dispatchConcurrency: ctx.config.dispatchConcurrency, leaseMs: ctx.config.dispatchLeaseMs };
}

/** The drip: send → 1 s → send → 1 s → send, one merge tag per message, published. */
async function publishDrip(ctx: Context) {
  const workspaceId = (await createWorkspace(ctx, 'Bench')).id;
  const sequence = await createDefinition(ctx, workspaceId, 'sequence', {
    name: 'Drip',
    steps: [
      { type: 'sms', text: 'Hello {{context.first_name}}' },
      { type: 'sms', delay: { seconds: 1 }, text: 'Day two, {{context.first_name}}' },
      { type: 'sms', delay: { seconds: 1 }, text: 'Last one, {{context.first_name}}' },
    ],
  });
  await publishDefinition(ctx, workspaceId, 'sequence', sequence.id);
  return { workspaceId, sequence };
}

/** Done when no session waits and no message is pending: two reads of the indexes' low ends. */
async function waitUntilIdle(ctx: Context): Promise<void> {
  const db = ctx.database.db;
  for (;;) {
    const open = await db.selectFrom('sessions').select('id').where('wake_at', 'is not', null).limit(1).execute();
    const pending = await db.selectFrom('messages').select('id').where('next_attempt_at', 'is not', null).limit(1).execute();
    if (open.length === 0 && pending.length === 0) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/**
 * The drip workload: each contact enrolled in send → 1 s → send → 1 s → send, one merge
 * tag per message, each message recorded durably (queued, dispatched to the sandbox,
 * delivered). A step is one node run that queues and dispatches a message.
 */
export async function runDrip(dialect: Dialect, adminUrl: string, contacts: number, workers = 1, delivery: 'inline' | 'dispatch' = 'inline'): Promise<EngineFigures> {
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

    const db = ctx.database.db;
    await waitUntilIdle(ctx);
    const runSeconds = (performance.now() - started) / 1000;
    for (const w of pool) await w.stop();

    const delivered = await db.selectFrom('messages').select((eb) => eb.fn.countAll<number>().as('n')).where('status', '=', 'delivered').executeTakeFirstOrThrow();
    if (Number(delivered.n) !== contacts * 3) throw new Error(`expected ${contacts * 3} delivered messages, found ${delivered.n}`);

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
    };
  } finally {
    await bench.drop();
  }
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
 * claim reads only the low end of the due index, so the two should match.
 */
export async function measureClaimCost(dialect: Dialect, adminUrl: string, waiting: number): Promise<ClaimFigures> {
  const bench = await createBenchDatabase(dialect, adminUrl);
  try {
    const db = bench.database.db;
    const timeClaims = async () => {
      // 200 claims of up to 500 due sessions each, in transactions as the worker makes them.
      const rounds = 200;
      const start = performance.now();
      for (let i = 0; i < rounds; i += 1) {
        await db.transaction().execute((trx) => claimDueSessions(trx, bench.database.dialect, Date.now(), 500));
      }
      return Math.round(((performance.now() - start) / rounds) * 1000);
    };
    // 500 sessions due now in both measurements, so the claim returns a full batch.
    const now = Date.now();
    await insertSessions(bench.database, 500, now - 1000);
    const empty = await timeClaims();
    await insertSessions(bench.database, waiting, now + 30 * 86_400_000);
    if (bench.database.dialect === 'postgres') await sql`analyze sessions`.execute(db);
    const loaded = await timeClaims();
    return { dialect, waiting, claimMicrosEmpty: empty, claimMicrosWithWaiting: loaded };
  } finally {
    await bench.drop();
  }
}

async function insertSessions(database: Database, count: number, wakeAt: number): Promise<void> {
  const db = database.db;
  const now = Date.now();
  const chunk = 1000;
  for (let i = 0; i < count; i += chunk) {
    const rows = Array.from({ length: Math.min(chunk, count - i) }, (_, j) => ({
      id: newId(),
      workspace_id: 'bench',
      definition_id: 'bench',
      version_id: 'bench',
      kind: 'sequence' as const,
      contact_id: `c${i + j}-${wakeAt}`,
      status: 'running',
      active: 1,
      enrollment_key: '',
      current_node: 'a',
      wake_at: wakeAt + ((i + j) % 1000),
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
    }));
    await db.insertInto('sessions').values(rows).execute();
  }
}
