import { sql, type Insertable, type Selectable } from 'kysely';
import type { Db, Dialect } from './database.js';
import { updateMany } from './batch.js';
import type { MessageTable } from './schema.js';

export type MessageRow = Selectable<MessageTable>;
export type NewMessageRow = Insertable<MessageTable>;

/**
 * Inserts messages; one whose dedupe key (session:node:visit) exists already is
 * skipped, so a step re-run after a crash never creates a second message.
 */
export async function insertMessages(db: Db, rows: NewMessageRow[]): Promise<void> {
  for (let i = 0; i < rows.length; i += 500) {
    await db.insertInto('messages').values(rows.slice(i, i + 500)).onConflict((oc) => oc.doNothing()).execute();
  }
}

/**
 * Claims messages whose next attempt is due and leases them: status `sending` and the
 * next attempt pushed to the lease's end, in the same statement. A worker killed
 * mid-send leaves the lease to expire and the message is claimed again.
 */
export async function claimDueMessages(db: Db, dialect: Dialect, now: number, limit: number, leaseMs: number): Promise<MessageRow[]> {
  const lock = dialect === 'postgres' ? sql` for update skip locked` : sql``;
  const due = await sql<MessageRow>`select * from messages where next_attempt_at is not null and next_attempt_at <= ${now} order by next_attempt_at limit ${limit}${lock}`.execute(db);
  const rows = due.rows;
  if (rows.length === 0) return rows;
  const until = now + leaseMs;
  await db
    .updateTable('messages')
    .set((eb) => ({ status: 'sending', lease_until: until, next_attempt_at: until, attempts: eb('attempts', '+', 1), updated_at: now }))
    .where('id', 'in', rows.map((r) => r.id))
    .execute();
  for (const row of rows) {
    row.attempts += 1;
    row.status = 'sending';
  }
  return rows;
}

export interface MessageOutcome {
  id: string;
  status: string;
  provider_message_id: string | null;
  error_code: string | null;
  error_message: string | null;
  next_attempt_at: number | null;
  lease_until: number | null;
  updated_at: number;
  sent_at: number | null;
  delivered_at: number | null;
  failed_at: number | null;
}

const outcomeColumns = [
  { name: 'status', kind: 'text' },
  { name: 'provider_message_id', kind: 'text' },
  { name: 'error_code', kind: 'text' },
  { name: 'error_message', kind: 'text' },
  { name: 'next_attempt_at', kind: 'bigint' },
  { name: 'lease_until', kind: 'bigint' },
  { name: 'updated_at', kind: 'bigint' },
  { name: 'sent_at', kind: 'bigint' },
  { name: 'delivered_at', kind: 'bigint' },
  { name: 'failed_at', kind: 'bigint' },
] as const;

export async function saveOutcomes(db: Db, outcomes: MessageOutcome[]): Promise<void> {
  await updateMany(db, 'messages', 'id', outcomeColumns, outcomes as unknown as Record<string, unknown>[]);
}

/** Cancels the unsent messages of stopped sessions. */
export async function cancelQueuedForSessions(db: Db, sessionIds: string[], now: number, reason: string): Promise<number> {
  if (sessionIds.length === 0) return 0;
  const result = await db
    .updateTable('messages')
    .set({ status: 'cancelled', next_attempt_at: null, lease_until: null, error_code: 'session_stopped', error_message: reason, updated_at: now })
    .where('session_id', 'in', sessionIds)
    .where('status', '=', 'queued')
    .executeTakeFirst();
  return Number(result.numUpdatedRows);
}

export interface MessageFilter {
  contactId?: string;
  sessionId?: string;
  definitionId?: string;
  channel?: string;
  direction?: string;
  status?: string;
  before?: string;
  limit: number;
}

export async function listMessages(db: Db, workspaceId: string, filter: MessageFilter): Promise<MessageRow[]> {
  let query = db.selectFrom('messages').selectAll().where('workspace_id', '=', workspaceId);
  if (filter.contactId) query = query.where('contact_id', '=', filter.contactId);
  if (filter.sessionId) query = query.where('session_id', '=', filter.sessionId);
  if (filter.definitionId) query = query.where('definition_id', '=', filter.definitionId);
  if (filter.channel) query = query.where('channel', '=', filter.channel as MessageRow['channel']);
  if (filter.direction) query = query.where('direction', '=', filter.direction as MessageRow['direction']);
  if (filter.status) query = query.where('status', '=', filter.status);
  if (filter.before) query = query.where('id', '<', filter.before);
  return query.orderBy('id', 'desc').limit(filter.limit).execute();
}

export async function findMessage(db: Db, workspaceId: string, id: string): Promise<MessageRow | undefined> {
  return db.selectFrom('messages').selectAll().where('workspace_id', '=', workspaceId).where('id', '=', id).executeTakeFirst();
}

export async function findMessagesByIds(db: Db, ids: string[]): Promise<MessageRow[]> {
  if (ids.length === 0) return [];
  return db.selectFrom('messages').selectAll().where('id', 'in', ids).execute();
}

export async function nextMessageDueAt(db: Db): Promise<number | null> {
  const result = await sql<{ w: number | string | null }>`select min(next_attempt_at) as w from messages where next_attempt_at is not null`.execute(db);
  const value = result.rows[0]?.w;
  return value === null || value === undefined ? null : Number(value);
}

/** Adds sent messages to each contact's counters: one statement per batch. */
export async function countMessagesOnContacts(db: Db, perContact: Map<string, { count: number; at: number }>): Promise<void> {
  const rows = [...perContact].map(([id, v]) => ({ id, count: v.count, at: v.at }));
  if (rows.length === 0) return;
  const values = sql.join(rows.map((r) => sql`(cast(${r.id} as text), cast(${r.count} as integer), cast(${r.at} as bigint))`));
  await sql`update contacts set total_messages = contacts.total_messages + v.column2, last_message_at = case when contacts.last_message_at is null or contacts.last_message_at < v.column3 then v.column3 else contacts.last_message_at end from (values ${values}) as v where contacts.id = v.column1`.execute(db);
}
