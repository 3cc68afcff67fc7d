import { sql } from 'kysely';
import type { Db } from './database.js';

const columns = { whatsapp: 'whatsapp_opted_out_at', sms: 'sms_opted_out_at', email: 'email_opted_out_at' } as const;

/**
 * Marks a contact as opted out of a channel (and `opted_out_at`, the first opt-out of
 * any kind, if not set yet). Idempotent: an earlier opt-out keeps its time. Returns
 * whether the channel's opt-out was newly set (false when it already was, or the
 * contact does not exist in the workspace).
 */
export async function markOptedOut(db: Db, workspaceId: string, contactId: string, channel: keyof typeof columns, now: number): Promise<boolean> {
  const column = columns[channel];
  const result = await db
    .updateTable('contacts')
    .set({ [column]: now, opted_out_at: sql<number>`coalesce(opted_out_at, ${now})`, updated_at: now })
    .where('workspace_id', '=', workspaceId)
    .where('id', '=', contactId)
    .where(column, 'is', null)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}
