import { isoTime } from '../domain/clock.js';
import { decodeCursor, encodeCursor } from '../domain/cursor.js';
import { AppError, invalid, invalidFields, notFound, type FieldErrors } from '../domain/errors.js';
import { isUuid, newId } from '../domain/ids.js';
import { parseJson, toJson } from '../domain/json.js';
import { eventListProblems, webhookEnvelope, webhookEventTypes, webhookTestEvent, webhookUrlProblem } from '../domain/webhook-events.js';
import { generateWebhookSecret, sealWebhookSecret } from '../domain/webhook-signature.js';
import type { Db } from '../store/database.js';
import * as repo from '../store/webhook-repository.js';
import type { WebhookAttemptRow, WebhookDeliveryRow, WebhookSubscriptionRow } from '../store/webhook-repository.js';
import { webhookRetryWindowMs } from './backoff.js';
import type { Context } from './context.js';
import { deliveryRow } from './webhook-emitter.js';

/**
 * Webhook subscriptions as the API and the MCP tools see them. The signing secret is
 * returned twice in a subscription's life: by create and by rotate-secret; it is
 * stored sealed with NUDGE_SECRET_KEY and never read back out.
 */

/** At most this many subscriptions per workspace (each event is one row per subscription). */
export const maxSubscriptionsPerWorkspace = 100;
/** How long a rotated-out secret keeps signing when the caller does not say. */
export const defaultRotationGraceHours = 24;

export interface WebhookSubscriptionView {
  id: string;
  url: string;
  description: string | null;
  events: string[];
  /** active | disabled */
  status: string;
  /** Since when every delivery has failed (null while the endpoint answers). */
  failing_since: string | null;
  disabled_at: string | null;
  disabled_reason: string | null;
  /** Until when the secret replaced by the last rotation still signs (null when none does). */
  previous_secret_expires_at: string | null;
  created_at: string;
  updated_at: string;
}

export interface WebhookAttemptView {
  status_code: number | null;
  error: string | null;
  duration_ms: number;
  at: string;
}

export interface WebhookDeliveryView {
  id: string;
  subscription_id: string;
  event_id: string;
  event_type: string;
  /** pending | delivered | failed */
  status: string;
  attempt_count: number;
  next_attempt_at: string | null;
  last_status_code: number | null;
  last_error: string | null;
  created_at: string;
  delivered_at: string | null;
  /** The body sent, exactly as signed. */
  payload: Record<string, unknown>;
  attempts: WebhookAttemptView[];
}

export interface SubscriptionInput {
  url?: unknown;
  events?: unknown;
  description?: unknown;
}

/** Every event type a subscription can name, with `webhook.test` (always delivered). */
export function listWebhookEventTypes(): { data: string[]; test_event: string } {
  return { data: [...webhookEventTypes], test_event: webhookTestEvent };
}

function toView(row: WebhookSubscriptionRow, now: number): WebhookSubscriptionView {
  const graceEnds = row.previous_secret_expires_at;
  return {
    id: row.id,
    url: row.url,
    description: row.description,
    events: parseJson<string[]>(row.events, []),
    status: row.status,
    failing_since: isoTime(row.failing_since),
    disabled_at: isoTime(row.disabled_at),
    disabled_reason: row.disabled_reason,
    previous_secret_expires_at: row.previous_secret !== null && graceEnds !== null && graceEnds > now ? isoTime(graceEnds) : null,
    created_at: isoTime(row.created_at),
    updated_at: isoTime(row.updated_at),
  };
}

function checkFields(input: SubscriptionInput, partial: boolean): { url?: string; events?: string[]; description?: string | null } {
  const errors: FieldErrors = {};
  const out: { url?: string; events?: string[]; description?: string | null } = {};
  if (!partial || input.url !== undefined) {
    const problem = webhookUrlProblem(input.url);
    if (problem) errors.url = [problem];
    else out.url = (input.url as string).trim();
  }
  if (!partial || input.events !== undefined) {
    const problems = eventListProblems(input.events);
    if (Object.keys(problems).length > 0) Object.assign(errors, problems);
    else out.events = input.events as string[];
  }
  if (input.description !== undefined) {
    if (input.description === null || input.description === '') out.description = null;
    else if (typeof input.description !== 'string' || input.description.length > 500) errors.description = ['description must be a string of at most 500 characters'];
    else out.description = input.description;
  }
  if (Object.keys(errors).length > 0) throw invalidFields(errors);
  return out;
}

async function requireSubscription(db: Db, workspaceId: string, id: string, lock?: Context['database']['dialect']): Promise<WebhookSubscriptionRow> {
  const row = isUuid(id) ? await repo.findSubscription(db, workspaceId, id.toLowerCase(), lock) : undefined;
  if (!row) throw notFound('Webhook subscription');
  return row;
}

function testEventRow(workspaceId: string, subscriptionId: string, now: number) {
  const eventId = newId(now);
  const payload = toJson(
    webhookEnvelope(eventId, webhookTestEvent, now, workspaceId, { subscription_id: subscriptionId, message: 'A test event from Nudge: this endpoint receives its webhooks.' }),
  );
  return deliveryRow(workspaceId, subscriptionId, eventId, webhookTestEvent, payload, now);
}

/**
 * Creates an active subscription and queues a `webhook.test` event to it. Returns the
 * subscription with its signing secret, which is never shown again.
 *
 * @example
 * const { secret } = await createSubscription(ctx, workspaceId, { url: 'https://example.com/hooks', events: ['message.*'] });
 */
export async function createSubscription(ctx: Context, workspaceId: string, input: SubscriptionInput): Promise<WebhookSubscriptionView & { secret: string }> {
  const fields = checkFields(input, false);
  const secret = generateWebhookSecret();
  const view = await ctx.database.db.transaction().execute(async (trx) => {
    if ((await repo.countSubscriptions(trx, workspaceId)) >= maxSubscriptionsPerWorkspace) {
      throw new AppError('business_rule', `A workspace can have at most ${maxSubscriptionsPerWorkspace} webhook subscriptions; delete one first`);
    }
    const now = ctx.clock.now();
    const id = newId(now);
    await repo.insertSubscription(trx, {
      id,
      workspace_id: workspaceId,
      url: fields.url!,
      description: fields.description ?? null,
      events: toJson(fields.events!),
      secret: sealWebhookSecret(ctx.secretKey, workspaceId, id, secret),
      status: 'active',
      failing_since: null,
      disabled_at: null,
      disabled_reason: null,
      created_at: now,
      updated_at: now,
    });
    await repo.insertDeliveries(trx, [testEventRow(workspaceId, id, now)]);
    return toView((await repo.findSubscription(trx, workspaceId, id))!, now);
  });
  ctx.webhooks.invalidate(workspaceId);
  ctx.wake.webhooks();
  return { ...view, secret };
}

export async function listSubscriptions(ctx: Context, workspaceId: string): Promise<WebhookSubscriptionView[]> {
  const now = ctx.clock.now();
  return (await repo.listSubscriptions(ctx.database.db, workspaceId)).map((r) => toView(r, now));
}

export async function getSubscription(ctx: Context, workspaceId: string, id: string): Promise<WebhookSubscriptionView> {
  return toView(await requireSubscription(ctx.database.db, workspaceId, id), ctx.clock.now());
}

/** Changes the URL, events or description; what is left out stays. */
export async function updateSubscription(ctx: Context, workspaceId: string, id: string, input: SubscriptionInput): Promise<WebhookSubscriptionView> {
  const fields = checkFields(input, true);
  const view = await ctx.database.db.transaction().execute(async (trx) => {
    const row = await requireSubscription(trx, workspaceId, id, ctx.database.dialect);
    const now = ctx.clock.now();
    await repo.updateSubscription(trx, workspaceId, row.id, {
      ...(fields.url !== undefined ? { url: fields.url } : {}),
      ...(fields.events !== undefined ? { events: toJson(fields.events) } : {}),
      ...(fields.description !== undefined ? { description: fields.description } : {}),
      updated_at: now,
    });
    return toView((await repo.findSubscription(trx, workspaceId, row.id))!, now);
  });
  ctx.webhooks.invalidate(workspaceId);
  return view;
}

/** Deletes the subscription with its pending deliveries and its delivery log. */
export async function deleteSubscription(ctx: Context, workspaceId: string, id: string): Promise<{ id: string; deleted: true }> {
  if (!isUuid(id)) throw notFound('Webhook subscription');
  const deleted = await ctx.database.db.transaction().execute((trx) => repo.deleteSubscription(trx, workspaceId, id.toLowerCase()));
  if (!deleted) throw notFound('Webhook subscription');
  ctx.webhooks.invalidate(workspaceId);
  return { id: id.toLowerCase(), deleted: true };
}

/**
 * A new signing secret, returned once. The old one keeps signing beside it for
 * `graceHours` (default 24; 0 ends it now), so a receiver can switch to the new
 * secret without refusing a request in between: meanwhile each request carries one
 * `v1` signature per secret.
 */
export async function rotateSecret(ctx: Context, workspaceId: string, id: string, input: { grace_period_hours?: unknown } = {}): Promise<WebhookSubscriptionView & { secret: string }> {
  const grace = input.grace_period_hours ?? defaultRotationGraceHours;
  if (typeof grace !== 'number' || !Number.isInteger(grace) || grace < 0 || grace > 168) throw invalid('grace_period_hours', 'must be a whole number of hours from 0 to 168');
  const secret = generateWebhookSecret();
  const view = await ctx.database.db.transaction().execute(async (trx) => {
    const row = await requireSubscription(trx, workspaceId, id, ctx.database.dialect);
    const now = ctx.clock.now();
    await repo.updateSubscription(trx, workspaceId, row.id, {
      secret: sealWebhookSecret(ctx.secretKey, workspaceId, row.id, secret),
      previous_secret: grace > 0 ? row.secret : null,
      previous_secret_expires_at: grace > 0 ? now + grace * 3_600_000 : null,
      updated_at: now,
    });
    return toView((await repo.findSubscription(trx, workspaceId, row.id))!, now);
  });
  return { ...view, secret };
}

/**
 * Enables a disabled subscription: it receives new events again, and its paused
 * deliveries are due now, except those whose event is older than the 3-day retry
 * window, which fail. Enabling an active subscription changes nothing.
 */
export async function enableSubscription(ctx: Context, workspaceId: string, id: string): Promise<WebhookSubscriptionView & { resumed_deliveries: number; expired_deliveries: number }> {
  const result = await ctx.database.db.transaction().execute(async (trx) => {
    const row = await requireSubscription(trx, workspaceId, id, ctx.database.dialect);
    const now = ctx.clock.now();
    if (row.status === 'active') return { view: toView(row, now), resumed: 0, failed: 0 };
    await repo.updateSubscription(trx, workspaceId, row.id, { status: 'active', failing_since: null, disabled_at: null, disabled_reason: null, updated_at: now });
    const { resumed, failed } = await repo.resumeDeliveries(trx, workspaceId, row.id, now, now - webhookRetryWindowMs, 'expired: the subscription was disabled until more than 3 days after the event');
    return { view: toView((await repo.findSubscription(trx, workspaceId, row.id))!, now), resumed, failed };
  });
  ctx.webhooks.invalidate(workspaceId);
  if (result.resumed > 0) ctx.wake.webhooks();
  return { ...result.view, resumed_deliveries: result.resumed, expired_deliveries: result.failed };
}

/** Disables the subscription: no new events are queued for it and its pending deliveries pause. */
export async function disableSubscription(ctx: Context, workspaceId: string, id: string): Promise<WebhookSubscriptionView> {
  const view = await ctx.database.db.transaction().execute(async (trx) => {
    const row = await requireSubscription(trx, workspaceId, id, ctx.database.dialect);
    const now = ctx.clock.now();
    if (row.status === 'disabled') return toView(row, now);
    await repo.updateSubscription(trx, workspaceId, row.id, { status: 'disabled', disabled_at: now, disabled_reason: 'disabled through the API', updated_at: now });
    await repo.pauseDeliveries(trx, workspaceId, row.id);
    return toView((await repo.findSubscription(trx, workspaceId, row.id))!, now);
  });
  ctx.webhooks.invalidate(workspaceId);
  return view;
}

function requireActive(row: WebhookSubscriptionRow): void {
  if (row.status !== 'active') throw new AppError('business_rule', 'The subscription is disabled: enable it first (POST /api/v1/webhooks/{id}/enable)');
}

/** Queues a `webhook.test` event to this subscription. Returns the queued delivery. */
export async function sendTestEvent(ctx: Context, workspaceId: string, id: string): Promise<WebhookDeliveryView> {
  const view = await ctx.database.db.transaction().execute(async (trx) => {
    const row = await requireSubscription(trx, workspaceId, id, ctx.database.dialect);
    requireActive(row);
    const delivery = testEventRow(workspaceId, row.id, ctx.clock.now());
    await repo.insertDeliveries(trx, [delivery]);
    return deliveryView((await repo.findDelivery(trx, workspaceId, delivery.id))!, []);
  });
  ctx.wake.webhooks();
  return view;
}

function deliveryView(row: WebhookDeliveryRow, attempts: WebhookAttemptRow[]): WebhookDeliveryView {
  return {
    id: row.id,
    subscription_id: row.subscription_id,
    event_id: row.event_id,
    event_type: row.event_type,
    status: row.status,
    attempt_count: Number(row.attempts),
    next_attempt_at: isoTime(row.next_attempt_at),
    last_status_code: row.last_status_code,
    last_error: row.last_error,
    created_at: isoTime(row.created_at),
    delivered_at: isoTime(row.delivered_at),
    payload: parseJson<Record<string, unknown>>(row.payload, {}),
    attempts: attempts.map((a) => ({ status_code: a.status_code, error: a.error, duration_ms: Number(a.duration_ms), at: isoTime(a.at) })),
  };
}

/** The subscription's deliveries, newest first, each with its attempts and their response codes. */
export async function listDeliveries(
  ctx: Context,
  workspaceId: string,
  id: string,
  query: { status?: string; cursor?: string; limit?: number },
): Promise<{ data: WebhookDeliveryView[]; next_cursor: string | null }> {
  const db = ctx.database.db;
  const subscription = await requireSubscription(db, workspaceId, id);
  const limit = query.limit ?? 50;
  if (query.status !== undefined && !['pending', 'delivered', 'failed'].includes(query.status)) throw invalid('status', 'must be pending, delivered or failed');
  const rows = await repo.listDeliveries(db, workspaceId, subscription.id, { status: query.status, before: query.cursor ? decodeCursor(query.cursor) : undefined, limit: limit + 1 });
  const page = rows.slice(0, limit);
  const attempts = await repo.listAttempts(db, workspaceId, page.map((r) => r.id));
  const byDelivery = new Map<string, WebhookAttemptRow[]>();
  for (const a of attempts) byDelivery.set(a.delivery_id, [...(byDelivery.get(a.delivery_id) ?? []), a]);
  return { data: page.map((r) => deliveryView(r, byDelivery.get(r.id) ?? [])), next_cursor: rows.length > limit ? encodeCursor(page[page.length - 1]!.id) : null };
}

/**
 * Sends one delivery again, now, whatever became of it (delivered, failed or still
 * retrying), with the same event id and body. An event older than the retry window
 * gets this one attempt.
 */
export async function redeliver(ctx: Context, workspaceId: string, id: string, deliveryId: string): Promise<WebhookDeliveryView> {
  const view = await ctx.database.db.transaction().execute(async (trx) => {
    const subscription = await requireSubscription(trx, workspaceId, id, ctx.database.dialect);
    const delivery = isUuid(deliveryId) ? await repo.findDelivery(trx, workspaceId, deliveryId.toLowerCase()) : undefined;
    if (!delivery || delivery.subscription_id !== subscription.id) throw notFound('Delivery');
    requireActive(subscription);
    await repo.requeueDelivery(trx, workspaceId, delivery.id, ctx.clock.now());
    const fresh = (await repo.findDelivery(trx, workspaceId, delivery.id))!;
    return deliveryView(fresh, await repo.listAttempts(trx, workspaceId, [delivery.id]));
  });
  ctx.wake.webhooks();
  return view;
}
