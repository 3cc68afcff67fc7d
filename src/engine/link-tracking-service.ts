import { readTrackingToken, trackEmailContent } from '../domain/link-tracking.js';
import { newId } from '../domain/ids.js';
import * as engagement from '../store/engagement-repository.js';
import type { Context } from './context.js';

/**
 * Click tracking of email links (NUDGE_CLICK_TRACKING, on by default). Links are
 * rewritten when a message is stored, under its own id, so each click names the
 * message, its session and so its side of an A/B test. The redirect is public: the
 * signature is the authorisation, and only a URL Nudge signed is ever redirected to.
 */

/** The content to store and send for a new outbound message: its email links tracked when tracking is on. */
export function withTrackedLinks<T extends object>(ctx: Context, content: T, messageId: string): T {
  if (!ctx.config.clickTracking) return content;
  return trackEmailContent(content, messageId, ctx.config.publicUrl, ctx.secretKey);
}

/**
 * Follows a tracked link: the original URL, or null for a token Nudge did not sign
 * (the caller answers 404). `record: false` (HEAD requests, which link checkers send)
 * only resolves it. A click on a message that no longer exists still redirects: the
 * URL was signed by us, so it is safe to follow.
 */
export async function followTrackedLink(ctx: Context, token: string, options: { record: boolean }): Promise<string | null> {
  const read = readTrackingToken(token, ctx.secretKey);
  if (read === null) return null;
  if (!options.record) return read.url;
  const db = ctx.database.db;
  const now = ctx.clock.now();
  await db.transaction().execute(async (trx) => {
    const message = await engagement.findMessageWorkspace(trx, read.messageId);
    if (!message) return;
    await engagement.insertLinkClick(trx, { id: newId(now), workspace_id: message.workspace_id, message_id: message.id, url: read.url, clicked_at: now });
    await engagement.markClicked(trx, message.id, now);
  });
  return read.url;
}
