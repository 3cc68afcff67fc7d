import { newId } from '../domain/ids.js';
import type { Tx } from '../store/database.js';
import * as statusRepo from '../store/message-status-repository.js';
import { reportEngagement } from './automation.js';
import type { Context } from './context.js';
import { emitWebhookEvents, messageStatusData, statusesReached, type WebhookEvent } from './webhook-emitter.js';

export interface ProviderStatus {
  workspaceId: string;
  provider: string;
  providerMessageId: string;
  status: 'sent' | 'delivered' | 'read' | 'failed';
  /** When the provider says it happened (ms); 0 when unknown. */
  timestamp: number;
  errorCode: string | null;
  errorMessage: string | null;
  /** Nudge's message id when the provider echoes it back (see the channel adapters). */
  nudgeMessageId?: string | null;
}

type Progress = 'queued' | 'sending' | 'sent' | 'delivered' | 'read';
const rank: Record<Progress, number> = { queued: 0, sending: 0, sent: 1, delivered: 2, read: 3 };

/**
 * What a provider status changes on a message, or null for nothing. Statuses arrive
 * out of order and more than once, so they only move forward: a late `delivered`
 * after `read` fills `delivered_at` if it was missing but leaves the status at read;
 * a `failed` after delivery is ignored; a failed message stays failed; and the same
 * status twice changes nothing (timestamps are only ever filled, never moved).
 */
export function statusChange(current: statusRepo.StatusTarget, event: Pick<ProviderStatus, 'status' | 'timestamp' | 'errorCode' | 'errorMessage'>, now: number): Parameters<typeof statusRepo.updateMessageStatus>[2] | null {
  const at = event.timestamp > 0 ? event.timestamp : now;
  const currentRank = rank[current.status as Progress];
  if (currentRank === undefined) return null; // failed, cancelled, skipped: final.
  if (event.status === 'failed') {
    if (currentRank >= rank.delivered) return null;
    return { status: 'failed', failed_at: at, error_code: event.errorCode ?? 'failed', error_message: event.errorMessage ?? 'WhatsApp reported the message as failed', updated_at: now };
  }
  const target = rank[event.status];
  const patch: Parameters<typeof statusRepo.updateMessageStatus>[2] = {};
  if (current.sent_at === null) patch.sent_at = at;
  if (target >= rank.delivered && current.delivered_at === null) patch.delivered_at = at;
  if (target >= rank.read && current.read_at === null) patch.read_at = at;
  if (target > currentRank) patch.status = event.status;
  if (Object.keys(patch).length === 0) return null;
  return { ...patch, updated_at: now };
}

/**
 * Applies a provider's delivery status to the outbound message with that provider id.
 * A status for an id Nudge has not recorded yet (the provider called back while the
 * send result was still on its way to the database) is kept, and applied when the
 * result is recorded (`applyPendingStatuses`, or the worker's sweep,
 * `settleParkedStatuses`, when the two crossed); one for a message sent from elsewhere
 * is pruned after a week. Returns whether a message changed now.
 */
export async function applyProviderStatus(ctx: Context, event: ProviderStatus): Promise<boolean> {
  const { db, dialect } = ctx.database;
  let enrolled = false;
  const changed = await db.transaction().execute(async (trx) => {
    let message = await statusRepo.findOutboundByProviderId(trx, dialect, event.provider, event.providerMessageId);
    const now = ctx.clock.now();
    if (!message && event.nudgeMessageId) {
      // The callback names our message: a send whose answer was lost (a timeout, a
      // dropped connection, a worker killed mid-send) reached the provider after all.
      // Record the provider's id and take the message off the retry queue, unless it
      // already has an id of its own (then this is a second copy and changes nothing).
      const unconfirmed = await statusRepo.findUnconfirmedOutbound(trx, dialect, event.workspaceId, event.provider, event.nudgeMessageId);
      if (unconfirmed && unconfirmed.provider_message_id === null && (unconfirmed.status === 'queued' || unconfirmed.status === 'sending')) {
        await statusRepo.confirmOutbound(trx, unconfirmed.id, event.providerMessageId, now);
        message = { ...unconfirmed, status: 'sent', provider_message_id: event.providerMessageId, sent_at: unconfirmed.sent_at ?? (event.timestamp > 0 ? event.timestamp : now) };
        // The dispatcher never recorded this send: announce it here.
        await emitWebhookEvents(ctx, trx, statusEvents(message, 'queued', 'sent', event.timestamp > 0 ? event.timestamp : now));
        if (unconfirmed.sent_at === null) await statusRepo.updateMessageStatus(trx, unconfirmed.id, { sent_at: message.sent_at });
        // A queued message had its send counted as failed; one still sending is counted
        // by the dispatcher when its answer arrives.
        if (unconfirmed.status === 'queued') await statusRepo.countConfirmedSend(trx, unconfirmed.id, now);
      } else if (unconfirmed && unconfirmed.provider_message_id === event.providerMessageId) {
        // The dispatcher recorded this very send while the status waited for the row
        // (PostgreSQL): it is the message; parked as pending it would never be applied.
        message = unconfirmed;
      }
    }
    if (!message) {
      await statusRepo.insertPendingStatus(trx, {
        id: newId(now),
        workspace_id: event.workspaceId,
        provider: event.provider,
        provider_message_id: event.providerMessageId,
        status: event.status,
        occurred_at: event.timestamp > 0 ? event.timestamp : now,
        error_code: event.errorCode,
        error_message: event.errorMessage,
        created_at: now,
      });
      return false;
    }
    if (message.workspace_id !== event.workspaceId) return false;
    const patch = statusChange(message, event, now);
    if (!patch) return false;
    await statusRepo.updateMessageStatus(trx, message.id, patch);
    enrolled = await reportEngagement(ctx, trx, event.workspaceId, [message.contact_id]);
    if (patch.status) await emitWebhookEvents(ctx, trx, statusEvents({ ...message, ...patch }, message.status, patch.status, event.timestamp > 0 ? event.timestamp : now));
    return true;
  });
  if (enrolled) ctx.wake.sessions();
  return changed;
}

/**
 * Applies statuses that arrived before these messages' send results, in the caller's
 * transaction. Returns whether that enrolled anyone (the caller wakes the scheduler
 * after its commit).
 */
export async function applyPendingStatuses(ctx: Context, trx: Tx, sent: ReadonlyArray<{ workspace_id: string; provider: string; provider_message_id: string | null }>): Promise<boolean> {
  const byProvider = new Map<string, string[]>();
  for (const m of sent) {
    if (m.provider_message_id === null || m.provider === 'sandbox') continue;
    byProvider.set(m.provider, [...(byProvider.get(m.provider) ?? []), m.provider_message_id]);
  }
  const taken: statusRepo.PendingStatusRow[] = [];
  for (const [provider, ids] of byProvider) taken.push(...(await statusRepo.takePendingStatuses(trx, provider, ids)));
  return applyTaken(ctx, trx, taken);
}

/** How far back the sweep looks: a status parked by the race below is minutes old at most. */
const parkedSweepWindowMs = 15 * 60_000;

/**
 * Applies parked statuses whose message is recorded now. On PostgreSQL a status without
 * Nudge's id can arrive while the dispatcher commits that send's result: it finds no
 * row with the provider's id and parks, while the dispatcher has already looked for
 * parked statuses and found none. Neither transaction sees the other; this sweep, run
 * by each worker's periodic pass, applies such a status within one pass. Returns how
 * many parked statuses it took (one that moves nothing, a duplicate, is taken too).
 */
export async function settleParkedStatuses(ctx: Context, limit = 500): Promise<number> {
  let applied = 0;
  const enrolled = await ctx.database.db.transaction().execute(async (trx) => {
    const taken = await statusRepo.takeSettleablePendingStatuses(trx, ctx.clock.now() - parkedSweepWindowMs, limit);
    applied = taken.length;
    return applyTaken(ctx, trx, taken);
  });
  if (enrolled) ctx.wake.sessions();
  return applied;
}

/** Applies statuses taken off the pending list to their messages, oldest first. Returns whether that enrolled anyone. */
async function applyTaken(ctx: Context, trx: Tx, taken: readonly statusRepo.PendingStatusRow[]): Promise<boolean> {
  let enrolled = false;
  const now = ctx.clock.now();
  for (const pending of taken) {
    const message = await statusRepo.findOutboundByProviderId(trx, ctx.database.dialect, pending.provider, pending.provider_message_id);
    if (!message || message.workspace_id !== pending.workspace_id) continue;
    const patch = statusChange(message, { status: pending.status as ProviderStatus['status'], timestamp: pending.occurred_at, errorCode: pending.error_code, errorMessage: pending.error_message }, now);
    if (!patch) continue;
    await statusRepo.updateMessageStatus(trx, message.id, patch);
    if (await reportEngagement(ctx, trx, message.workspace_id, [message.contact_id])) enrolled = true;
    if (patch.status) await emitWebhookEvents(ctx, trx, statusEvents({ ...message, ...patch }, message.status, patch.status, pending.occurred_at));
  }
  return enrolled;
}

/** The `message.status.*` events of a move from `before` to `after` (a jump from sent to read announces delivered too). */
function statusEvents(message: statusRepo.StatusTarget, before: string, after: string, at: number): WebhookEvent[] {
  return statusesReached(before, after).map((status) => ({ workspaceId: message.workspace_id, type: `message.status.${status}` as const, data: () => messageStatusData(message, status, at) }));
}
