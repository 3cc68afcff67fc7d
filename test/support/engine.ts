import { Worker } from '../../src/engine/worker.js';
import type { TestContext } from './app.js';

/** A worker on the test's context, driven by hand with `drain()` (no timers). */
export function createTestWorker(ctx: TestContext, batchSize = 100): Worker {
  return new Worker(ctx, ctx.channels, ctx.versions, null, { batchSize, pollIntervalMs: 50, dispatchConcurrency: 8 });
}
