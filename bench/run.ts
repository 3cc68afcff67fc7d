import pg from 'pg';
import { measureClaimCost, runDrip, type ClaimFigures, type EngineFigures } from './engine-bench.js';
import type { Dialect } from '../src/store/database.js';

/**
 * `npm run bench`: the engine's throughput and timer lateness on SQLite and PostgreSQL,
 * and the claim cost with many sessions waiting in the future.
 * Environment: BENCH_CONTACTS (default 20000), BENCH_WAITING (default 1000000),
 * BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432/postgres), BENCH_ONLY=sqlite|postgres.
 */
const contacts = Number(process.env.BENCH_CONTACTS ?? 20_000);
const waiting = Number(process.env.BENCH_WAITING ?? 1_000_000);
const adminUrl = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

async function postgresReachable(): Promise<boolean> {
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.end();
    return true;
  } catch {
    return false;
  }
}

const dialects: Dialect[] = ['sqlite'];
if (await postgresReachable()) dialects.push('postgres');
else process.stdout.write(`PostgreSQL at ${adminUrl} is unreachable: SQLite only\n`);
const only = process.env.BENCH_ONLY;

const engine: EngineFigures[] = [];
const claims: ClaimFigures[] = [];
for (const dialect of dialects.filter((d) => !only || d === only)) {
  process.stdout.write(`drip: ${contacts} contacts on ${dialect}…\n`);
  engine.push(await runDrip(dialect, adminUrl, contacts, dialect === 'postgres' ? 2 : 1));
  process.stdout.write(`claim cost: ${waiting} waiting sessions on ${dialect}…\n`);
  claims.push(await measureClaimCost(dialect, adminUrl, waiting));
}

process.stdout.write('\nEngine: three-step drip (send, 1 s, send, 1 s, send), sandbox channel\n');
console.table(
  engine.map((f) => ({
    database: f.dialect,
    workers: f.workers,
    contacts: f.contacts,
    'enrollments/s': f.enrollmentsPerSecond,
    'steps/s': f.stepsPerSecond,
    'run s': f.runSeconds,
    'timer p50 ms': f.timerLatenessP50Ms,
    'timer p99 ms': f.timerLatenessP99Ms,
    'send p50 ms': f.sendLatenessP50Ms,
    'send p99 ms': f.sendLatenessP99Ms,
  })),
);
process.stdout.write('\nClaim cost (one claim of 500 due sessions, mean of 200)\n');
console.table(claims.map((c) => ({ database: c.dialect, 'waiting in future': c.waiting, 'µs with none waiting': c.claimMicrosEmpty, 'µs with them waiting': c.claimMicrosWithWaiting })));
