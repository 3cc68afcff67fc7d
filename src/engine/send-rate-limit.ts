import * as messagesRepo from '../store/message-repository.js';
import type { MessageRow } from '../store/message-repository.js';
import { takeRateSlots } from '../store/rate-bucket-repository.js';
import type { ChannelRegistry } from './channel-registry.js';
import type { Context } from './context.js';

/** Length of a rate window: providers state their limits per second. */
export const rateWindowMs = 1000;

/**
 * Slots are not taken in the last part of a window: the sends they allow would start
 * after the window ended and count against the next second on the provider's side.
 * Those messages wait for the next window instead.
 */
const windowTailMs = 100;

/**
 * The dispatcher's hook for per-sender throughput limits (WhatsApp: 80 messages per
 * second per phone number by default), shared by every worker through `rate_buckets`.
 * Of the claimed messages, those whose sender has a limit take slots in the current
 * one-second window; the ones that get none go back to the queue, due at the next
 * window, without counting an attempt. Returns the messages to send now.
 */
export async function limitSendRate(ctx: Context, registry: ChannelRegistry, claimed: MessageRow[]): Promise<MessageRow[]> {
  if (!registry.rateLimitFor || claimed.length === 0) return claimed;
  const groups = new Map<string, { perSecond: number; rows: MessageRow[] }>();
  const allowed: MessageRow[] = [];
  for (const message of claimed) {
    const limit = registry.rateLimitFor(message.workspace_id, message.channel);
    if (!limit) {
      allowed.push(message);
      continue;
    }
    const group = groups.get(limit.key) ?? { perSecond: limit.perSecond, rows: [] };
    group.rows.push(message);
    groups.set(limit.key, group);
  }
  if (groups.size === 0) return claimed;

  const { db, dialect } = ctx.database;
  const now = ctx.clock.now();
  const windowStart = Math.floor(now / rateWindowMs) * rateWindowMs;
  const nextWindow = windowStart + rateWindowMs;
  const inTail = nextWindow - now <= windowTailMs;
  const deferred: string[] = [];
  await db.transaction().execute(async (trx) => {
    // Keys in one order in every worker, so two workers never wait on each other's rows crosswise.
    for (const key of [...groups.keys()].sort()) {
      const group = groups.get(key)!;
      const granted = inTail ? 0 : await takeRateSlots(trx, dialect, key, windowStart, group.rows.length, group.perSecond);
      allowed.push(...group.rows.slice(0, granted));
      deferred.push(...group.rows.slice(granted).map((r) => r.id));
    }
    await messagesRepo.releaseClaims(trx, deferred, nextWindow, now);
  });
  return allowed;
}

/**
 * Takes one slot for a single message sent at once (a direct API send), in the
 * caller's transaction. False when the sender is at its limit: the message is then
 * left to the dispatcher.
 */
export async function takeOneSendSlot(ctx: Context, trx: Parameters<typeof takeRateSlots>[0], limit: { key: string; perSecond: number }): Promise<boolean> {
  const now = ctx.clock.now();
  const windowStart = Math.floor(now / rateWindowMs) * rateWindowMs;
  if (windowStart + rateWindowMs - now <= windowTailMs) return false;
  return (await takeRateSlots(trx, ctx.database.dialect, limit.key, windowStart, 1, limit.perSecond)) === 1;
}
