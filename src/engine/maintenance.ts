import { toError } from '../domain/errors.js';
import { pruneIdempotencyKeys, pruneRateLimits } from '../store/request-guard-repository.js';
import type { Context } from './context.js';

/** Periodic clean-up of expired idempotency keys and old rate-limit windows. */
export function startMaintenance(ctx: Context, everyMs = 60_000): { stop(): void } {
  const run = async () => {
    const now = ctx.clock.now();
    try {
      await pruneIdempotencyKeys(ctx.database.db, now);
      await pruneRateLimits(ctx.database.db, now - 2 * ctx.config.rateLimitWindowSeconds * 1000);
    } catch (error) {
      ctx.log.warn({ err: toError(error) }, 'maintenance failed; it will run again');
    }
  };
  const timer = setInterval(() => void run(), everyMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
