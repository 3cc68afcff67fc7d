import { toError } from '../domain/errors.js';
import { newId } from '../domain/ids.js';
import { openWebhookSecret, signWebhook } from '../domain/webhook-signature.js';
import type { Tx } from '../store/database.js';
import * as repo from '../store/webhook-repository.js';
import type { DeliveryOutcome, WebhookAttemptRow, WebhookDeliveryRow, WebhookSubscriptionRow } from '../store/webhook-repository.js';
import { webhookBackoff, webhookDisableAfterMs, webhookRetryWindowMs } from './backoff.js';
import type { Context } from './context.js';
import { mapLimit } from './map-limit.js';

/**
 * The webhook delivery loop's one pass: claim due outbox rows, POST each to its
 * subscription, record every attempt and its outcome.
 *
 * - At least once. A claim leases the row; a worker killed mid-request leaves the
 *   lease to expire and another worker sends it again. Receivers de-duplicate on the
 *   event `id` (or the `Nudge-Delivery` header).
 * - No ordering. Deliveries go out concurrently and a failed one is retried later
 *   while newer ones succeed, so a receiver may see `message.status.delivered` before
 *   `message.status.sent`; each payload carries its time (`created_at`).
 * - 2xx is delivered. Anything else (another status, a redirect, a timeout, a refused
 *   or reset connection) is retried with webhookBackoff, no sooner than Retry-After on
 *   429 and 503, until webhookRetryWindowMs after the event; then it fails.
 * - A subscription whose deliveries fail for webhookDisableAfterMs without one success
 *   is disabled and its pending deliveries pause, until it is enabled again.
 */

interface AttemptResult {
  ok: boolean;
  statusCode: number | null;
  error: string | null;
  retryAfterMs: number | null;
  durationMs: number;
}

/** Finished deliveries are kept this long for the delivery log, then pruned. */
export const webhookLogRetentionMs = 30 * 86_400_000;

export async function runWebhookDeliveriesOnce(ctx: Context): Promise<number> {
  const { db, dialect } = ctx.database;
  const timeoutMs = ctx.config.webhookDeliveryTimeoutMs;
  const concurrency = ctx.config.webhookDeliveryConcurrency;
  // A batch is two rounds of `concurrency` requests, so it ends within two timeouts;
  // the lease outlasts that with room to record the outcomes. A shorter lease would let
  // another worker send a delivery still in flight here.
  const batchSize = concurrency * 2;
  const leaseMs = 3 * timeoutMs + 30_000;
  const now = ctx.clock.now();
  const claimed = await db.transaction().execute((trx) => repo.claimDueDeliveries(trx, dialect, now, batchSize, leaseMs));
  if (claimed.length === 0) return 0;

  const subscriptions = new Map((await repo.findSubscriptionsByIds(db, [...new Set(claimed.map((d) => d.subscription_id))])).map((s) => [s.id, s]));
  const signing = new Map<string, string[] | Error>();
  const send: Array<{ delivery: WebhookDeliveryRow; subscription: WebhookSubscriptionRow }> = [];
  const paused: WebhookDeliveryRow[] = [];
  const orphaned: string[] = [];
  for (const delivery of claimed) {
    const subscription = subscriptions.get(delivery.subscription_id);
    // Its subscription was deleted after another process, whose cached filters still
    // had it, queued this: nothing can send it.
    if (!subscription) orphaned.push(delivery.id);
    else if (subscription.status !== 'active') paused.push(delivery);
    else send.push({ delivery, subscription });
  }
  if (orphaned.length > 0) await repo.deleteDeliveries(db, orphaned);

  const results = await mapLimit(send, concurrency, async ({ delivery, subscription }) => {
    let secrets = signing.get(subscription.id);
    if (!secrets) {
      secrets = signingSecrets(ctx, subscription, now);
      signing.set(subscription.id, secrets);
    }
    if (secrets instanceof Error) return { ok: false, statusCode: null, error: secrets.message, retryAfterMs: null, durationMs: 0 } satisfies AttemptResult;
    return postDelivery(ctx, subscription.url, delivery, secrets, timeoutMs);
  });

  const done = ctx.clock.now();
  await db.transaction().execute(async (trx) => {
    // Read again under the row locks, first (as the API's changes lock a subscription
    // before its deliveries, so neither waits on the other in a cycle): one deleted
    // meanwhile took its deliveries with it, and its attempts are not logged either.
    const live = new Map((await repo.findSubscriptionsByIds(trx, [...new Set(send.map((s) => s.subscription.id))], ctx.database.dialect)).map((r) => [r.id, r]));
    for (const delivery of paused) await repo.releasePaused(trx, delivery.id, delivery.lease_until!);
    const attempts: WebhookAttemptRow[] = send.map(({ delivery }, i) => ({
      id: newId(done),
      workspace_id: delivery.workspace_id,
      delivery_id: delivery.id,
      subscription_id: delivery.subscription_id,
      status_code: results[i]!.statusCode,
      error: results[i]!.error,
      duration_ms: results[i]!.durationMs,
      at: done,
    }));
    await repo.insertAttempts(trx, attempts.filter((a) => live.has(a.subscription_id)));
    const health = new Map<string, { succeeded: boolean; lastError: string | null }>();
    for (const [i, { delivery }] of send.entries()) {
      if (!live.has(delivery.subscription_id)) continue;
      const result = results[i]!;
      await repo.saveDeliveryOutcome(trx, delivery.id, delivery.lease_until!, outcomeOf(delivery, result, done));
      const seen = health.get(delivery.subscription_id) ?? { succeeded: false, lastError: null };
      if (result.ok) seen.succeeded = true;
      else seen.lastError = result.error;
      health.set(delivery.subscription_id, seen);
    }
    await noteSubscriptionHealth(ctx, trx, [...live.values()], health, done);
  });
  return claimed.length;
}

/** What an attempt does to its delivery: delivered, due again after a backoff, or failed once its window is over. */
export function outcomeOf(delivery: Pick<WebhookDeliveryRow, 'attempts' | 'created_at'>, result: AttemptResult, done: number): DeliveryOutcome {
  if (result.ok) return { status: 'delivered', next_attempt_at: null, last_status_code: result.statusCode, last_error: null, delivered_at: done };
  const deadline = delivery.created_at + webhookRetryWindowMs;
  if (done >= deadline) {
    return { status: 'failed', next_attempt_at: null, last_status_code: result.statusCode, last_error: `${result.error ?? 'failed'} (retried for 3 days; no more attempts)`.slice(0, 1000), delivered_at: null };
  }
  // The last try lands on the deadline itself rather than being skipped.
  const next = Math.min(done + webhookBackoff(delivery.attempts, result.retryAfterMs), deadline);
  return { status: 'pending', next_attempt_at: next, last_status_code: result.statusCode, last_error: result.error?.slice(0, 1000) ?? null, delivered_at: null };
}

/**
 * A success clears the subscription's failing streak; a failure starts one, or, when
 * the streak is a day old, disables the subscription and pauses its pending
 * deliveries. `rows` were read under the row locks (PostgreSQL), so a concurrent enable
 * or another worker's outcome is not overwritten with a stale view.
 */
async function noteSubscriptionHealth(
  ctx: Context,
  trx: Tx,
  rows: WebhookSubscriptionRow[],
  health: Map<string, { succeeded: boolean; lastError: string | null }>,
  done: number,
): Promise<void> {
  for (const row of rows) {
    const seen = health.get(row.id);
    if (!seen || row.status !== 'active') continue;
    if (seen.succeeded) {
      if (row.failing_since !== null) await repo.updateSubscription(trx, row.workspace_id, row.id, { failing_since: null });
      continue;
    }
    if (row.failing_since === null) {
      await repo.updateSubscription(trx, row.workspace_id, row.id, { failing_since: done });
    } else if (done - row.failing_since >= webhookDisableAfterMs) {
      const reason = `Every delivery failed for 24 hours (last: ${seen.lastError ?? 'failed'}); enable the subscription again once the endpoint works`.slice(0, 1000);
      await repo.updateSubscription(trx, row.workspace_id, row.id, { status: 'disabled', disabled_at: done, disabled_reason: reason, updated_at: done });
      await repo.pauseDeliveries(trx, row.workspace_id, row.id);
      ctx.webhooks.invalidate(row.workspace_id);
      ctx.log.warn({ workspace_id: row.workspace_id, subscription_id: row.id, url: row.url }, 'webhook subscription disabled after failing for 24 hours');
    }
  }
}

/** The secrets that sign now: the current one, and the rotated-out one during its grace period. */
function signingSecrets(ctx: Context, subscription: WebhookSubscriptionRow, now: number): string[] | Error {
  try {
    const secrets = [openWebhookSecret(ctx.secretKey, subscription.workspace_id, subscription.id, subscription.secret)];
    if (subscription.previous_secret !== null && subscription.previous_secret_expires_at !== null && subscription.previous_secret_expires_at > now) {
      secrets.push(openWebhookSecret(ctx.secretKey, subscription.workspace_id, subscription.id, subscription.previous_secret));
    }
    return secrets;
  } catch (error) {
    ctx.log.error({ err: toError(error), subscription_id: subscription.id }, 'cannot open a webhook signing secret');
    return new Error('secret_unreadable: the signing secret cannot be decrypted with this NUDGE_SECRET_KEY (restore the key, or rotate the secret)');
  }
}

async function postDelivery(ctx: Context, url: string, delivery: WebhookDeliveryRow, secrets: string[], timeoutMs: number): Promise<AttemptResult> {
  const body = delivery.payload;
  const signature = signWebhook(secrets, Math.floor(ctx.clock.now() / 1000), body);
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  try {
    const response = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': 'Nudge-Webhooks/1',
        'nudge-signature': signature,
        'nudge-event': delivery.event_type,
        'nudge-event-id': delivery.event_id,
        'nudge-delivery': delivery.id,
        'nudge-attempt': String(delivery.attempts),
      },
      body,
      // A redirect is a failure, not followed: the subscription's URL is what was verified.
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
    const ok = response.status >= 200 && response.status < 300;
    let snippet = '';
    if (ok) await response.body?.cancel().catch(() => undefined);
    else snippet = await readSnippet(response);
    const retryAfterMs = response.status === 429 || response.status === 503 ? parseRetryAfter(response.headers.get('retry-after'), ctx.clock.now()) : null;
    return { ok, statusCode: response.status, error: ok ? null : `HTTP ${response.status}${snippet ? `: ${snippet}` : ''}`, retryAfterMs, durationMs: elapsed() };
  } catch (error) {
    return { ok: false, statusCode: null, error: describeFetchError(error, timeoutMs), retryAfterMs: null, durationMs: elapsed() };
  }
}

/** The start of an error response's body, for the delivery log (never more than 200 characters). */
async function readSnippet(response: Response): Promise<string> {
  try {
    const reader = response.body?.getReader();
    if (!reader) return '';
    const chunks: Uint8Array[] = [];
    let size = 0;
    while (size < 800) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.length;
    }
    await reader.cancel().catch(() => undefined);
    return Buffer.concat(chunks).toString('utf8').replace(/\s+/g, ' ').trim().slice(0, 200);
  } catch {
    return '';
  }
}

function describeFetchError(thrown: unknown, timeoutMs: number): string {
  const error = toError(thrown);
  if (error.name === 'TimeoutError' || error.name === 'AbortError') return `timeout: no answer within ${timeoutMs} ms`;
  const cause = (error as Error & { cause?: { code?: string; message?: string } }).cause;
  const detail = cause?.code ?? cause?.message ?? error.message;
  return `connection failed: ${detail}`.slice(0, 500);
}

/** Retry-After as delay seconds or an HTTP date, in ms from `now`; null when absent or unreadable. */
export function parseRetryAfter(value: string | null, now: number): number | null {
  if (value === null) return null;
  const text = value.trim();
  if (/^\d{1,9}$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isFinite(at) ? Math.max(0, at - now) : null;
}

/** Removes finished deliveries older than the log's retention, a bounded number per call. */
export async function pruneWebhookDeliveries(ctx: Context): Promise<number> {
  return repo.pruneFinishedDeliveries(ctx.database.db, ctx.clock.now() - webhookLogRetentionMs);
}
