import type { Selectable } from 'kysely';
import type { Db, Dialect } from './database.js';
import type { MessageTable } from './schema.js';

export type StatusTarget = Pick<Selectable<MessageTable>, 'id' | 'workspace_id' | 'status' | 'sent_at' | 'delivered_at' | 'read_at' | 'failed_at' | 'error_code' | 'error_message'>;

/**
 * The outbound message a provider's status names, locked for the update on
 * PostgreSQL so two deliveries of the same status (Meta retries) apply one at a time.
 */
export async function findOutboundByProviderId(db: Db, dialect: Dialect, provider: string, providerMessageId: string): Promise<StatusTarget | undefined> {
  let query = db
    .selectFrom('messages')
    .select(['id', 'workspace_id', 'status', 'sent_at', 'delivered_at', 'read_at', 'failed_at', 'error_code', 'error_message'])
    .where('provider', '=', provider)
    .where('provider_message_id', '=', providerMessageId)
    .where('direction', '=', 'outbound');
  if (dialect === 'postgres') query = query.forUpdate();
  return query.executeTakeFirst();
}

export async function updateMessageStatus(
  db: Db,
  id: string,
  patch: Partial<Pick<Selectable<MessageTable>, 'status' | 'sent_at' | 'delivered_at' | 'read_at' | 'failed_at' | 'error_code' | 'error_message' | 'updated_at'>>,
): Promise<void> {
  await db.updateTable('messages').set(patch).where('id', '=', id).execute();
}
