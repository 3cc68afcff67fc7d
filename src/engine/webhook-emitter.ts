import { isoTime } from '../domain/clock.js';
import { newId } from '../domain/ids.js';
import { toJson } from '../domain/json.js';
import { webhookEnvelope, type WebhookEventType } from '../domain/webhook-events.js';
import type { Db } from '../store/database.js';
import { insertDeliveries, type NewWebhookDeliveryRow } from '../store/webhook-repository.js';
import type { Context } from './context.js';

/**
 * Emitting webhook events: one outbox row per (event, matching active subscription),
 * inserted in the caller's transaction, so an event commits with the change that
 * caused it and a rolled-back change never announces anything. The worker's delivery
 * loop (webhook-delivery.ts) sends the rows; which subscriptions match comes from the
 * per-process cache in webhook-subscription-cache.ts (no query per event).
 */

/** An event's `data`, or a function that builds it: built only when some subscription wants the event. */
export type WebhookEventData = Record<string, unknown> | (() => Record<string, unknown>);

export interface WebhookEvent {
  workspaceId: string;
  type: WebhookEventType;
  data: WebhookEventData;
}

/**
 * Queues one event for every active subscription of the workspace that listens to
 * `type`, inside `trx`. Returns the event id, or null when no subscription wanted it.
 *
 * @example
 * await db.transaction().execute(async (trx) => {
 *   await markOptedOut(trx, workspaceId, contactId, 'sms', now);
 *   await emitWebhookEvent(ctx, trx, workspaceId, 'contact.opted_out', contactEventData(contact, 'sms', 'keyword', 'STOP'));
 * });
 */
export async function emitWebhookEvent(ctx: Context, trx: Db, workspaceId: string, type: WebhookEventType, data: WebhookEventData): Promise<string | null> {
  const [id] = await emitWebhookEvents(ctx, trx, [{ workspaceId, type, data }]);
  return id ?? null;
}

/** Many events in one insert (a scheduler or dispatcher batch). Returns the ids of the events queued. */
export async function emitWebhookEvents(ctx: Context, trx: Db, events: readonly WebhookEvent[]): Promise<string[]> {
  if (events.length === 0) return [];
  const now = ctx.clock.now();
  const rows: NewWebhookDeliveryRow[] = [];
  const queued: string[] = [];
  for (const event of events) {
    const found = ctx.webhooks.matching(trx, event.workspaceId, event.type);
    const subscriptions = Array.isArray(found) ? found : await found;
    if (subscriptions.length === 0) continue;
    const eventId = newId(now);
    const data = typeof event.data === 'function' ? event.data() : event.data;
    const payload = toJson(webhookEnvelope(eventId, event.type, now, event.workspaceId, data));
    for (const subscriptionId of subscriptions) rows.push(deliveryRow(event.workspaceId, subscriptionId, eventId, event.type, payload, now));
    queued.push(eventId);
  }
  if (rows.length === 0) return [];
  await insertDeliveries(trx, rows);
  ctx.wake.webhooks();
  return queued;
}

/** An outbox row due now. */
export function deliveryRow(workspaceId: string, subscriptionId: string, eventId: string, type: string, payload: string, now: number): NewWebhookDeliveryRow {
  return {
    id: newId(now),
    workspace_id: workspaceId,
    subscription_id: subscriptionId,
    event_id: eventId,
    event_type: type,
    payload,
    status: 'pending',
    attempts: 0,
    next_attempt_at: now,
    lease_until: null,
    last_status_code: null,
    last_error: null,
    created_at: now,
    delivered_at: null,
  };
}

// The `data` of each event, built in one place so every emitter sends the same fields
// (the README's table documents them).

export interface MessageFacts {
  id: string;
  contact_id: string;
  session_id: string | null;
  definition_id: string | null;
  broadcast_id?: string | null;
  channel: string;
  provider: string;
  provider_message_id: string | null;
  error_code?: string | null;
  error_message?: string | null;
}

/** `message.status.*`: the message, with `status` the one this event announces. */
export function messageStatusData(message: MessageFacts, status: 'sent' | 'delivered' | 'read' | 'failed', at: number): Record<string, unknown> {
  return {
    message: {
      id: message.id,
      contact_id: message.contact_id,
      session_id: message.session_id,
      definition_id: message.definition_id,
      broadcast_id: message.broadcast_id ?? null,
      channel: message.channel,
      provider: message.provider,
      provider_message_id: message.provider_message_id,
      status,
      error_code: status === 'failed' ? (message.error_code ?? null) : null,
      error_message: status === 'failed' ? (message.error_message ?? null) : null,
    },
    occurred_at: isoTime(at),
  };
}

/** The status events a change from `before` to `after` announces, in order: sent → delivered → read, or failed. */
export function statusesReached(before: string, after: string): Array<'sent' | 'delivered' | 'read' | 'failed'> {
  if (after === 'failed') return before === 'failed' ? [] : ['failed'];
  const order = ['sent', 'delivered', 'read'] as const;
  const rank = (s: string) => (s === 'read' ? 3 : s === 'delivered' ? 2 : s === 'sent' ? 1 : 0);
  return order.filter((s) => rank(s) > rank(before) && rank(s) <= rank(after));
}

export interface ContactFacts {
  id: string;
  phone: string | null;
  email: string | null;
}

function contactOf(contact: ContactFacts) {
  return { id: contact.id, phone: contact.phone, email: contact.email };
}

/** `message.received`. */
export function messageReceivedData(
  message: { id: string; session_id: string | null; channel: string; provider: string; provider_message_id: string | null; kind: string; text: string | null; button_id: string | null; received_at: number },
  contact: ContactFacts,
): Record<string, unknown> {
  return {
    message: {
      id: message.id,
      contact_id: contact.id,
      session_id: message.session_id,
      channel: message.channel,
      provider: message.provider,
      provider_message_id: message.provider_message_id,
      kind: message.kind,
      text: message.text,
      button_id: message.button_id,
      received_at: isoTime(message.received_at),
    },
    contact: contactOf(contact),
  };
}

/** `contact.opted_out` / `contact.opted_in`: the channel, and what made the change (keyword, unsubscribe_link, api). */
export function consentData(contact: ContactFacts, channel: string, source: 'keyword' | 'unsubscribe_link' | 'api', keyword: string | null = null): Record<string, unknown> {
  return { contact: contactOf(contact), channel, source, keyword };
}

export interface SessionFacts {
  id: string;
  kind: 'sequence' | 'flow' | string;
  definition_id: string;
  contact_id: string;
  status: string;
  end_reason: string | null;
  created_at: number;
  ended_at: number | null;
}

/** `session.started`, `session.stopped`, `sequence.finished`, `flow.finished`. */
export function sessionData(session: SessionFacts): Record<string, unknown> {
  return {
    session: {
      id: session.id,
      kind: session.kind,
      definition_id: session.definition_id,
      contact_id: session.contact_id,
      status: session.status,
      end_reason: session.end_reason,
      started_at: isoTime(session.created_at),
      ended_at: isoTime(session.ended_at),
    },
  };
}

/** The event a session's end announces: stopped ones `session.stopped`, the rest (completed, expired, failed) `<kind>.finished`. */
export function sessionEndEvent(kind: string, status: string): WebhookEventType {
  if (status === 'stopped') return 'session.stopped';
  return kind === 'flow' ? 'flow.finished' : 'sequence.finished';
}
