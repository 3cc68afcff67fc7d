import type { ChannelRegistry } from '../../src/engine/channel-registry.js';
import { Worker } from '../../src/engine/worker.js';
import type { TestContext } from './app.js';

/** A worker on the test's context, driven by hand with `drain()` (no timers). */
export function createTestWorker(ctx: TestContext, options: { batchSize?: number; channels?: ChannelRegistry; broadcastChunkSize?: number } = {}): Worker {
  return new Worker(ctx, options.channels ?? ctx.channels, ctx.versions, null, { batchSize: options.batchSize ?? 100, pollIntervalMs: 50, dispatchConcurrency: 8, broadcastChunkSize: options.broadcastChunkSize });
}
