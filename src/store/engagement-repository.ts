import { sql } from 'kysely';
import type { Db } from './database.js';

/**
 * Engagement recorded on outbound messages after they were sent: tracked link clicks
 * (every click in link_clicks, the first on the message as clicked_at) and replies
 * (replied_at on the message a contact's inbound message answers).
 */

export async function findMessageWorkspace(db: Db, messageId: string): Promise<{ id: string; workspace_id: string } | undefined> {
  return db.selectFrom('messages').select(['id', 'workspace_id']).where('id', '=', messageId).where('direction', '=', 'outbound').executeTakeFirst();
}

export async function insertLinkClick(db: Db, row: { id: string; workspace_id: string; message_id: string; url: string; clicked_at: number }): Promise<void> {
  await db.insertInto('link_clicks').values(row).execute();
}

/** Sets clicked_at on the first click only: later clicks are in link_clicks. */
export async function markClicked(db: Db, messageId: string, at: number): Promise<boolean> {
  const result = await db.updateTable('messages').set({ clicked_at: at }).where('id', '=', messageId).where('clicked_at', 'is', null).executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

export async function listLinkClicks(db: Db, workspaceId: string, messageId: string): Promise<Array<{ url: string; clicked_at: number }>> {
  return db.selectFrom('link_clicks').select(['url', 'clicked_at']).where('workspace_id', '=', workspaceId).where('message_id', '=', messageId).orderBy('clicked_at').execute();
}

/**
 * The contact's latest outbound message of a session on `channel` sent since `since`,
 * read newest first from the partial index messages_contact_outbound (whose condition
 * is repeated literally, so SQLite can use it).
 */
export async function latestSessionMessage(db: Db, contactId: string, channel: string, since: number): Promise<{ id: string; replied_at: number | null } | undefined> {
  return db
    .selectFrom('messages')
    .select(['id', 'replied_at'])
    .where('contact_id', '=', contactId)
    .where('channel', '=', channel as 'email')
    .where(sql<boolean>`direction = 'outbound' and session_id is not null`)
    .where('sent_at', '>=', since)
    .orderBy('sent_at', 'desc')
    .limit(1)
    .executeTakeFirst();
}

export async function markReplied(db: Db, messageId: string, at: number): Promise<boolean> {
  const result = await db.updateTable('messages').set({ replied_at: at }).where('id', '=', messageId).where('replied_at', 'is', null).executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}
