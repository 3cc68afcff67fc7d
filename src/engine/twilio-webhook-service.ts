import { createHash } from 'node:crypto';
import {
  parseFormParams,
  parseTwilioInbound,
  parseTwilioStatus,
  validateTwilioSignature,
  type TwilioParams,
} from '../channels/twilio-webhooks.js';
import { AppError, toError } from '../domain/errors.js';
import { newId } from '../domain/ids.js';
import { SecretBoxError } from '../domain/secret-box.js';
import * as statusRepo from '../store/message-status-repository.js';
import { insertWebhookEvent } from '../store/webhook-event-repository.js';
import type { Context } from './context.js';
import { receiveInbound } from './inbound-service.js';
import { findWorkspaceByProviderConfig, getProviderSettings } from './provider-settings-service.js';
import { applyProviderStatus } from './message-status.js';

/**
 * Twilio's webhooks for SMS: the inbound message webhook and the message status
 * callback. Each request is verified with X-Twilio-Signature (keyed with the auth
 * token of the workspace whose Twilio account sent it), logged in `webhook_events`,
 * then applied. A forged, unsigned or unattributable request is refused with 403 and
 * logged with the reason and the body's SHA-256, never its content.
 *
 * Redelivery is harmless: inbound messages dedupe on the MessageSid, and statuses only
 * ever move a message forward (see `statusChange`).
 */

const provider = 'twilio';

export type TwilioWebhookKind = 'inbound' | 'status';

export interface TwilioDelivery {
  /** The URL Twilio requested, as it signed it: NUDGE_PUBLIC_URL + path + query. */
  url: string;
  /** The form body exactly as received. */
  rawBody: string;
  signature: string | undefined;
  remoteAddress: string | null;
}

export interface TwilioWebhookOutcome {
  workspaceId: string;
  /** Inbound: the stored message; status: the outbound message updated (null when none changed). */
  messageId: string | null;
  duplicate: boolean;
  /** Inbound: the waiting flow session the reply was routed to. */
  sessionId: string | null;
}

function text(params: TwilioParams, key: string): string | undefined {
  const value = params[key];
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined || first.trim() === '' ? undefined : first.trim();
}

/**
 * The workspace a request belongs to. The number on our side (To for an inbound
 * message, From for a status) picks the workspace when several share one Twilio
 * account; its account SID must still match. Otherwise the account SID alone.
 */
async function findWorkspace(ctx: Context, accountSid: string, ourNumber: string | undefined): Promise<string | null> {
  if (ourNumber) {
    const byNumber = await findWorkspaceByProviderConfig(ctx, 'sms', 'from', ourNumber);
    if (byNumber) {
      const settings = await getProviderSettings(ctx, byNumber, 'sms').catch(() => null);
      if (settings?.config.account_sid === accountSid) return byNumber;
    }
  }
  return findWorkspaceByProviderConfig(ctx, 'sms', 'account_sid', accountSid);
}

/**
 * Verifies and applies one Twilio webhook. Throws AppError: 403 (refused and logged),
 * 422 for a signed request that lacks a required field, 503 when the stored auth token
 * cannot be read with the current NUDGE_SECRET_KEY (Twilio retries later).
 */
export async function receiveTwilioWebhook(ctx: Context, kind: TwilioWebhookKind, delivery: TwilioDelivery): Promise<TwilioWebhookOutcome> {
  const bodySha = createHash('sha256').update(delivery.rawBody, 'utf8').digest('hex');
  const record = (outcome: 'accepted' | 'rejected', workspaceId: string | null, reason: string | null) =>
    insertWebhookEvent(ctx.database.db, {
      id: newId(ctx.clock.now()),
      workspace_id: workspaceId,
      provider,
      outcome,
      reason: reason === null ? kind : `${kind}: ${reason}`,
      remote_address: delivery.remoteAddress,
      body_sha256: bodySha,
      created_at: ctx.clock.now(),
    });
  const refuse = async (workspaceId: string | null, reason: string, error: AppError): Promise<never> => {
    await record('rejected', workspaceId, reason);
    ctx.log.warn({ reason, workspace_id: workspaceId, remote: delivery.remoteAddress, kind }, 'Twilio webhook refused');
    throw error;
  };

  if (!delivery.signature) {
    return refuse(null, 'missing_signature', new AppError('forbidden', 'Missing X-Twilio-Signature header'));
  }
  const params = parseFormParams(delivery.rawBody);
  const accountSid = text(params, 'AccountSid');
  if (!accountSid) return refuse(null, 'missing_account_sid', new AppError('forbidden', 'The request names no AccountSid'));
  const workspaceId = await findWorkspace(ctx, accountSid, text(params, kind === 'inbound' ? 'To' : 'From'));
  if (!workspaceId) return refuse(null, 'unknown_account', new AppError('forbidden', `No workspace has SMS settings for Twilio account ${accountSid}`));

  let authToken: string | undefined;
  try {
    authToken = (await getProviderSettings(ctx, workspaceId, 'sms'))?.secrets.auth_token;
  } catch (error) {
    if (!(error instanceof SecretBoxError)) throw error;
    return refuse(workspaceId, 'secrets_unreadable', new AppError('unavailable', 'The Twilio auth token cannot be read with the current NUDGE_SECRET_KEY'));
  }
  if (!authToken || !validateTwilioSignature(authToken, delivery.url, params, delivery.signature, delivery.rawBody)) {
    return refuse(workspaceId, 'invalid_signature', new AppError('forbidden', 'X-Twilio-Signature does not match the request signed with the auth token'));
  }

  if (kind === 'inbound') {
    let message;
    try {
      message = parseTwilioInbound(params);
    } catch (error) {
      if (error instanceof AppError) await record('rejected', workspaceId, 'malformed_payload');
      throw error;
    }
    await record('accepted', workspaceId, null);
    // An MMS with no text is stored by its media links, so the flow still sees a reply.
    const body = message.body !== '' ? message.body : message.media.map((m) => m.url).join('\n');
    if (body === '') return { workspaceId, messageId: null, duplicate: false, sessionId: null };
    try {
      const result = await receiveInbound(ctx, { workspaceId, channel: 'sms', phone: message.from, text: body, provider, providerMessageId: message.messageSid });
      return { workspaceId, messageId: result.messageId, duplicate: result.duplicate, sessionId: result.sessionId };
    } catch (error) {
      // A sender Nudge cannot store (a short code, an alphanumeric id) must not make Twilio retry.
      if (!(error instanceof AppError) || error.status >= 500) throw error;
      ctx.log.warn({ err: toError(error), message_sid: message.messageSid }, 'Twilio inbound message skipped');
      return { workspaceId, messageId: null, duplicate: false, sessionId: null };
    }
  }

  let status;
  try {
    status = parseTwilioStatus(params);
  } catch (error) {
    if (error instanceof AppError) await record('rejected', workspaceId, 'malformed_payload');
    throw error;
  }
  await record('accepted', workspaceId, null);
  if (status.nudgeStatus === null) return { workspaceId, messageId: null, duplicate: false, sessionId: null };
  const nudgeStatus = status.nudgeStatus;
  const now = ctx.clock.now();
  // Unknown ids (the callback beat the dispatcher's commit of the sid) wait as pending statuses.
  const changed = await applyProviderStatus(ctx, {
    workspaceId,
    provider,
    providerMessageId: status.messageSid,
    status: nudgeStatus,
    timestamp: now,
    errorCode: status.errorCode,
    errorMessage: nudgeStatus === 'failed' ? `Twilio reported the message ${status.status}${status.errorCode ? ` (error ${status.errorCode})` : ''}` : null,
    nudgeMessageId: status.nudgeMessageId,
  });
  const updated = changed ? ((await statusRepo.findOutboundByProviderId(ctx.database.db, ctx.database.dialect, provider, status.messageSid))?.id ?? null) : null;
  return { workspaceId, messageId: updated, duplicate: false, sessionId: null };
}
