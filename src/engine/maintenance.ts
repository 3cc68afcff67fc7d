import { toError } from '../domain/errors.js';
import { prunePendingStatuses } from '../store/message-status-repository.js';
import { deleteOldRateBuckets } from '../store/rate-bucket-repository.js';
import { pruneIdempotencyKeys, pruneRateLimits } from '../store/request-guard-repository.js';
import { deleteExpiredUserSessions, pruneLoginAttempts } from '../store/user-session-repository.js';
import type { Context } from './context.js';
import { loginWindowMs } from './dashboard-auth-service.js';
import { syncTemplatesWhenDue } from './template-service.js';
import { pruneWebhookDeliveries } from './webhook-delivery.js';

/** Periodic clean-up of expired idempotency keys, old rate-limit windows, old webhook deliveries, expired dashboard sessions and sign-in counts. */
export function startMaintenance(ctx: Context, everyMs = 60_000): { stop(): void } {
  const run = async () => {
    const now = ctx.clock.now();
    try {
      await pruneIdempotencyKeys(ctx.database.db, now);
      await pruneRateLimits(ctx.database.db, now - 2 * ctx.config.rateLimitWindowSeconds * 1000);
      await deleteOldRateBuckets(ctx.database.db, now - 60_000); // per-number send windows are one second long
      await prunePendingStatuses(ctx.database.db, now - 7 * 86_400_000); // statuses of messages sent from elsewhere
      await deleteExpiredUserSessions(ctx.database.db, now);
      await pruneLoginAttempts(ctx.database.db, now - loginWindowMs); // a window this old counts from 1 again anyway
      await syncTemplatesWhenDue(ctx, now, everyMs); // WhatsApp templates, every 10 minutes
      await pruneWebhookDeliveries(ctx); // the delivery log keeps 30 days
    } catch (error) {
      ctx.log.warn({ err: toError(error) }, 'maintenance failed; it will run again');
    }
  };
  const timer = setInterval(() => void run(), everyMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
