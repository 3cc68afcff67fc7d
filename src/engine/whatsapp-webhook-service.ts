import { createHash } from 'node:crypto';
import { parseWebhook, sameSecret, verifyHandshake, verifySignature, webhookAccounts, type StatusEvent } from '../channels/whatsapp-webhooks.js';
import { AppError, toError } from '../domain/errors.js';
import { newId } from '../domain/ids.js';
import { SecretBoxError } from '../domain/secret-box.js';
import { listProviderSettingsByChannel } from '../store/provider-settings-repository.js';
import { insertWebhookEvent } from '../store/webhook-event-repository.js';
import type { Context } from './context.js';
import { receiveInbound } from './inbound-service.js';
import { findWorkspaceByProviderConfig, getProviderSettings, openSecrets } from './provider-settings-service.js';
import { applyProviderStatus } from './message-status.js';
import { applyTemplateStatusEvent } from './template-service.js';

/**
 * Meta's webhooks for WhatsApp: the subscription handshake, and each signed POST
 * verified, logged in `webhook_events`, and applied (inbound messages, delivery
 * statuses, template reviews).
 *
 * Everything is applied before the answer: a crash or a database error answers 500
 * and Meta delivers the payload again, which changes nothing that was already
 * applied (inbound messages dedupe on Meta's id, statuses never move backwards).
 */

const provider = 'whatsapp-cloud';

/**
 * The challenge to echo when `hub.verify_token` matches the verify token of any
 * workspace's WhatsApp settings (one Meta app may serve several workspaces), else null.
 */
export async function answerHandshake(ctx: Context, query: Record<string, unknown>): Promise<string | null> {
  const token = query['hub.verify_token'];
  if (typeof token !== 'string' || token === '') return null;
  for (const row of await listProviderSettingsByChannel(ctx.database.db, 'whatsapp')) {
    let verifyToken: string | undefined;
    try {
      verifyToken = openSecrets(ctx.secretKey, row).verify_token;
    } catch (error) {
      if (!(error instanceof SecretBoxError)) throw error;
      continue;
    }
    if (verifyToken === undefined || !sameSecret(token, verifyToken)) continue;
    const result = verifyHandshake(query, verifyToken);
    if (result.ok) return result.challenge;
  }
  return null;
}

export interface WebhookDelivery {
  rawBody: Buffer | undefined;
  signature: string | undefined;
  body: unknown;
  remoteAddress: string | null;
}

export interface WebhookOutcome {
  workspaceIds: string[];
  inbound: number;
  duplicates: number;
  statuses: number;
  templateUpdates: number;
}

/**
 * Verifies and applies one POST. Refusals are recorded and thrown as AppErrors:
 * 401 without a signature or with one no workspace's app secret produces, 403 when
 * the payload names no phone number (or account) configured in Nudge.
 */
export async function receiveWhatsAppWebhook(ctx: Context, delivery: WebhookDelivery): Promise<WebhookOutcome> {
  const raw = delivery.rawBody ?? Buffer.alloc(0);
  const bodySha = createHash('sha256').update(raw).digest('hex');
  const record = (outcome: 'accepted' | 'rejected', workspaceId: string | null, reason: string | null) =>
    insertWebhookEvent(ctx.database.db, { id: newId(ctx.clock.now()), workspace_id: workspaceId, provider, outcome, reason, remote_address: delivery.remoteAddress, body_sha256: bodySha, created_at: ctx.clock.now() });
  const refuse = async (workspaceId: string | null, reason: string, error: AppError): Promise<never> => {
    await record('rejected', workspaceId, reason);
    ctx.log.warn({ reason, workspace_id: workspaceId, remote: delivery.remoteAddress }, 'WhatsApp webhook refused');
    throw error;
  };

  if (raw.length === 0 || delivery.body === null || typeof delivery.body !== 'object') {
    return refuse(null, 'malformed_payload', new AppError('bad_request', 'The webhook body must be a JSON object'));
  }
  if (typeof delivery.signature !== 'string' || delivery.signature === '') {
    return refuse(null, 'missing_signature', new AppError('unauthorized', 'Missing X-Hub-Signature-256 header'));
  }

  // Whose secret signs it: the workspaces owning the phone numbers (or, for template
  // reviews, which carry no phone number, the business accounts) the payload names.
  const accounts = webhookAccounts(delivery.body);
  const byPhone = new Map<string, string>();
  const byAccount = new Map<string, string>();
  for (const id of accounts.phoneNumberIds) {
    const ws = await findWorkspaceByProviderConfig(ctx, 'whatsapp', 'phone_number_id', id);
    if (ws) byPhone.set(id, ws);
  }
  for (const id of accounts.businessAccountIds) {
    const ws = await findWorkspaceByProviderConfig(ctx, 'whatsapp', 'business_account_id', id);
    if (ws) byAccount.set(id, ws);
  }
  const candidates = [...new Set([...byPhone.values(), ...byAccount.values()])];
  if (candidates.length === 0) {
    const named = accounts.phoneNumberIds[0] ?? accounts.businessAccountIds[0];
    return refuse(null, 'unknown_phone_number_id', new AppError('forbidden', named ? `No workspace has WhatsApp settings for phone_number_id ${named}` : 'The payload names no WhatsApp phone number'));
  }

  const verified = new Set<string>();
  let unreadable: string | null = null;
  for (const workspaceId of candidates) {
    let appSecret: string | undefined;
    try {
      appSecret = (await getProviderSettings(ctx, workspaceId, 'whatsapp'))?.secrets.app_secret;
    } catch (error) {
      if (!(error instanceof SecretBoxError)) throw error;
      unreadable = workspaceId;
      continue;
    }
    if (appSecret && verifySignature(raw, delivery.signature, appSecret)) verified.add(workspaceId);
  }
  if (verified.size === 0) {
    // Secrets sealed with another NUDGE_SECRET_KEY: a 503 makes Meta retry once the key is restored.
    if (unreadable) return refuse(unreadable, 'secrets_unreadable', new AppError('unavailable', 'The WhatsApp app secret cannot be read with the current NUDGE_SECRET_KEY'));
    return refuse(candidates[0]!, 'invalid_signature', new AppError('unauthorized', 'X-Hub-Signature-256 does not match the body signed with the app secret'));
  }
  for (const workspaceId of verified) await record('accepted', workspaceId, null);

  const parsed = parseWebhook(delivery.body);
  const outcome: WebhookOutcome = { workspaceIds: [...verified], inbound: 0, duplicates: 0, statuses: 0, templateUpdates: 0 };
  const workspaceOf = (phoneNumberId: string) => {
    const ws = byPhone.get(phoneNumberId);
    return ws && verified.has(ws) ? ws : null;
  };

  for (const event of parsed.inbound) {
    const workspaceId = workspaceOf(event.phoneNumberId);
    if (!workspaceId) continue;
    try {
      const result = await receiveInbound(ctx, {
        workspaceId,
        channel: 'whatsapp',
        phone: event.from,
        text: event.text,
        buttonId: event.buttonId,
        provider,
        providerMessageId: event.wamid,
      });
      if (result.duplicate) outcome.duplicates += 1;
      else outcome.inbound += 1;
    } catch (error) {
      // A message Nudge cannot store (an unreadable number) must not make Meta resend the rest.
      if (!(error instanceof AppError) || error.status >= 500) throw error;
      ctx.log.warn({ err: toError(error), wamid: event.wamid }, 'WhatsApp inbound message skipped');
    }
  }
  for (const status of parsed.statuses) {
    const workspaceId = workspaceOf(status.phoneNumberId);
    if (workspaceId && (await applyMessageStatus(ctx, workspaceId, status))) outcome.statuses += 1;
  }
  for (const update of parsed.templateUpdates) {
    const workspaceId = byAccount.get(update.businessAccountId);
    if (workspaceId && verified.has(workspaceId) && (await applyTemplateStatusEvent(ctx, workspaceId, update))) outcome.templateUpdates += 1;
  }
  return outcome;
}

/** Applies a Meta delivery status to its message (or keeps it until the send result is recorded). */
export async function applyMessageStatus(ctx: Context, workspaceId: string, event: StatusEvent): Promise<boolean> {
  return applyProviderStatus(ctx, { workspaceId, provider, providerMessageId: event.wamid, status: event.status, timestamp: event.timestamp, errorCode: event.errorCode, errorMessage: event.errorMessage, nudgeMessageId: event.nudgeMessageId });
}
