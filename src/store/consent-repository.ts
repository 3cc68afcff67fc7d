import { sql } from 'kysely';
import type { Db } from './database.js';

const columns = { whatsapp: 'whatsapp_opted_out_at', sms: 'sms_opted_out_at', email: 'email_opted_out_at' } as const;
type ConsentChannel = keyof typeof columns;

/**
 * Opts a contact back into a channel: clears the channel's opt-out and, when no other
 * channel stays opted out, `opted_out_at`. Conditional on the channel being opted out,
 * so of two concurrent START messages exactly one returns true (and is confirmed).
 */
export async function markOptedIn(db: Db, workspaceId: string, contactId: string, channel: ConsentChannel, now: number): Promise<boolean> {
  const column = columns[channel];
  const others = (Object.keys(columns) as ConsentChannel[]).filter((c) => c !== channel).map((c) => sql.ref(columns[c]));
  const result = await db
    .updateTable('contacts')
    .set({
      [column]: null,
      opted_out_at: sql<number | null>`case when ${sql.join(others.map((o) => sql`${o} is null`), sql` and `)} then null else opted_out_at end`,
      updated_at: now,
    })
    .where('workspace_id', '=', workspaceId)
    .where('id', '=', contactId)
    .where(column, 'is not', null)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}
