import { Queue, Worker, type Job } from 'bullmq';
import { sampleOwnRss } from '../support/memory.js';
import { percentile, seconds, type DripFigures } from '../support/figures.js';
import { createPeerDatabase, dripDelayMs, MessageWriter, renderStep, verifyMessages, type DripPayload } from './message-store.js';
import { bullConnection, redisUsedMemory } from './redis.js';

/**
 * The drip built on BullMQ, as its documentation has it: contacts enrolled with
 * `Queue.addBulk`, a Worker with `concurrency`, each next step added as a delayed
 * job (`delay`), finished jobs removed (`removeOnComplete`), and each message
 * recorded in the application's PostgreSQL database. BullMQ Pro's batches are not
 * available, so the Worker's concurrency is the parallelism and the inserts of
 * concurrent jobs are grouped (MessageWriter).
 */
export async function runBullmqDrip(adminUrl: string, contacts: number, concurrency = Number(process.env.BENCH_BULLMQ_CONCURRENCY ?? 100)): Promise<DripFigures> {
  const rss = sampleOwnRss();
  const store = await createPeerDatabase(adminUrl, 'bullmq', 20);
  const queueName = `nudge-bench-drip-${process.pid}-${Date.now()}`;
  const queue = new Queue<DripPayload>(queueName, {
    connection: bullConnection(),
    defaultJobOptions: { removeOnComplete: true, removeOnFail: 1000, attempts: 3, backoff: { type: 'exponential', delay: 100 } },
  });
  const monitor = bullConnection();
  let redisPeak = 0;
  const redisTimer = setInterval(() => void redisUsedMemory(monitor).then((b) => (redisPeak = Math.max(redisPeak, b)), () => undefined), 250);
  let worker: Worker<DripPayload> | null = null;
  try {
    await queue.waitUntilReady();
    const writer = new MessageWriter(store.pool);

    const enrollStart = performance.now();
    const chunk = 1000;
    for (let i = 0; i < contacts; i += chunk) {
      await queue.addBulk(
        Array.from({ length: Math.min(chunk, contacts - i) }, (_, j) => ({
          name: 'step',
          data: { contactId: i + j, firstName: `Contact ${i + j}`, step: 1, dueAt: 0 },
        })),
      );
    }
    const enrollSeconds = (performance.now() - enrollStart) / 1000;

    let failed = 0;
    let lastError = '';
    const expected = contacts * 3;
    let finish: () => void = () => undefined;
    const finished = new Promise<void>((resolve) => (finish = resolve));
    const started = performance.now();
    let runMs = 0;
    worker = new Worker<DripPayload>(
      queueName,
      async (job: Job<DripPayload>) => {
        const ranAt = Date.now();
        const payload = job.data;
        await writer.record(payload, renderStep(payload), ranAt);
        if (payload.step < 3) {
          const dueAt = Date.now() + dripDelayMs;
          await queue.add('step', { ...payload, step: payload.step + 1, dueAt }, { delay: dripDelayMs });
        }
        if (writer.recorded >= expected && runMs === 0) {
          runMs = performance.now() - started;
          finish();
        }
      },
      { connection: bullConnection(), concurrency, removeOnComplete: { count: 0 }, removeOnFail: { count: 1000 } },
    );
    worker.on('failed', (_job, error) => {
      failed += 1;
      lastError = error.message;
    });
    worker.on('error', (error) => {
      lastError = error.message;
    });
    const timeout = Number(process.env.BENCH_PEER_TIMEOUT_SECONDS ?? 300) * 1000;
    await Promise.race([finished, new Promise((r) => setTimeout(r, timeout).unref())]);
    if (runMs === 0) runMs = performance.now() - started;
    await worker.close();
    worker = null;

    const verdict = await verifyMessages(store.pool, contacts);
    const problems = [verdict.problem, failed > 0 ? `${failed} failed job attempts (last: ${lastError})` : null].filter(Boolean);
    return {
      system: 'BullMQ (Redis + PostgreSQL)',
      contacts,
      enrollmentsPerSecond: Math.round(contacts / enrollSeconds),
      stepsPerSecond: Math.round(expected / (runMs / 1000)),
      runSeconds: seconds(runMs),
      timerLatenessP50Ms: percentile(verdict.timerLateness, 50),
      timerLatenessP99Ms: percentile(verdict.timerLateness, 99),
      peakRssBytes: rss.stop(),
      failure: problems.length > 0 ? problems.join('; ') : null,
      note: `concurrency ${concurrency}, ioredis; Redis used_memory peak ${Math.round(redisPeak / 1024 / 1024)} MB`,
    };
  } finally {
    clearInterval(redisTimer);
    if (worker) await worker.close(true);
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
    monitor.disconnect();
    await store.drop();
  }
}
