import { buildSearchText } from '../domain/contact.js';
import type { Channel } from '../domain/definition.js';
import { AppError, invalid } from '../domain/errors.js';
import { newId } from '../domain/ids.js';
import { parseJson, toJson } from '../domain/json.js';
import { normalizeEmail, normalizePhone } from '../domain/phone.js';
import * as contacts from '../store/engine-contact-repository.js';
import * as messages from '../store/message-repository.js';
import * as sessions from '../store/session-repository.js';
import type { Context } from './context.js';
import type { SessionState } from './interpreter.js';

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

  const outcome = await db.transaction().execute(async (trx) => {
    if (dedupeKey) {
      const seen = await trx.selectFrom('messages').select(['id', 'contact_id', 'session_id']).where('dedupe_key', '=', dedupeKey).executeTakeFirst();
      if (seen) return { messageId: seen.id, contactId: seen.contact_id, sessionId: seen.session_id, duplicate: true };
    }
    let contact: contacts.EngineContactRow | undefined;
    if (input.channel === 'email') {
      contact = await contacts.findContactByEmail(trx, input.workspaceId, address);
      if (!contact) {
        const id = newId(now);
        await trx.insertInto('contacts').values({
          id, workspace_id: input.workspaceId, phone: null, email: address, name: null, first_name: null, last_name: null, metadata: '{}',
          timezone: null, language: null, source: `inbound:${input.channel}`, search_text: buildSearchText({ name: null, first_name: null, last_name: null, phone: null, email: address }), opted_in_at: null, opted_out_at: null,
          whatsapp_opted_out_at: null, sms_opted_out_at: null, email_opted_out_at: null, whatsapp_last_inbound_at: null,
          sms_last_inbound_at: null, last_message_at: null, total_messages: 0, created_at: now, updated_at: now,
        }).execute();
        contact = (await contacts.findContactById(trx, input.workspaceId, id))!;
      }
    } else {
      contact = (await contacts.upsertContactByPhone(trx, { id: newId(now), workspace_id: input.workspaceId, phone: address, source: `inbound:${input.channel}`, now, optedIn: false })).contact;
    }
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
    let routed: string | null = null;
    if (waiting) {
      const state = parseJson<SessionState>(waiting.state, { visits: {} });
      if (state.wait && state.wait.node === waiting.current_node) {
        state.wait.reply = { message_id: messageId, text, button_id: buttonId, at: now };
        await sessions.updateSession(trx, waiting.id, { state: toJson(state), wake_at: now, updated_at: now });
        routed = waiting.id;
      }
    }
    return { messageId, contactId: contact.id, sessionId: routed, duplicate: false };
  });
  if (outcome.sessionId) ctx.wake.sessions();
  return outcome;
}
