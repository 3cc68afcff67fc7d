import type { OutboundMessage, RenderedContent, SendResult } from '../channels/channel.js';
import type { Channel } from '../domain/definition.js';
import { AppError, invalid, notFound, toError } from '../domain/errors.js';
import { newId, isUuid } from '../domain/ids.js';
import { parseJson, toJson } from '../domain/json.js';
import { normalizePhone } from '../domain/phone.js';
import { isInsideServiceWindow, needsServiceWindow, outsideWindowCode, outsideWindowMessage } from '../domain/service-window.js';
import type { Db } from '../store/database.js';
import * as contactsRepo from '../store/engine-contact-repository.js';
import * as messagesRepo from '../store/message-repository.js';
import type { MessageRow, NewMessageRow } from '../store/message-repository.js';
import { noteChannelHealth } from './channel-health.js';
import { findOrCreateContactByPhone } from './contact-service.js';
import { reportEngagement } from './automation.js';
import type { Context } from './context.js';
import { applyPendingStatuses } from './message-status.js';
import { outcomeOf } from './send-outcome.js';
import { rateWindowMs, takeOneSendSlot, tooLateFor } from './send-rate-limit.js';
import { withTrackedLinks } from './link-tracking-service.js';

/**
 * Messages sent outside sequences and flows: API actions such as send-text-message
 * and send-template-message. Each is stored first (so nothing is lost if the process
 * dies mid-send), then sent at once when it can be, through exactly the lease, rate
 * limit and outcome rules the dispatcher uses; what cannot go now stays queued for it.
 */

export interface DirectMessageInput {
  workspaceId: string;
  contactId: string;
  channel: Channel;
  content: RenderedContent;
  /** Marketing messages are never sent to a contact who opted out of the channel. */
  marketing: boolean;
  /** Makes the call idempotent: a second call with the same key returns the first message. */
  idempotencyKey?: string;
}

export interface DirectMessageOutcome {
  messageId: string;
  /** queued | sending | sent | delivered | failed */
  status: string;
  providerMessageId: string | null;
}

/**
 * Stores an outbound message for a contact and tries to send it at once.
 *
 * Refused before anything is stored: an unknown contact (404), a contact without an
 * address on the channel, and a contact opted out of the channel when the message is
 * marketing or the channel is SMS (422 `business_rule`, `reason: "opted_out"`). The
 * WhatsApp service window is the caller's rule to apply (templates are allowed outside
 * it); see `sendTextMessage`.
 *
 * @example
 * const sent = await queueDirectMessage(ctx, { workspaceId, contactId, channel: 'whatsapp', content: { kind: 'text', text: 'Hi' }, marketing: false });
 * // { messageId: '0193…', status: 'sent', providerMessageId: 'wamid.HBgL…' }
 */
export async function queueDirectMessage(ctx: Context, input: DirectMessageInput): Promise<DirectMessageOutcome> {
  const { db, dialect } = ctx.database;
  const registry = ctx.channels;
  await registry.refresh?.();
  if (!isUuid(input.contactId)) throw notFound('Contact');
  const contact = await contactsRepo.findContactById(db, input.workspaceId, input.contactId);
  if (!contact) throw notFound('Contact');
  const recipient = input.channel === 'email' ? contact.email : contact.phone;
  if (!recipient) throw invalid('contact_id', `names a contact without ${input.channel === 'email' ? 'an email address' : 'a phone number'}`);
  const optedOutAt = input.channel === 'whatsapp' ? contact.whatsapp_opted_out_at : input.channel === 'sms' ? contact.sms_opted_out_at : contact.email_opted_out_at;
  // SMS carriers forbid every message to a number that opted out; other channels only marketing.
  if (optedOutAt !== null && (input.marketing || input.channel === 'sms')) {
    throw new AppError('business_rule', `The contact opted out of ${input.channel} messages${input.channel === 'sms' ? '' : ' (marketing)'}; nothing was sent`, {
      extra: { reason: 'opted_out' },
    });
  }

  const dedupeKey = input.idempotencyKey ? `direct:${input.workspaceId}:${input.idempotencyKey}` : null;
  if (dedupeKey) {
    const seen = await db.selectFrom('messages').selectAll().where('dedupe_key', '=', dedupeKey).executeTakeFirst();
    if (seen) return outcomeView(seen);
  }

  const now = ctx.clock.now();
  const provider = registry.providerFor(input.workspaceId, input.channel);
  const adapter = registry.adapterFor(input.workspaceId, input.channel, provider);
  const id = newId(now);
  const row: NewMessageRow = messagesRepo.queuedOutboundRow({
    id,
    workspace_id: input.workspaceId,
    contact_id: contact.id,
    dedupe_key: dedupeKey,
    channel: input.channel,
    provider,
    recipient,
    kind: input.content.kind,
    content: toJson(withTrackedLinks(ctx, input.content, id)),
    marketing: input.marketing ? 1 : 0,
    now,
  });

  let enrolled = false;
  if (adapter.inline) {
    // The sandbox records the send in the transaction that stores the message, as the scheduler does.
    const stored = await db.transaction().execute(async (trx) => {
      const result = await sendSafely(adapter.send.bind(adapter), toOutbound(row));
      Object.assign(row, outcomeOf({ id, attempts: 1 }, result, now), { attempts: 1 });
      return insertOnce(trx, ctx, row, async () => {
        if (row.sent_at !== null && row.sent_at !== undefined) await messagesRepo.countMessagesOnContacts({ db: trx, raw: ctx.database.sqlite }, new Map([[contact.id, { count: 1, at: now }]]));
        enrolled = await reportEngagement(ctx, trx, input.workspaceId, [contact.id]);
      });
    });
    if (enrolled) ctx.wake.sessions();
    return outcomeView(stored);
  }

  const leaseMs = ctx.config.dispatchLeaseMs;
  const limit = registry.rateLimitFor?.(input.workspaceId, input.channel) ?? null;
  const claimed = await db.transaction().execute(async (trx) => {
    const stored = await insertOnce(trx, ctx, row);
    if (stored.id !== id) return { stored, claim: null, slotWindow: null };
    const slotWindow = limit ? await takeOneSendSlot(ctx, trx, limit) : null;
    if (limit && slotWindow === null) return { stored, claim: null, slotWindow };
    return { stored, claim: await messagesRepo.claimMessageById(trx, dialect, id, now, leaseMs, ctx.config.sendConfirmWindowMs), slotWindow };
  });
  if (claimed.stored.id !== id) return outcomeView(claimed.stored);
  const committed = ctx.clock.now();
  if (claimed.claim && claimed.slotWindow !== null && tooLateFor(claimed.slotWindow, committed)) {
    // The commit lasted into the end of the slot's second: sent now, the message would count
    // against the next one on the provider's side. The dispatcher sends it in a second of its own.
    await messagesRepo.releaseClaims(db, [id], Math.max(claimed.slotWindow + rateWindowMs, committed), committed);
    claimed.claim = null;
  }
  if (!claimed.claim) {
    // At the sender's rate limit, or already taken: the dispatcher sends it.
    ctx.wake.messages();
    return { messageId: id, status: 'queued', providerMessageId: null };
  }

  const message = claimed.claim;
  const result = await sendSafely(adapter.send.bind(adapter), toOutbound(message));
  const done = ctx.clock.now();
  const outcome = outcomeOf(message, result, done, ctx.config.sendConfirmWindowMs);
  await db.transaction().execute(async (trx) => {
    const bulk = { db: trx, raw: ctx.database.sqlite };
    await messagesRepo.saveOutcomes(bulk, [outcome]);
    if (outcome.sent_at !== null) await messagesRepo.countMessagesOnContacts(bulk, new Map([[message.contact_id, { count: 1, at: done }]]));
    if (await applyPendingStatuses(ctx, trx, [{ workspace_id: message.workspace_id, provider: message.provider, provider_message_id: outcome.provider_message_id }])) enrolled = true;
    if (outcome.status !== 'queued' && (await reportEngagement(ctx, trx, message.workspace_id, [message.contact_id]))) enrolled = true;
  });
  if (enrolled) ctx.wake.sessions();
  await noteChannelHealth(ctx, registry, [message], [result]);
  if (outcome.status === 'queued') ctx.wake.messages();
  return { messageId: id, status: outcome.status, providerMessageId: outcome.provider_message_id };
}

export interface SendTextInput {
  phone: string;
  message: string;
  channel?: 'whatsapp' | 'sms';
  idempotencyKey?: string;
}

export interface SendTextOutcome {
  id: string;
  status: string;
  /** The provider's message id on WhatsApp (`wamid.…`); null on SMS or while queued. */
  whatsapp_message_id: string | null;
  provider_message_id: string | null;
  contact_id: string;
}

export const textMessageMaxLength = 4096;

/**
 * send-text-message: a free-form text to a phone, upserting the contact.
 *
 * On WhatsApp with real provider settings, the 24-hour customer service window is
 * checked first: a contact who has not written in 24 hours (or does not exist yet) is
 * refused with 422 `outside_service_window` and Meta's code 131047, and nothing is
 * stored or sent. The sandbox skips the check, so flows can be tried without a phone.
 */
export async function sendTextMessage(ctx: Context, workspaceId: string, input: SendTextInput): Promise<SendTextOutcome> {
  const channel = input.channel ?? 'whatsapp';
  if (channel !== 'whatsapp' && channel !== 'sms') throw invalid('channel', 'must be whatsapp or sms');
  if (typeof input.message !== 'string' || input.message.trim() === '') throw invalid('message', 'is required and may not be blank');
  if ([...input.message].length > textMessageMaxLength) throw invalid('message', `must be at most ${textMessageMaxLength} characters`);
  if (typeof input.phone !== 'string') throw invalid('phone', 'is required, e.g. +14155550123');
  const phone = normalizePhone(input.phone, ctx.config.defaultCountry);
  if (phone === null) throw invalid('phone', 'must be a valid phone number, in international form such as +14155550123');

  await ctx.channels.refresh?.();
  if (channel === 'whatsapp' && serviceWindowApplies(ctx, workspaceId)) {
    const existing = await contactsRepo.findContactByPhone(ctx.database.db, workspaceId, phone);
    if (!isInsideServiceWindow(existing?.whatsapp_last_inbound_at, ctx.clock.now()) && needsServiceWindow({ kind: 'text' })) {
      throw new AppError('outside_service_window', outsideWindowMessage, {
        extra: { provider_code: Number(outsideWindowCode), last_inbound_at: existing?.whatsapp_last_inbound_at ? new Date(existing.whatsapp_last_inbound_at).toISOString() : null },
      });
    }
  }
  const { contact } = await findOrCreateContactByPhone(ctx, workspaceId, phone, { source: 'api', optedIn: true });
  const sent = await queueDirectMessage(ctx, {
    workspaceId,
    contactId: contact.id,
    channel,
    content: { kind: 'text', text: input.message },
    marketing: false,
    idempotencyKey: input.idempotencyKey,
  });
  return {
    id: sent.messageId,
    status: sent.status,
    whatsapp_message_id: channel === 'whatsapp' && sent.providerMessageId && !sent.providerMessageId.startsWith('sandbox-') ? sent.providerMessageId : null,
    provider_message_id: sent.providerMessageId,
    contact_id: contact.id,
  };
}

/**
 * Whether the WhatsApp service window is enforced for the workspace: only with real
 * WhatsApp settings. The sandbox lets a workspace try flows without it. The registry
 * must have been refreshed.
 */
export function serviceWindowApplies(ctx: Pick<Context, 'channels'>, workspaceId: string): boolean {
  return ctx.channels.providerFor(workspaceId, 'whatsapp') !== 'sandbox';
}

function toOutbound(row: { id: string; workspace_id: string; channel: Channel; recipient?: string | null; content: string }): OutboundMessage {
  return { id: row.id, workspaceId: row.workspace_id, channel: row.channel, to: row.recipient ?? '', content: parseJson(row.content, { kind: 'text', text: '' }) };
}

async function sendSafely(send: (m: OutboundMessage) => Promise<SendResult>, message: OutboundMessage): Promise<SendResult> {
  try {
    return await send(message);
  } catch (error) {
    // Adapters return expected failures as values; a throw is a bug or an outage: retry it.
    return { ok: false, retryable: true, code: 'adapter_error', message: toError(error).message };
  }
}

/**
 * Inserts the message unless one with its dedupe key exists (a concurrent call with
 * the same idempotency key won): returns the stored row, ours or theirs.
 */
async function insertOnce(
  trx: Db,
  ctx: Context,
  row: NewMessageRow,
  afterInsert?: () => Promise<void>,
): Promise<MessageRow> {
  await messagesRepo.insertMessages({ db: trx, raw: ctx.database.sqlite }, [row]);
  const stored = row.dedupe_key
    ? await trx.selectFrom('messages').selectAll().where('dedupe_key', '=', row.dedupe_key).executeTakeFirstOrThrow()
    : await trx.selectFrom('messages').selectAll().where('id', '=', row.id).executeTakeFirstOrThrow();
  if (stored.id !== row.id) return stored;
  await afterInsert?.();
  return stored;
}

function outcomeView(row: MessageRow): DirectMessageOutcome {
  return { messageId: row.id, status: row.status, providerMessageId: row.provider_message_id };
}
