import { Logger, makeWorkerUtils, run, type Runner, type Task } from 'graphile-worker';
import { sampleOwnRss } from '../support/memory.js';
import { percentile, seconds, type DripFigures } from '../support/figures.js';
import { createPeerDatabase, dripDelayMs, MessageWriter, renderStep, verifyMessages, type DripPayload } from './message-store.js';

/**
 * The drip built on graphile-worker, as its documentation has it: contacts enrolled
 * with `addJobs` (one bulk insert per call), `run()` with a concurrency, each next
 * step added as a job with `runAt`, and the batching options of its performance
 * page on: a local queue (`localQueue.size`, jobs fetched and locked in batches) and
 * batched completion (`completeJobBatchDelay`, `failJobBatchDelay` 0). Jobs and
 * messages live in the same PostgreSQL database. A job scheduled in the future is
 * found by polling, so `pollInterval` bounds the timer lateness; it is set well
 * under the drip's one-second delay.
 */
export async function runGraphileDrip(adminUrl: string, contacts: number): Promise<DripFigures> {
  const concurrency = Number(process.env.BENCH_GRAPHILE_CONCURRENCY ?? 24);
  const pollInterval = Number(process.env.BENCH_GRAPHILE_POLL_MS ?? 100);
  const localQueueSize = Number(process.env.BENCH_GRAPHILE_LOCAL_QUEUE ?? 500);
  const rss = sampleOwnRss();
  // The performance page's pool of 25 connections; the messages' own writes share it.
  const poolSize = Number(process.env.BENCH_GRAPHILE_POOL ?? 25);
  const store = await createPeerDatabase(adminUrl, 'graphile', poolSize);
  let runner: Runner | null = null;
  // Errors only: the default console logger prints a line per job, which would cost more than the job.
  const logger = new Logger(() => (level, message) => {
    if (level === 'error') process.stderr.write(`graphile-worker: ${message}\n`);
  });
  try {
    // The next step is enqueued with the SQL add_jobs in the transaction that records the
    // message, so a message and its follow-up commit together: one commit and one NOTIFY per
    // batch. (helpers.addJob per job serialises on PostgreSQL's notify lock: about 100 ms each
    // with 24 jobs in flight on this machine.)
    const writer = new MessageWriter(store.pool, async (client, next) => {
      const specs = next.map((payload) => ({ identifier: 'drip', payload, run_at: new Date(payload.dueAt).toISOString() }));
      await client.query('select 1 from graphile_worker.add_jobs(array(select json_populate_recordset(null::graphile_worker.job_spec, $1::json)))', [JSON.stringify(specs)]);
    });
    const utils = await makeWorkerUtils({ pgPool: store.pool, logger });
    await utils.migrate();

    const enrollStart = performance.now();
    const chunk = 1000;
    for (let i = 0; i < contacts; i += chunk) {
      await utils.addJobs(
        Array.from({ length: Math.min(chunk, contacts - i) }, (_, j) => ({
          identifier: 'drip',
          payload: { contactId: i + j, firstName: `Contact ${i + j}`, step: 1, dueAt: 0 } satisfies DripPayload,
        })),
      );
    }
    const enrollSeconds = (performance.now() - enrollStart) / 1000;
    await utils.release();

    const expected = contacts * 3;
    let finish: () => void = () => undefined;
    const finished = new Promise<void>((resolve) => (finish = resolve));
    let runMs = 0;
    let failed = 0;
    let lastError = '';
    const started = performance.now();
    const drip: Task = async (raw) => {
      const ranAt = Date.now();
      const payload = raw as DripPayload;
      const next = payload.step < 3 ? { ...payload, step: payload.step + 1, dueAt: Date.now() + dripDelayMs } : null;
      await writer.record(payload, renderStep(payload), ranAt, next);
      if (writer.recorded >= expected && runMs === 0) {
        runMs = performance.now() - started;
        finish();
      }
    };
    runner = await run({
      pgPool: store.pool,
      concurrency,
      pollInterval,
      noHandleSignals: true,
      taskList: { drip },
      logger,
      preset: {
        worker: {
          concurrentJobs: concurrency,
          pollInterval,
          useNodeTime: true,
          preparedStatements: true,
          localQueue: { size: localQueueSize },
          completeJobBatchDelay: 0,
          failJobBatchDelay: 0,
        },
      },
    });
    runner.events.on('job:error', ({ error }) => {
      failed += 1;
      lastError = error instanceof Error ? error.message : String(error);
    });
    const timeout = Number(process.env.BENCH_PEER_TIMEOUT_SECONDS ?? 300) * 1000;
    await Promise.race([finished, new Promise((r) => setTimeout(r, timeout).unref())]);
    if (runMs === 0) runMs = performance.now() - started;
    await runner.stop();
    runner = null;

    const verdict = await verifyMessages(store.pool, contacts);
    const problems = [verdict.problem, failed > 0 ? `${failed} failed job attempts (last: ${lastError})` : null].filter(Boolean);
    return {
      system: 'graphile-worker (PostgreSQL)',
      contacts,
      enrollmentsPerSecond: Math.round(contacts / enrollSeconds),
      stepsPerSecond: Math.round(expected / (runMs / 1000)),
      runSeconds: seconds(runMs),
      timerLatenessP50Ms: percentile(verdict.timerLateness, 50),
      timerLatenessP99Ms: percentile(verdict.timerLateness, 99),
      peakRssBytes: rss.stop(),
      failure: problems.length > 0 ? problems.join('; ') : null,
      note: `concurrency ${concurrency}, pool ${poolSize}, localQueue ${localQueueSize}, pollInterval ${pollInterval} ms`,
    };
  } finally {
    if (runner) await runner.stop();
    await store.drop();
  }
}
