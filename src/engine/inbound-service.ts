import type { Channel } from '../domain/definition.js';
import { AppError, invalid } from '../domain/errors.js';
import { newId } from '../domain/ids.js';
import { parseJson, toJson } from '../domain/json.js';
import { normalizeEmail, normalizePhone } from '../domain/phone.js';
import * as contacts from '../store/engine-contact-repository.js';
import * as engagement from '../store/engagement-repository.js';
import * as messages from '../store/message-repository.js';
import * as sessions from '../store/session-repository.js';
import { consentSettingsOf, matchConsentKeyword } from '../domain/consent.js';
import type { Tx } from '../store/database.js';
import { markOptedIn } from '../store/consent-repository.js';
import { markOptedOut } from '../store/opt-out-repository.js';
import { applyContactChanges, type ContactChange } from './automation.js';
import type { Context } from './context.js';
import type { SessionState } from './interpreter.js';
import { consentData, emitWebhookEvent, messageReceivedData } from './webhook-emitter.js';

export interface InboundInput {
  workspaceId: string;
  channel: Channel;
  phone?: string;
  email?: string;
  text?: string | null;
  buttonId?: string | null;
  provider: string;
  providerMessageId?: string | null;
  receivedAt?: number;
}

export interface InboundOutcome {
  messageId: string;
  contactId: string;
  /** The waiting flow session the reply was routed to, if any. */
  sessionId: string | null;
  duplicate: boolean;
  /** Set when the message was a consent keyword that changed the contact's consent on the channel. */
  consent?: 'opted_out' | 'opted_in' | null;
}

/**
 * Every inbound message takes this path, from the sandbox and from real providers:
 * the contact is found (or created), the message stored, the channel's service window
 * renewed, and the reply handed to the contact's waiting flow session, all in one
 * transaction. A provider's redelivery of the same message id changes nothing.
 */
export async function receiveInbound(ctx: Context, input: InboundInput): Promise<InboundOutcome> {
  const now = input.receivedAt ?? ctx.clock.now();
  let address: string | null;
  if (input.channel === 'email') {
    address = input.email ? normalizeEmail(input.email) : null;
    if (!address) throw invalid('email', 'must be a valid email address');
  } else {
    address = input.phone ? normalizePhone(input.phone, ctx.config.defaultCountry) : null;
    if (!address) throw invalid('phone', 'must be a valid phone number in international format, e.g. +14155550123');
  }
  const text = input.text ?? null;
  const buttonId = input.buttonId ?? null;
  if ((text === null || text === '') && buttonId === null) throw new AppError('validation_failed', 'Either text or button_id is required', { errors: { text: ['text or button_id is required'] } });
  const dedupeKey = input.providerMessageId ? `in:${input.provider}:${input.providerMessageId}` : null;
  const { db, dialect } = ctx.database;
  // Which provider answers on this channel decides who confirms an opt-out (see applyConsent).
  await ctx.channels.refresh?.();
  const provider = ctx.channels.providerFor(input.workspaceId, input.channel);

  let enrolled = false;
  const outcome = await db.transaction().execute(async (trx): Promise<InboundOutcome> => {
    if (dedupeKey) {
      const seen = await trx.selectFrom('messages').select(['id', 'contact_id', 'session_id']).where('dedupe_key', '=', dedupeKey).executeTakeFirst();
      if (seen) return { messageId: seen.id, contactId: seen.contact_id, sessionId: seen.session_id, duplicate: true };
    }
    const base = { id: newId(now), workspace_id: input.workspaceId, source: `inbound:${input.channel}`, now, optedIn: false };
    const upserted = input.channel === 'email' ? await contacts.upsertContactByEmail(trx, { ...base, email: address }) : await contacts.upsertContactByPhone(trx, { ...base, phone: address });
    const contact = upserted.contact;
    const waiting = await sessions.findWaitingFlowSession(trx, dialect, input.workspaceId, contact.id);
    const messageId = newId(now);
    await messages.insertMessages({ db: trx, raw: ctx.database.sqlite }, [{
      id: messageId,
      workspace_id: input.workspaceId,
      contact_id: contact.id,
      session_id: waiting?.id ?? null,
      definition_id: waiting?.definition_id ?? null,
      node_id: waiting?.current_node ?? null,
      dedupe_key: dedupeKey,
      direction: 'inbound',
      channel: input.channel,
      provider: input.provider,
      recipient: null,
      kind: buttonId ? 'button' : 'text',
      content: toJson({ kind: buttonId ? 'button' : 'text', text, button_id: buttonId }),
      marketing: 0,
      status: 'received',
      provider_message_id: input.providerMessageId ?? null,
      error_code: null,
      error_message: null,
      attempts: 0,
      next_attempt_at: null,
      lease_until: null,
      on_failure: 'continue',
      created_at: now,
      updated_at: now,
      sent_at: null,
      delivered_at: now,
      read_at: null,
      failed_at: null,
    }]);
    await contacts.noteInbound(trx, contact.id, input.channel, now);
    const from = contact;
    await emitWebhookEvent(ctx, trx, input.workspaceId, 'message.received', () =>
      messageReceivedData(
        { id: messageId, session_id: waiting?.id ?? null, channel: input.channel, provider: input.provider, provider_message_id: input.providerMessageId ?? null, kind: buttonId ? 'button' : 'text', text, button_id: buttonId, received_at: now },
        from,
      ),
    );
    const consent = await applyConsent(ctx, trx, { workspaceId: input.workspaceId, channel: input.channel, contact, text, buttonId, messageId, provider, now });
    let routed: string | null = null;
    // A reply answers the contact's latest message of a session on this channel (A/B
    // results count it). An opt-out or a re-subscription is not an answer.
    if (consent.route) await creditReply(trx, contact.id, input.channel, now);
    // An opt-out is never an answer to a flow's question; a re-subscription is not either.
    if (waiting && consent.route) {
      const state = parseJson<SessionState>(waiting.state, { visits: {} });
      if (state.wait && state.wait.node === waiting.current_node) {
        state.wait.reply = { message_id: messageId, text, button_id: buttonId, at: now };
        await sessions.updateSession(trx, waiting.id, { state: toJson(state), wake_at: now, updated_at: now });
        routed = waiting.id;
      }
    }
    // A contact who writes first is a new contact like any other (contact_added), and a
    // reply counts for segments on engagement.
    const changes: ContactChange[] = [{ contactId: contact.id, engagement: true, ...(upserted.created ? { created: true } : {}) }];
    const automation = await applyContactChanges(ctx, trx, input.workspaceId, changes, `inbound:${input.channel}`);
    enrolled = automation.enrollments.some((e) => e.status === 'enrolled');
    return { messageId, contactId: contact.id, sessionId: routed, duplicate: false, consent: consent.changed };
  });
  if (outcome.sessionId || enrolled) ctx.wake.sessions();
  if (outcome.consent) ctx.wake.messages();
  return outcome;
}

/**
 * How far back a reply is credited: to the latest outbound message of a session on the
 * same channel sent within the last 7 days, and only if that message has no reply yet
 * (a second reply changes nothing). Older messages are not answered by a reply that
 * arrives weeks later; messages outside sessions (direct sends, consent confirmations)
 * are not part of any sequence's results.
 */
export const replyWindowMs = 7 * 86_400_000;

async function creditReply(trx: Tx, contactId: string, channel: Channel, now: number): Promise<void> {
  const latest = await engagement.latestSessionMessage(trx, contactId, channel, now - replyWindowMs);
  if (latest && latest.replied_at === null) await engagement.markReplied(trx, latest.id, now);
}

/** Keywords Twilio's Advanced Opt-Out handles itself on SMS, replying with its own confirmation. */
const twilioStandardKeywords = new Set(['STOP', 'STOPALL', 'UNSUBSCRIBE', 'CANCEL', 'END', 'QUIT', 'START', 'UNSTOP', 'YES']);

/**
 * Consent keywords (STOP, START… or the workspace's own lists): an opt-out sets the
 * channel's `…_opted_out_at` and `opted_out_at`; an opt-in clears the channel's and,
 * when no other channel stays opted out, `opted_out_at`. Both in the inbound's
 * transaction. Each change is confirmed once on the same channel: a repeated STOP
 * changes nothing and sends nothing. On SMS through Twilio the standard keywords are
 * confirmed by Twilio itself (Advanced Opt-Out), and Twilio would refuse ours (21610).
 */
async function applyConsent(
  ctx: Context,
  trx: Tx,
  input: { workspaceId: string; channel: Channel; contact: contacts.EngineContactRow; text: string | null; buttonId: string | null; messageId: string; provider: string; now: number },
): Promise<{ changed: 'opted_out' | 'opted_in' | null; route: boolean }> {
  if (input.buttonId !== null) return { changed: null, route: true };
  const workspace = await trx.selectFrom('workspaces').select('settings').where('id', '=', input.workspaceId).executeTakeFirst();
  const settings = consentSettingsOf(parseJson<Record<string, unknown>>(workspace?.settings, {}));
  const keyword = matchConsentKeyword(input.text, settings);
  if (!keyword) return { changed: null, route: true };
  const { contact, channel, now } = input;
  // Conditional updates: of two concurrent STOPs exactly one changes the row and is confirmed.
  let changed: 'opted_out' | 'opted_in' | null = null;
  if (keyword.kind === 'opt_out') {
    if (await markOptedOut(trx, input.workspaceId, contact.id, channel, now)) changed = 'opted_out';
  } else if (await markOptedIn(trx, input.workspaceId, contact.id, channel, now)) {
    changed = 'opted_in';
  }
  if (changed) await emitWebhookEvent(ctx, trx, input.workspaceId, changed === 'opted_out' ? 'contact.opted_out' : 'contact.opted_in', consentData(contact, channel, 'keyword', keyword.keyword));
  const providerConfirms = channel === 'sms' && input.provider === 'twilio' && twilioStandardKeywords.has(keyword.keyword);
  const recipient = channel === 'email' ? contact.email : contact.phone;
  if (changed && !providerConfirms && recipient) {
    const text = changed === 'opted_out' ? settings.opt_out_confirmation : settings.opt_in_confirmation;
    await messages.insertMessages({ db: trx, raw: ctx.database.sqlite }, [
      messages.queuedOutboundRow({
        id: newId(now),
        workspace_id: input.workspaceId,
        contact_id: contact.id,
        // One confirmation per inbound keyword message, however often the inbound is redelivered.
        dedupe_key: `consent:${input.messageId}`,
        channel,
        provider: input.provider,
        recipient,
        kind: channel === 'email' ? 'email' : 'text',
        content: toJson(channel === 'email' ? { kind: 'email', subject: text, html: `<p>${escapeHtml(text)}</p>`, text } : { kind: 'text', text }),
        now,
      }),
    ]);
  }
  // A STOP never answers a flow; a START/YES that re-subscribed is consumed too, any other YES is a reply.
  return { changed, route: keyword.kind === 'opt_in' && changed === null };
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}
