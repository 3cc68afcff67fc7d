import { CompiledQuery, sql } from 'kysely';
import { normalizeTagName } from '../src/domain/contact.js';
import { createToken, createWorkspace } from '../src/engine/auth-service.js';
import { applyContactChanges } from '../src/engine/automation.js';
import type { Context } from '../src/engine/context.js';
import { createDefinition, publishDefinition } from '../src/engine/definition-service.js';
import { triggerDefinition } from '../src/engine/enrollment-service.js';
import { LocalWaker } from '../src/engine/waker.js';
import { Worker } from '../src/engine/worker.js';
import type { Database, Dialect } from '../src/store/database.js';
import { attachTags, ensureTags } from '../src/store/tag-repository.js';
import { benchContext, createBenchDatabase } from './engine-bench.js';
import type { LoadConfig, LoadResult } from './load.js';
import { runNodeScript } from './support/child.js';
import { cloneId } from './support/clone-ids.js';
import { startNudge } from './support/nudge-process.js';

export interface StopFigures {
  dialect: Dialect;
  sessions: number;
  path: string;
  concurrency: number;
  setupSeconds: number;
  stopSeconds: number;
  stoppedPerSecond: number;
  failure: string | null;
  /** The API's own path on a sample of further contacts, one request per contact, or null when skipped. */
  api: { sessions: number; connections: number; seconds: number; stoppedPerSecond: number; non2xx: number } | null;
}

/** What the output says about the path measured: the API has no bulk tag route. */
export const stopPathNote =
  'Nudge has no bulk tag route: POST /api/v1/actions/add-tag and POST /api/v1/subscribers/tags tag one contact per request. ' +
  'Measured for all of them: the service path such a route would run, the tag attached and applyContactChanges called for 1,000 contacts per transaction; ' +
  'and, on a sample of further contacts, the API as it is: POST /api/v1/actions/add-tag once per contact from a separate process.';

/**
 * A workspace with a published two-step SMS sequence, a day apart, that stops when its
 * contact is tagged `customer`: what the stop scenarios enroll their contacts in.
 */
export async function stoppableSequence(ctx: Context): Promise<{ workspaceId: string; sequence: { id: string } }> {
  const workspaceId = (await createWorkspace(ctx, 'Bench')).id;
  const sequence = await createDefinition(ctx, workspaceId, 'sequence', {
    name: 'Trial nurture',
    stopCondition: { type: 'has_tag', value: 'customer' },
    steps: [
      { type: 'sms', text: 'Hello {{context.first_name}}' },
      { type: 'sms', delay: { days: 1 }, text: 'Still there, {{context.first_name}}?' },
    ],
  });
  await publishDefinition(ctx, workspaceId, 'sequence', sequence.id);
  return { workspaceId, sequence };
}

/**
 * The time to stop `count` sessions by their stop condition. Each contact runs a
 * sequence with `stopCondition: {type: 'has_tag', value: 'customer'}`, its first
 * message sent, waiting a day on the delay before the second, with a queued, unsent
 * message (as a message waiting for a retry is). Then every contact is tagged
 * `customer`, and the clock runs until the last session has stopped and its message is
 * cancelled. Set-up: one contact is enrolled and run by the engine; its contact,
 * session and message rows are then copied `count` times in bulk.
 */
export async function runStopBench(dialect: Dialect, adminUrl: string, count: number, apiSample = 0, apiConnections = 50): Promise<StopFigures> {
  const concurrency = dialect === 'postgres' ? Number(process.env.BENCH_STOP_CONCURRENCY ?? 4) : 1;
  const bench = await createBenchDatabase(dialect, adminUrl, concurrency + 2);
  const waker = new LocalWaker();
  const ctx = benchContext(bench.database, waker);
  const db = bench.database.db;
  try {
    const setupStart = performance.now();
    const { workspaceId, sequence } = await stoppableSequence(ctx);
    const seed = await triggerDefinition(ctx, ctx.versions, workspaceId, 'sequence', { definitionId: sequence.id, phone: '+14150000001', context: { first_name: 'Seed' } });
    const worker = new Worker(ctx, ctx.channels, ctx.versions, waker, { batchSize: 500, pollIntervalMs: 50, dispatchConcurrency: 8, leaseMs: 60_000 });
    worker.start();
    for (let waited = 0; ; waited += 20) {
      const row = await db.selectFrom('sessions').select(['wake_at']).where('id', '=', seed.sessionId!).executeTakeFirstOrThrow();
      if (row.wake_at !== null && row.wake_at > Date.now() + 3_600_000) break;
      if (waited > 30_000) throw new Error('the seed session did not reach its delay');
      await new Promise((r) => setTimeout(r, 20));
    }
    await worker.stop();
    // The API sample's contacts are copies count … count + apiSample - 1.
    await cloneSeed(bench.database, seed.sessionId!, count + apiSample);
    // The seed itself ends: only the copies are measured.
    await db.updateTable('sessions').set({ status: 'completed', active: 0, wake_at: null, ended_at: Date.now() }).where('id', '=', seed.sessionId!).execute();
    const setupSeconds = (performance.now() - setupStart) / 1000;

    const contactIds = Array.from({ length: count }, (_, i) => cloneId(1, i));
    const started = performance.now();
    const tag = normalizeTagName('customer');
    const [stored] = await ensureTags(db, workspaceId, [tag], Date.now());
    let next = 0;
    const chunk = 1000;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < contactIds.length) {
          const ids = contactIds.slice(next, next + chunk);
          next += chunk;
          await db.transaction().execute(async (trx) => {
            const now = Date.now();
            for (const id of ids) await attachTags(trx, workspaceId, id, [stored!.id], now);
            await trx.updateTable('contacts').set({ updated_at: now }).where('id', 'in', ids).execute();
            await applyContactChanges(ctx, trx, workspaceId, ids.map((contactId) => ({ contactId, tagsAdded: [stored!.name] })), 'bench');
          });
        }
      }),
    );
    const stopSeconds = (performance.now() - started) / 1000;

    let api: StopFigures['api'] = null;
    if (apiSample > 0) {
      const token = (await createToken(ctx, { workspaceId, name: 'bench tags', rateLimit: 100_000_000 })).token;
      const server = await startNudge('api', { databaseUrl: bench.url, dataDir: bench.dataDir });
      try {
        const config: LoadConfig = { url: server.baseUrl, token, kind: 'add-tag', sequenceId: sequence.id, connections: apiConnections, seconds: 0, warmupSeconds: 0, batch: 1, firstIndex: count, amount: apiSample };
        // Each answer comes after its transaction committed, the stop in it: autocannon's
        // duration (from its first request to its last answer) is the time they took.
        const load = await runNodeScript<LoadResult>('load.js', [JSON.stringify(config)]);
        const seconds = load.seconds;
        api = { sessions: apiSample, connections: apiConnections, seconds: Math.round(seconds * 100) / 100, stoppedPerSecond: Math.round(apiSample / seconds), non2xx: load.non2xx };
      } finally {
        await server.stop();
      }
    }

    const failure = (await verifyStopped(ctx, sequence.id, count + apiSample)) ?? (api && api.non2xx > 0 ? `${api.non2xx} add-tag requests answered non-2xx` : null);
    return {
      dialect,
      sessions: count,
      path: 'service: attachTags + applyContactChanges, 1,000 contacts per transaction',
      concurrency,
      setupSeconds: Math.round(setupSeconds * 10) / 10,
      stopSeconds: Math.round(stopSeconds * 100) / 100,
      stoppedPerSecond: Math.round(count / stopSeconds),
      failure,
      api,
    };
  } finally {
    await bench.drop();
  }
}

async function verifyStopped(ctx: Context, definitionId: string, count: number): Promise<string | null> {
  const db = ctx.database.db;
  const sessions = await sql<{ stopped: number | string; active: number | string }>`
    select sum(case when status = 'stopped' and end_reason = 'stop_condition:has_tag' then 1 else 0 end) as stopped,
           sum(active) as active
    from sessions where definition_id = ${definitionId}`.execute(db);
  const messages = await sql<{ cancelled: number | string; queued: number | string }>`
    select sum(case when status = 'cancelled' then 1 else 0 end) as cancelled,
           sum(case when status = 'queued' then 1 else 0 end) as queued
    from messages where definition_id = ${definitionId}`.execute(db);
  const s = sessions.rows[0]!;
  const m = messages.rows[0]!;
  if (Number(s.stopped) !== count) return `expected ${count} sessions stopped by the stop condition, found ${s.stopped}`;
  if (Number(s.active) !== 0) return `${s.active} sessions still active`;
  if (Number(m.cancelled) !== count) return `expected ${count} queued messages cancelled, found ${m.cancelled}`;
  if (Number(m.queued) !== 0) return `${m.queued} messages still queued`;
  return null;
}

/**
 * Copies the seed's contact, session and message `count` times: each copy its own
 * contact (phone, email and name), a session waiting on the same delay, and a queued
 * message due in a day. On SQLite with prepared statements in one transaction, on
 * PostgreSQL with one `insert … select` over generate_series per table.
 */
async function cloneSeed(database: Database, sessionId: string, count: number): Promise<void> {
  const db = database.db;
  const session = await db.selectFrom('sessions').selectAll().where('id', '=', sessionId).executeTakeFirstOrThrow();
  const contact = await db.selectFrom('contacts').selectAll().where('id', '=', session.contact_id).executeTakeFirstOrThrow();
  const message = await db.selectFrom('messages').selectAll().where('session_id', '=', sessionId).executeTakeFirstOrThrow();
  const later = Date.now() + 86_400_000;
  const phone = (i: number) => `+1415${String(5000000 + i).padStart(7, '0')}`;
  // Per table, the columns that differ per copy; every other column keeps the seed's value.
  const overrides: Record<'contacts' | 'sessions' | 'messages', Record<string, { js: (i: number) => unknown; sql: string }>> = {
    contacts: {
      id: { js: (i) => cloneId(1, i), sql: `'00000000-0000-7000-8001-' || lpad(to_hex(i + 1), 12, '0')` },
      phone: { js: phone, sql: `'+1415' || lpad((5000000 + i)::text, 7, '0')` },
      email: { js: (i) => `stop-${i}@bench.example`, sql: `'stop-' || i || '@bench.example'` },
      first_name: { js: (i) => `Stop ${i}`, sql: `'Stop ' || i` },
      search_text: { js: (i) => `stop ${i} stop-${i}@bench.example`, sql: `'stop ' || i || ' stop-' || i || '@bench.example'` },
    },
    sessions: {
      id: { js: (i) => cloneId(2, i), sql: `'00000000-0000-7000-8002-' || lpad(to_hex(i + 1), 12, '0')` },
      contact_id: { js: (i) => cloneId(1, i), sql: `'00000000-0000-7000-8001-' || lpad(to_hex(i + 1), 12, '0')` },
    },
    messages: {
      id: { js: (i) => cloneId(3, i), sql: `'00000000-0000-7000-8003-' || lpad(to_hex(i + 1), 12, '0')` },
      contact_id: { js: (i) => cloneId(1, i), sql: `'00000000-0000-7000-8001-' || lpad(to_hex(i + 1), 12, '0')` },
      session_id: { js: (i) => cloneId(2, i), sql: `'00000000-0000-7000-8002-' || lpad(to_hex(i + 1), 12, '0')` },
      dedupe_key: { js: (i) => `${cloneId(2, i)}:step-2:1`, sql: `'00000000-0000-7000-8002-' || lpad(to_hex(i + 1), 12, '0') || ':step-2:1'` },
      recipient: { js: phone, sql: `'+1415' || lpad((5000000 + i)::text, 7, '0')` },
      status: { js: () => 'queued', sql: `'queued'` },
      next_attempt_at: { js: () => later, sql: String(later) },
      sent_at: { js: () => null, sql: 'null' },
      delivered_at: { js: () => null, sql: 'null' },
      provider_message_id: { js: () => null, sql: 'null' },
    },
  };
  const seeds = { contacts: contact as Record<string, unknown>, sessions: session as Record<string, unknown>, messages: message as Record<string, unknown> };

  if (database.sqlite) {
    const sqlite = database.sqlite;
    const copy = sqlite.transaction(() => {
      for (const table of ['contacts', 'sessions', 'messages'] as const) {
        const columns = Object.keys(seeds[table]);
        const insert = sqlite.prepare(`insert into ${table} (${columns.join(', ')}) values (${columns.map(() => '?').join(', ')})`);
        for (let i = 0; i < count; i += 1) insert.run(columns.map((c) => (overrides[table][c] ? overrides[table][c]!.js(i) : seeds[table][c])));
      }
    });
    copy();
    return;
  }
  for (const table of ['contacts', 'sessions', 'messages'] as const) {
    const types = await sql<{ column_name: string; data_type: string }>`select column_name, data_type from information_schema.columns where table_name = ${table} and table_schema = current_schema()`.execute(db);
    const columns = types.rows.map((r) => r.column_name);
    const params: unknown[] = [];
    const expressions = types.rows.map((r) => {
      const override = overrides[table][r.column_name];
      if (override) return override.sql;
      params.push(seeds[table][r.column_name] ?? null);
      return `$${params.length}::${r.data_type}`;
    });
    params.push(count - 1);
    const text = `insert into ${table} (${columns.join(', ')}) select ${expressions.join(', ')} from generate_series(0, $${params.length}::integer) as i`;
    await db.executeQuery(CompiledQuery.raw(text, params));
  }
  await sql`analyze`.execute(db);
}
