import type { Channel } from '../domain/definition.js';
import { AppError } from '../domain/errors.js';
import { verifyUnsubscribeToken, type UnsubscribeSubject } from '../domain/unsubscribe-token.js';
import { findContactById } from '../store/engine-contact-repository.js';
import { markOptedOut } from '../store/opt-out-repository.js';
import { findWorkspace } from '../store/workspace-repository.js';
import type { Context } from './context.js';
import { consentData, emitWebhookEvent } from './webhook-emitter.js';

/**
 * The signed unsubscribe links in emails (List-Unsubscribe and the footer link). Looking
 * a link up never changes anything (mail scanners and link previews follow links);
 * only `unsubscribe` does, and it is idempotent.
 */

export interface UnsubscribeView {
  subject: UnsubscribeSubject;
  workspaceName: string;
  /** The address masked for display (`a•••@example.com`), or null when the contact is gone. */
  maskedAddress: string | null;
  /** When the contact opted out of this channel, or null. */
  optedOutAt: number | null;
}

function verify(ctx: Context, token: string): UnsubscribeSubject {
  const subject = verifyUnsubscribeToken(ctx.secretKey, token);
  if (!subject) throw new AppError('bad_request', 'This unsubscribe link is not valid: it may have been cut short or changed', { errors: { token: ['token is not a valid unsubscribe token'] } });
  return subject;
}

function mask(address: string): string {
  const at = address.lastIndexOf('@');
  if (at <= 0) return `${address.slice(0, 2)}•••`;
  return `${address[0]}•••${address.slice(at)}`;
}

function optedOutAt(row: { whatsapp_opted_out_at: number | null; sms_opted_out_at: number | null; email_opted_out_at: number | null }, channel: Channel): number | null {
  const value = channel === 'whatsapp' ? row.whatsapp_opted_out_at : channel === 'sms' ? row.sms_opted_out_at : row.email_opted_out_at;
  return value === null ? null : Number(value);
}

/** What the link is for, without changing anything. Throws 400 for a bad token. */
export async function describeUnsubscribe(ctx: Context, token: string): Promise<UnsubscribeView> {
  const subject = verify(ctx, token);
  const db = ctx.database.db;
  const workspace = await findWorkspace(db, subject.workspaceId);
  const contact = await findContactById(db, subject.workspaceId, subject.contactId);
  const address = contact ? (subject.channel === 'email' ? contact.email : contact.phone) : null;
  return {
    subject,
    workspaceName: workspace?.name ?? '',
    maskedAddress: address ? mask(address) : null,
    optedOutAt: contact ? optedOutAt(contact, subject.channel) : null,
  };
}

/**
 * Opts the contact out of the link's channel (marketing email for email links): sets
 * `email_opted_out_at` and, if unset, `opted_out_at`. Repeating it changes nothing.
 * A contact deleted since the email was sent is not an error: there is nothing left to
 * send to. Throws 400 for a bad token.
 */
export async function unsubscribe(ctx: Context, token: string): Promise<UnsubscribeView & { changed: boolean }> {
  const subject = verify(ctx, token);
  const changed = await ctx.database.db.transaction().execute(async (trx) => {
    if (!(await markOptedOut(trx, subject.workspaceId, subject.contactId, subject.channel, ctx.clock.now()))) return false;
    const contact = await findContactById(trx, subject.workspaceId, subject.contactId);
    if (contact) await emitWebhookEvent(ctx, trx, subject.workspaceId, 'contact.opted_out', consentData(contact, subject.channel, 'unsubscribe_link'));
    return true;
  });
  if (changed) ctx.log.info({ workspace_id: subject.workspaceId, contact_id: subject.contactId, channel: subject.channel }, 'contact unsubscribed by link');
  return { ...(await describeUnsubscribe(ctx, token)), changed };
}
