import { buildApp } from '../api/app.js';
import { bootstrapIfEmpty } from '../engine/auth-service.js';
import { startMaintenance } from '../engine/maintenance.js';
import { PostgresWakeListener } from '../engine/waker.js';
import { Worker } from '../engine/worker.js';
import { createRuntime } from './runtime.js';

export type ProcessRole = 'start' | 'api' | 'worker';

/**
 * Runs a long-lived process: the API, the engine's workers, or both. SIGTERM and SIGINT
 * close the HTTP server (finishing requests in flight), stop the workers after their
 * current batch, and close the database.
 */
export async function runServer(role: ProcessRole, env: Record<string, string | undefined>): Promise<void> {
  const runtime = await createRuntime(env);
  const { ctx } = runtime;
  const waker = runtime.local;
  const closers: Array<() => Promise<void>> = [];

  if (ctx.database.url) {
    // Every role listens: workers for wake-ups, the API for changes to the tokens and definitions it keeps.
    const listener = new PostgresWakeListener(ctx.database.url, waker, ctx.log, ctx.lookups);
    await listener.start();
    closers.push(() => listener.stop());
  }

  if (role === 'start' || role === 'worker') {
    const worker = new Worker(ctx, ctx.channels, ctx.versions, waker, {
      batchSize: ctx.config.workerBatchSize,
      pollIntervalMs: ctx.config.pollIntervalMs,
      dispatchConcurrency: ctx.config.dispatchConcurrency,
      leaseMs: ctx.config.dispatchLeaseMs,
    });
    worker.start();
    closers.push(() => worker.stop());
    const maintenance = startMaintenance(ctx);
    closers.push(async () => maintenance.stop());
    ctx.log.info({ database: ctx.database.dialect }, 'Nudge worker running');
  }

  if (role === 'start' || role === 'api') {
    const first = await bootstrapIfEmpty(ctx);
    const app = await buildApp(ctx, { logRequests: ctx.config.logLevel === 'debug' || ctx.config.logLevel === 'trace' });
    await app.listen({ port: ctx.config.port, host: ctx.config.host });
    // Closed first on shutdown: stop taking requests before the workers stop.
    closers.unshift(() => app.close());
    const base = `http://localhost:${ctx.config.port}`;
    if (first) {
      process.stdout.write(
        [
          '',
          'Nudge created a workspace and an admin API token. The token is shown only this once:',
          '',
          `  ${first.token}`,
          '',
          'Try it:',
          '',
          `  curl -H "Authorization: Bearer ${first.token}" ${base}/api/v1/me`,
          '',
          `Admin login: admin@localhost / ${first.password}`,
          `API reference: ${base}/docs`,
          '',
        ].join('\n') + '\n',
      );
    }
    ctx.log.info({ url: base, docs: `${base}/docs`, database: ctx.database.dialect }, 'Nudge API listening');
  }

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    ctx.log.info({ signal }, 'shutting down');
    for (const close of closers) {
      await close().catch((error: unknown) => ctx.log.error({ err: error }, 'error while closing'));
    }
    await runtime.close();
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
}
