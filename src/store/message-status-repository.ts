import { sql, type Selectable } from 'kysely';
import type { Db, Dialect } from './database.js';
import type { MessageTable, PendingStatusTable } from './schema.js';

export type StatusTarget = Pick<
  Selectable<MessageTable>,
  | 'id' | 'workspace_id' | 'status' | 'sent_at' | 'delivered_at' | 'read_at' | 'failed_at' | 'error_code' | 'error_message'
  // What a status webhook event tells about the message (see engine/webhook-emitter.ts).
  | 'contact_id' | 'session_id' | 'definition_id' | 'broadcast_id' | 'channel' | 'provider' | 'provider_message_id'
>;

const statusTargetColumns = [
  'id', 'workspace_id', 'status', 'sent_at', 'delivered_at', 'read_at', 'failed_at', 'error_code', 'error_message',
  'contact_id', 'session_id', 'definition_id', 'broadcast_id', 'channel', 'provider', 'provider_message_id',
] as const;

/**
 * The outbound message a provider's status names, locked for the update on
 * PostgreSQL so two deliveries of the same status (Meta retries) apply one at a time.
 */
export async function findOutboundByProviderId(db: Db, dialect: Dialect, provider: string, providerMessageId: string): Promise<StatusTarget | undefined> {
  let query = db
    .selectFrom('messages')
    .select(statusTargetColumns)
    .where('provider', '=', provider)
    .where('provider_message_id', '=', providerMessageId)
    .where('direction', '=', 'outbound');
  if (dialect === 'postgres') query = query.forUpdate();
  return query.executeTakeFirst();
}

/**
 * A message by Nudge's own id, for a status callback that names it (Meta's
 * biz_opaque_callback_data, Twilio's status URL) but carries a provider id Nudge has
 * not recorded: the send's answer was lost, the provider accepted it anyway.
 */
export async function findUnconfirmedOutbound(db: Db, dialect: Dialect, workspaceId: string, provider: string, id: string): Promise<StatusTarget | undefined> {
  let query = db
    .selectFrom('messages')
    .select(statusTargetColumns)
    .where('id', '=', id)
    .where('workspace_id', '=', workspaceId)
    .where('provider', '=', provider)
    .where('direction', '=', 'outbound');
  if (dialect === 'postgres') query = query.forUpdate();
  return query.executeTakeFirst();
}

/**
 * Settles a message whose send was ambiguous: records the provider's id and takes it
 * off the retry queue, so it is never sent a second time.
 */
export async function confirmOutbound(db: Db, id: string, providerMessageId: string, now: number): Promise<void> {
  await db
    .updateTable('messages')
    .set({ provider_message_id: providerMessageId, status: 'sent', next_attempt_at: null, lease_until: null, error_code: null, error_message: null, updated_at: now })
    .where('id', '=', id)
    .execute();
}

export async function countConfirmedSend(db: Db, messageId: string, now: number): Promise<void> {
  const message = await db.selectFrom('messages').select('contact_id').where('id', '=', messageId).executeTakeFirst();
  if (!message) return;
  await db
    .updateTable('contacts')
    .set((eb) => ({ total_messages: eb('total_messages', '+', 1), last_message_at: now }))
    .where('id', '=', message.contact_id)
    .execute();
}

export async function updateMessageStatus(
  db: Db,
  id: string,
  patch: Partial<Pick<Selectable<MessageTable>, 'status' | 'sent_at' | 'delivered_at' | 'read_at' | 'failed_at' | 'error_code' | 'error_message' | 'updated_at'>>,
): Promise<void> {
  await db.updateTable('messages').set(patch).where('id', '=', id).execute();
}

export type PendingStatusRow = Selectable<PendingStatusTable>;

export async function insertPendingStatus(db: Db, row: PendingStatusRow): Promise<void> {
  await db.insertInto('pending_statuses').values(row).execute();
}

/**
 * Pending statuses for these provider message ids, oldest first, removed as they are
 * read. One statement deletes and returns them, so of two transactions taking the same
 * status (the dispatcher recording a send, the worker's sweep) only one gets it.
 */
export async function takePendingStatuses(db: Db, provider: string, providerMessageIds: string[]): Promise<PendingStatusRow[]> {
  if (providerMessageIds.length === 0) return [];
  const rows = await db.deleteFrom('pending_statuses').where('provider', '=', provider).where('provider_message_id', 'in', providerMessageIds).returningAll().execute();
  return oldestFirst(rows);
}

/**
 * Pending statuses, parked since `since`, whose message is recorded now: a status that
 * arrived while the send's result was being committed by another transaction, and
 * parked after that transaction had looked for pending statuses (PostgreSQL runs the
 * two at once). Removed as they are read, at most `limit`, oldest first.
 */
export async function takeSettleablePendingStatuses(db: Db, since: number, limit: number): Promise<PendingStatusRow[]> {
  const rows = await db
    .deleteFrom('pending_statuses')
    .where('id', 'in', (eb) =>
      eb
        .selectFrom('pending_statuses as p')
        .select('p.id')
        .where('p.created_at', '>=', since)
        .where((w) =>
          w.exists(
            w
              .selectFrom('messages as m')
              .select(sql.lit(1).as('one'))
              .whereRef('m.provider', '=', 'p.provider')
              .whereRef('m.provider_message_id', '=', 'p.provider_message_id')
              .where('m.direction', '=', 'outbound'),
          ),
        )
        .orderBy('p.created_at')
        .limit(limit),
    )
    .returningAll()
    .execute();
  return oldestFirst(rows);
}

function oldestFirst(rows: PendingStatusRow[]): PendingStatusRow[] {
  return rows.sort((a, b) => Number(a.occurred_at) - Number(b.occurred_at) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

export async function prunePendingStatuses(db: Db, before: number): Promise<void> {
  await db.deleteFrom('pending_statuses').where('created_at', '<', before).execute();
}
