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
 * Whether a slot taken in the window starting at `windowStart` came too late, read at
 * `at`: in the window's tail or after it, where the send would reach the provider in the
 * next second, on top of that second's own. Checked again after the slots' commit, which
 * a loaded database can make last into the tail.
 */
export function tooLateFor(windowStart: number, at: number): boolean {
  return windowStart + rateWindowMs - at <= windowTailMs;
}

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
  const inTail = tooLateFor(windowStart, now);
  const deferred: string[] = [];
  const granted: MessageRow[] = [];
  await db.transaction().execute(async (trx) => {
    // Keys in one order in every worker, so two workers never wait on each other's rows crosswise.
    for (const key of [...groups.keys()].sort()) {
      const group = groups.get(key)!;
      const slots = inTail ? 0 : await takeRateSlots(trx, dialect, key, windowStart, group.rows.length, group.perSecond);
      granted.push(...group.rows.slice(0, slots));
      deferred.push(...group.rows.slice(slots).map((r) => r.id));
    }
    await messagesRepo.releaseClaims(trx, deferred, nextWindow, now);
  });
  // The slots count against the window they were taken in. When taking them lasted into
  // its tail, the sends wait for a window of their own instead, and the slots stay unused;
  // unless taking them took so long that no window could hold it, where waiting would
  // only starve the messages.
  const after = ctx.clock.now();
  const retryCouldFit = after - now < rateWindowMs - windowTailMs;
  if (granted.length > 0 && tooLateFor(windowStart, after) && retryCouldFit) {
    await messagesRepo.releaseClaims(db, granted.map((m) => m.id), Math.max(nextWindow, after), after);
    return allowed;
  }
  return [...allowed, ...granted];
}

/**
 * Takes one slot for a single message sent at once (a direct API send), in the
 * caller's transaction. Answers the start of the window the slot counts in, or null when
 * the sender is at its limit: the message is then left to the dispatcher. After the
 * commit the caller checks `tooLateFor` that window before it sends.
 */
export async function takeOneSendSlot(ctx: Context, trx: Parameters<typeof takeRateSlots>[0], limit: { key: string; perSecond: number }): Promise<number | null> {
  const now = ctx.clock.now();
  const windowStart = Math.floor(now / rateWindowMs) * rateWindowMs;
  if (tooLateFor(windowStart, now)) return null;
  return (await takeRateSlots(trx, ctx.database.dialect, limit.key, windowStart, 1, limit.perSecond)) === 1 ? windowStart : null;
}
