import pg from 'pg';
import type { ClaimFigures, EngineFigures, SteadyFigures } from './engine-bench.js';
import { measureClaimCost } from './engine-bench.js';
import { runHttpBench, type HttpFigures, type Unavailable } from './http-bench.js';
import { redisReachable } from './peers/redis.js';
import { runStopBench, stopPathNote, type StopFigures } from './stop-bench.js';
import { runInChild } from './support/child.js';
import { dripDelayMs } from './peers/message-store.js';
import { ceilingNote, median, medianFigures, ratioToFastest, roundOrder, type DripFigures } from './support/figures.js';
import { megabytes } from './support/memory.js';
import type { Dialect } from '../src/store/database.js';

/**
 * `npm run bench`: Nudge's engine on SQLite and PostgreSQL, the same drip built on
 * BullMQ and on graphile-worker, the API under load from another process, and the
 * engine's behaviour with many sessions waiting or stopping. Every scenario checks
 * its own result; a failed check is printed and makes the exit code 1.
 *
 * Environment (see BENCHMARKS.md):
 *   BENCH_ONLY        comma-separated scenarios: drip, peers, steady, claim, http, execute, stop
 *                     (default all); `sqlite` or `postgres` there limits the databases instead
 *   BENCH_DIALECTS    sqlite,postgres (default both, PostgreSQL when reachable)
 *   BENCH_CONTACTS    contacts in the drip, Nudge's and the peers' (default 20000)
 *   BENCH_ROUNDS      times the peers' comparison runs, Nudge and the peers back to back (default 3)
 *   BENCH_WAITING     sessions waiting in the future for the claim scenario (default 1000000)
 *   BENCH_STOP_SESSIONS sessions stopped by a stop condition (default 100000), and
 *   BENCH_STOP_API_SAMPLE further ones stopped through the API, one add-tag request each (default 5000)
 *   BENCH_STEADY_SECONDS, BENCH_HTTP_SECONDS (10), BENCH_HTTP_WARMUP_SECONDS (3),
 *   BENCH_HTTP_CONNECTIONS (50), BENCH_EXECUTE_CONNECTIONS (10), BENCH_HTTP_ROLE (api|start),
 *   BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432/postgres), BENCH_REDIS_HOST/PORT.
 */
const env = process.env;
const contacts = Number(env.BENCH_CONTACTS ?? 20_000);
const waiting = Number(env.BENCH_WAITING ?? 1_000_000);
const stopSessions = Number(env.BENCH_STOP_SESSIONS ?? 100_000);
const stopApiSample = Number(env.BENCH_STOP_API_SAMPLE ?? 5_000);
const steadySeconds = Number(env.BENCH_STEADY_SECONDS ?? 10);
const adminUrl = env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const http = {
  connections: Number(env.BENCH_HTTP_CONNECTIONS ?? 50),
  seconds: Number(env.BENCH_HTTP_SECONDS ?? 10),
  warmupSeconds: Number(env.BENCH_HTTP_WARMUP_SECONDS ?? 3),
  role: (env.BENCH_HTTP_ROLE === 'start' ? 'start' : 'api') as 'api' | 'start',
};
const executeConnections = Number(env.BENCH_EXECUTE_CONNECTIONS ?? 10);
const rounds = Math.max(1, Math.floor(Number(env.BENCH_ROUNDS ?? 3)) || 1);

const allScenarios = ['drip', 'peers', 'steady', 'claim', 'http', 'execute', 'stop'] as const;
type Scenario = (typeof allScenarios)[number];
const onlyList = (env.BENCH_ONLY ?? '').split(',').map((s) => s.trim()).filter(Boolean);
const dialectWords = onlyList.filter((s): s is Dialect => s === 'sqlite' || s === 'postgres');
const scenarioWords = onlyList.filter((s) => s !== 'sqlite' && s !== 'postgres');
const unknown = scenarioWords.filter((s) => !(allScenarios as readonly string[]).includes(s));
if (unknown.length > 0) {
  process.stderr.write(`BENCH_ONLY: unknown scenario ${unknown.join(', ')}; choose from ${allScenarios.join(', ')}, sqlite, postgres\n`);
  process.exit(2);
}
const scenarios = new Set<Scenario>(scenarioWords.length > 0 ? (scenarioWords as Scenario[]) : allScenarios);
const wantedDialects = (env.BENCH_DIALECTS?.split(',').map((s) => s.trim()) ?? (dialectWords.length > 0 ? dialectWords : ['sqlite', 'postgres'])) as Dialect[];

const log = (line: string) => process.stdout.write(`${line}\n`);
const failures: string[] = [];
const timings: Array<{ scenario: string; seconds: number }> = [];

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

async function timed<T>(label: string, work: () => Promise<T>): Promise<T | null> {
  log(`${label}…`);
  const start = performance.now();
  try {
    return await work();
  } catch (error) {
    failures.push(`${label}: ${error instanceof Error ? error.message : String(error)}`);
    log(`  FAILED: ${error instanceof Error ? error.message : String(error)}`);
    return null;
  } finally {
    timings.push({ scenario: label, seconds: Math.round((performance.now() - start) / 100) / 10 });
  }
}

function check(label: string, failure: string | null): void {
  if (failure === null) return;
  failures.push(`${label}: ${failure}`);
  log(`  FAILED CHECK (${label}): ${failure}`);
}

const pgUp = await postgresReachable();
if (!pgUp) log(`PostgreSQL at ${adminUrl} is unreachable: SQLite only, and no peers`);
const dialects = wantedDialects.filter((d) => d === 'sqlite' || pgUp);
const redisUp = scenarios.has('peers') ? await redisReachable() : false;

const engine: EngineFigures[] = [];
const steady: SteadyFigures[] = [];
const claims: ClaimFigures[] = [];
const peers: DripFigures[] = [];
const httpFigures: HttpFigures[] = [];
const unavailable: string[] = [];
const stops: StopFigures[] = [];

const workersFor = (dialect: Dialect) => (dialect === 'postgres' ? 2 : 1);

// The drip: Nudge in each sandbox mode.
const deliveries = scenarios.has('drip') ? (['inline', 'dispatch'] as const) : [];
for (const dialect of dialects) {
  for (const delivery of deliveries) {
    const workers = workersFor(dialect);
    const figures = await timed(`drip: Nudge, ${contacts} contacts on ${dialect}, sandbox ${delivery}`, () =>
      runInChild<EngineFigures>('drip', { dialect, adminUrl, contacts, workers, delivery }),
    );
    if (figures) {
      check(`drip ${dialect} ${delivery}`, figures.failure);
      engine.push(figures);
    }
  }
}

/** Nudge's inline drip as a row of the peers' table. */
function asDripFigures(f: EngineFigures): DripFigures {
  return {
    system: `Nudge on ${f.dialect === 'sqlite' ? 'SQLite' : 'PostgreSQL'} (${f.workers} worker${f.workers > 1 ? 's' : ''})`,
    contacts: f.contacts,
    enrollmentsPerSecond: f.enrollmentsPerSecond,
    stepsPerSecond: f.stepsPerSecond,
    runSeconds: f.runSeconds,
    timerLatenessP50Ms: f.timerLatenessP50Ms,
    timerLatenessP99Ms: f.timerLatenessP99Ms,
    peakRssBytes: f.peakRssBytes,
    failure: f.failure,
  };
}

// The peers: Nudge's inline drip, BullMQ and graphile-worker back to back, `rounds` times,
// each round starting from the next system, so that a neighbour's load on a shared
// machine falls on all of them alike and the medians compare like with like.
interface PeerSystem {
  key: string;
  label: string;
  run: () => Promise<DripFigures>;
}
const peerSystems: PeerSystem[] = [];
const peerRounds: Array<Map<string, DripFigures>> = [];
if (scenarios.has('peers')) {
  if (!pgUp) unavailable.push('peers: they record messages in PostgreSQL, which is unreachable');
  else {
    for (const dialect of dialects) {
      const workers = workersFor(dialect);
      peerSystems.push({
        key: `nudge-${dialect}`,
        label: `Nudge, ${contacts} contacts on ${dialect}, sandbox inline`,
        run: async () => asDripFigures(await runInChild<EngineFigures>('drip', { dialect, adminUrl, contacts, workers, delivery: 'inline' })),
      });
    }
    if (redisUp) peerSystems.push({ key: 'bullmq', label: `BullMQ, ${contacts} contacts`, run: () => runInChild<DripFigures>('bullmq', { adminUrl, contacts }) });
    else unavailable.push('peers: BullMQ skipped, no Redis at BENCH_REDIS_HOST:BENCH_REDIS_PORT (default 127.0.0.1:6379)');
    peerSystems.push({ key: 'graphile', label: `graphile-worker, ${contacts} contacts`, run: () => runInChild<DripFigures>('graphile', { adminUrl, contacts }) });
    for (let round = 0; round < rounds; round += 1) {
      const results = new Map<string, DripFigures>();
      for (const system of roundOrder(peerSystems, round)) {
        const figures = await timed(`peers, round ${round + 1} of ${rounds}: ${system.label}`, system.run);
        if (figures) {
          check(`peers round ${round + 1} ${system.label}`, figures.failure);
          results.set(system.key, figures);
        }
      }
      peerRounds.push(results);
    }
  }
}

for (const dialect of dialects) {
  if (scenarios.has('steady')) {
    const rate = dialect === 'postgres' ? 1000 : 2000;
    const figures = await timed(`steady: ${rate} enrollments/s for ${steadySeconds} s on ${dialect}`, () => runInChild<SteadyFigures>('steady', { dialect, adminUrl, rate, seconds: steadySeconds }));
    if (figures) steady.push(figures);
  }
  if (scenarios.has('claim')) {
    const figures = await timed(`claim: ${waiting} sessions waiting on ${dialect}, and a nudge worker's RSS`, () => measureClaimCost(dialect, adminUrl, waiting));
    if (figures) {
      check(`claim ${dialect}`, figures.failure);
      claims.push(figures);
    }
  }
  if (scenarios.has('http')) {
    const figures = await timed(`http: trigger-sequence, ${http.connections} connections for ${http.seconds} s against nudge ${http.role} on ${dialect}`, () =>
      runHttpBench('trigger', dialect, adminUrl, http),
    );
    if (figures && 'unavailable' in figures) unavailable.push((figures as Unavailable).unavailable);
    else if (figures) {
      check(`http trigger ${dialect}`, figures.failure);
      httpFigures.push(figures);
    }
  }
  if (scenarios.has('execute')) {
    const figures = await timed(`execute: 100 contacts per call, ${executeConnections} connections against nudge ${http.role} on ${dialect}`, () =>
      runHttpBench('execute', dialect, adminUrl, { ...http, connections: executeConnections }, 100),
    );
    if (figures && 'unavailable' in figures) {
      log(`  ${figures.unavailable}`);
      if (!unavailable.includes(figures.unavailable)) unavailable.push(figures.unavailable);
    } else if (figures) {
      check(`execute ${dialect}`, figures.failure);
      httpFigures.push(figures);
    }
  }
  if (scenarios.has('stop')) {
    const figures = await timed(`stop: ${stopSessions} sessions stopped by a has_tag stop condition on ${dialect}`, () => runStopBench(dialect, adminUrl, stopSessions, stopApiSample, http.connections));
    if (figures) {
      check(`stop ${dialect}`, figures.failure);
      stops.push(figures);
    }
  }
}

const ratio = (value: number, base: number | undefined) => (base ? `${(value / base).toFixed(2)}×` : '–');

if (engine.length > 0) {
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
      'peak RSS MB': megabytes(f.peakRssBytes),
      check: f.failure ? 'FAILED' : 'ok',
    })),
  );
}

if (peerRounds.length > 0) {
  const isNudge = (key: string) => key.startsWith('nudge-');
  const peerKeys = peerSystems.map((p) => p.key).filter((k) => !isNudge(k));
  const vsFaster = (round: Map<string, DripFigures>, key: string) => {
    const r = ratioToFastest(round.get(key), peerKeys.map((k) => round.get(k)).filter((f): f is DripFigures => f !== undefined));
    return r === null ? null : Math.round(r * 100) / 100;
  };
  log(`\nThe drip with and without Nudge, ${rounds} round${rounds > 1 ? 's' : ''} (steps/s; each round starts from the next system)`);
  console.table(
    peerRounds.map((round, i) => ({
      round: i + 1,
      first: peerSystems[i % peerSystems.length]!.key,
      ...Object.fromEntries(peerSystems.map((p) => [round.get(p.key)?.system ?? p.key, round.get(p.key)?.stepsPerSecond ?? '–'])),
      ...Object.fromEntries(dialects.filter((d) => round.has(`nudge-${d}`)).map((d) => [`${d} ÷ faster peer`, vsFaster(round, `nudge-${d}`) ?? '–'])),
    })),
  );

  const summary = new Map<string, DripFigures>();
  for (const p of peerSystems) {
    const runs = peerRounds.map((r) => r.get(p.key)).filter((f): f is DripFigures => f !== undefined);
    if (runs.length > 0) summary.set(p.key, medianFigures(runs));
  }
  const sqlite = summary.get('nudge-sqlite');
  const postgres = summary.get('nudge-postgres');
  peers.push(...peerKeys.map((k) => summary.get(k)).filter((f): f is DripFigures => f !== undefined));
  const rows = [sqlite, postgres, ...peers].filter((r): r is DripFigures => r !== undefined);
  const both = (value: number, pick: (f: DripFigures) => number) => `${ratio(value, sqlite && pick(sqlite))} / ${ratio(value, postgres && pick(postgres))}`;
  log(`\nThe same drip without Nudge (${contacts} contacts, messages recorded in PostgreSQL), against Nudge (sandbox inline): the median of each figure over the ${rounds} round${rounds > 1 ? 's' : ''}. Ratios: ÷ Nudge on SQLite / ÷ Nudge on PostgreSQL`);
  console.table(
    rows.map((f) => ({
      system: f.system,
      'enrollments/s': f.enrollmentsPerSecond,
      'steps/s': f.stepsPerSecond,
      'timer p50 ms': f.timerLatenessP50Ms,
      'timer p99 ms': f.timerLatenessP99Ms,
      'peak RSS MB': megabytes(f.peakRssBytes),
      'steps/s ratio': both(f.stepsPerSecond, (n) => n.stepsPerSecond),
      'p50 ratio': both(f.timerLatenessP50Ms, (n) => n.timerLatenessP50Ms),
      'p99 ratio': both(f.timerLatenessP99Ms, (n) => n.timerLatenessP99Ms),
      'RSS ratio': both(f.peakRssBytes, (n) => n.peakRssBytes),
      check: f.failure ? 'FAILED' : 'ok',
    })),
  );
  for (const f of peers) if (f.note) log(`  ${f.system}: ${f.note}`);
  for (const d of dialects) {
    const byRound = peerRounds.map((r) => vsFaster(r, `nudge-${d}`)).filter((r): r is number => r !== null);
    const ofMedians = ratioToFastest(summary.get(`nudge-${d}`), peers);
    if (byRound.length > 0 && ofMedians !== null) {
      log(`  Nudge on ${d} ÷ the faster peer, round by round: ${byRound.map((r) => `${r.toFixed(2)}×`).join(', ')}; median ${median(byRound.map((r) => r * 100)) / 100}×; of the medians ${ofMedians.toFixed(2)}×.`);
    }
  }
  const ceiling = ceilingNote(contacts, dripDelayMs, sqlite, peers);
  if (ceiling) log(`  ${ceiling}`);
}

if (steady.length > 0) {
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
}

if (claims.length > 0) {
  log('\nClaim cost: one claim of 500 due sessions (mean of 200), and a separate nudge worker running a due batch, with none and with sessions waiting in the future');
  console.table(
    claims.map((c) => ({
      database: c.dialect,
      'waiting in future': c.waiting,
      'insert s': c.insertSeconds,
      'claim µs, none waiting': c.claimMicrosEmpty,
      'claim µs, waiting': c.claimMicrosWithWaiting,
      'due batch': `${c.due} × 3 steps`,
      'worker RSS MB, none waiting': megabytes(c.workerPeakRssEmptyBytes),
      'worker RSS MB, waiting': megabytes(c.workerPeakRssWithWaitingBytes),
      'batch s, none waiting': c.workerSecondsEmpty,
      'batch s, waiting': c.workerSecondsWithWaiting,
      check: c.failure ? 'FAILED' : 'ok',
    })),
  );
}

if (httpFigures.length > 0) {
  log(`\nThe API under load from a separate process (autocannon, ${http.warmupSeconds} s warm-up, then ${http.seconds} s), each request a new contact`);
  console.table(
    httpFigures.map((f) => ({
      database: f.dialect,
      endpoint: f.endpoint,
      server: f.role,
      connections: f.connections,
      'requests/s': f.requestsPerSecond,
      'contacts enrolled/s': f.enrolledPerSecond,
      'p50 ms': f.latencyP50Ms,
      'p97.5 ms': f.latencyP97_5Ms,
      'p99 ms': f.latencyP99Ms,
      'non-2xx': f.non2xx,
      errors: f.errors,
      'server RSS MB': megabytes(f.serverPeakRssBytes),
      check: f.failure ? 'FAILED' : 'ok',
    })),
  );
}

if (stops.length > 0) {
  log('\nStopping running sessions by their stop condition (has_tag customer): every contact tagged, until the last session has stopped and its queued message is cancelled');
  log(`  ${stopPathNote}`);
  console.table(
    stops.flatMap((f) => [
      {
        database: f.dialect,
        sessions: f.sessions,
        path: f.path,
        'at once': `${f.concurrency} transaction${f.concurrency > 1 ? 's' : ''}`,
        'stop s': f.stopSeconds,
        'stopped/s': f.stoppedPerSecond,
        [`s for ${stopSessions} at this rate`]: f.stopSeconds,
        check: f.failure ? 'FAILED' : 'ok',
      },
      ...(f.api
        ? [
            {
              database: f.dialect,
              sessions: f.api.sessions,
              path: 'API: POST /api/v1/actions/add-tag, one request per contact (nudge api, separate load process)',
              'at once': `${f.api.connections} connections`,
              'stop s': f.api.seconds,
              'stopped/s': f.api.stoppedPerSecond,
              [`s for ${stopSessions} at this rate`]: Math.round(stopSessions / f.api.stoppedPerSecond),
              check: f.failure ? 'FAILED' : 'ok',
            },
          ]
        : []),
    ]),
  );
}

for (const line of unavailable) log(`\n${line}`);
log('\nTime per scenario');
console.table(timings.map((t) => ({ scenario: t.scenario, seconds: t.seconds })));
if (failures.length > 0) {
  log(`\n${failures.length} FAILED:`);
  for (const f of failures) log(`  ${f}`);
  process.exitCode = 1;
}
// Pools of the libraries under test may linger; everything is printed.
process.exit();
