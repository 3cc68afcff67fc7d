import pg from 'pg';
import { measureClaimCost, runDrip, runSteady, type ClaimFigures, type EngineFigures, type SteadyFigures } from './engine-bench.js';
import type { Dialect } from '../src/store/database.js';

/**
 * `npm run bench`: the engine's throughput and timer lateness on SQLite and PostgreSQL,
 * and the claim cost with many sessions waiting in the future.
 * Environment: BENCH_CONTACTS (default 20000), BENCH_WAITING (default 1000000),
 * BENCH_STEADY_SECONDS (default 10), BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432/postgres),
 * BENCH_ONLY=sqlite|postgres.
 */
const contacts = Number(process.env.BENCH_CONTACTS ?? 20_000);
const waiting = Number(process.env.BENCH_WAITING ?? 1_000_000);
const steadySeconds = Number(process.env.BENCH_STEADY_SECONDS ?? 10);
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
const log = (line: string) => process.stdout.write(`${line}\n`);

const engine: EngineFigures[] = [];
const steady: SteadyFigures[] = [];
const claims: ClaimFigures[] = [];
for (const dialect of dialects.filter((d) => !only || d === only)) {
  const workers = dialect === 'postgres' ? 2 : 1;
  for (const delivery of ['inline', 'dispatch'] as const) {
    log(`drip: ${contacts} contacts on ${dialect}, sandbox ${delivery}…`);
    engine.push(await runDrip(dialect, adminUrl, contacts, workers, delivery));
  }
  const rate = dialect === 'postgres' ? 1000 : 2000;
  log(`steady load: ${rate} enrollments/s for ${steadySeconds} s on ${dialect}…`);
  steady.push(await runSteady(dialect, adminUrl, rate, steadySeconds));
  log(`claim cost: ${waiting} sessions waiting on ${dialect}…`);
  claims.push(await measureClaimCost(dialect, adminUrl, waiting));
}

log('\nThroughput: the three-step drip (send, 1 s, send, 1 s, send) for every contact at once, sandbox channel');
console.table(
  engine.map((f) => ({
    database: f.dialect,
    sandbox: f.delivery,
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
log('\nTimer lateness under a steady load below capacity (same drip, enrollments arriving at a fixed rate)');
console.table(
  steady.map((f) => ({
    database: f.dialect,
    'enrollments/s': f.ratePerSecond,
    seconds: f.seconds,
    'timer p50 ms': f.timerLatenessP50Ms,
    'timer p99 ms': f.timerLatenessP99Ms,
    'timer max ms': f.timerLatenessMaxMs,
    'first send p99 ms': f.startLatenessP99Ms,
  })),
);
log('\nClaim cost: one claim of 500 due sessions (mean of 200), with and without sessions waiting in the future');
console.table(claims.map((c) => ({ database: c.dialect, 'waiting in future': c.waiting, 'µs, none waiting': c.claimMicrosEmpty, 'µs, with them waiting': c.claimMicrosWithWaiting })));
