import { sql, type Insertable, type Selectable } from 'kysely';
import type { Db, Dialect } from './database.js';
import { insertRows, preparedQuery, runEach, updateRows, type BulkTarget } from './batch.js';
import type { MessageTable } from './schema.js';

export type MessageRow = Selectable<MessageTable>;
export type NewMessageRow = Insertable<MessageTable>;

/**
 * Inserts messages; one whose dedupe key (session:node:visit) exists already is
 * skipped, so a step re-run after a crash never creates a second message.
 */
export async function insertMessages(target: BulkTarget, rows: NewMessageRow[]): Promise<void> {
  await insertRows(target, 'messages', rows as unknown as Record<string, unknown>[], true);
}

/**
 * Claims messages whose next attempt is due and leases them: status `sending`, in the
 * same statement. A worker killed mid-send leaves the lease to expire; the message is
 * claimed again `confirmMs` after that (`next_attempt_at`), not at once: the provider
 * may have taken the send before the worker died, and its status callback, which names
 * the message, settles it meanwhile (see engine/message-status.ts). The sandbox sends
 * nothing anywhere, so its messages are free again as soon as the lease ends.
 */
export async function claimDueMessages(db: Db, raw: BulkTarget['raw'], dialect: Dialect, now: number, limit: number, leaseMs: number, confirmMs = 0): Promise<MessageRow[]> {
  const lock = dialect === 'postgres' ? sql` for update skip locked` : sql``;
  const due = await sql<MessageRow>`select * from messages where next_attempt_at is not null and next_attempt_at <= ${now} order by next_attempt_at limit ${limit}${lock}`.execute(db);
  const rows = due.rows;
  if (rows.length === 0) return rows;
  const until = now + leaseMs;
  const retryAt = (provider: string) => (provider === 'sandbox' ? until : until + confirmMs);
  if (raw) {
    runEach(raw, 'update messages set status = ?, lease_until = ?, next_attempt_at = ?, attempts = attempts + 1, updated_at = ? where id = ?', rows.map((r) => ['sending', until, retryAt(r.provider), now, r.id]));
  } else {
    await sql`update messages set status = 'sending', lease_until = ${until}, next_attempt_at = case when provider = 'sandbox' then cast(${until} as bigint) else cast(${until + confirmMs} as bigint) end, attempts = attempts + 1, updated_at = ${now} where id = any(cast(${rows.map((r) => r.id)} as text[]))`.execute(db);
  }
  for (const row of rows) {
    row.attempts += 1;
    row.status = 'sending';
    row.lease_until = until;
    row.next_attempt_at = retryAt(row.provider);
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
  /** SMS: how many segments the provider billed, and their encoding (GSM-7 or UCS-2). */
  segments: number | null;
  encoding: string | null;
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
  { name: 'segments', kind: 'integer' },
  { name: 'encoding', kind: 'text' },
] as const;

/**
 * Records send results. Only messages still `sending` take theirs: a provider's status
 * callback that named the message (see `applyProviderStatus`) may have settled it while
 * the send was in flight, and a timed-out result must not put it back on the queue.
 */
export async function saveOutcomes(target: BulkTarget, outcomes: MessageOutcome[]): Promise<void> {
  await updateRows(target, 'messages', 'id', outcomeColumns, outcomes as unknown as Record<string, unknown>[], { column: 'status', equals: 'sending' });
}

/** Cancels the unsent messages of stopped sessions. */
export async function cancelQueuedForSessions(db: Db, sessionIds: string[], now: number, reason: string, raw: BulkTarget['raw'] = null): Promise<number> {
  if (sessionIds.length === 0) return 0;
  if (raw) {
    // SQLite, inside the caller's transaction (rawIn): prepared once, the ids as one JSON array.
    return preparedQuery(
      raw,
      "update messages set status = 'cancelled', next_attempt_at = null, lease_until = null, error_code = 'session_stopped', error_message = ?, updated_at = ? where session_id in (select value from json_each(?)) and status = 'queued'",
    ).run(reason, now, JSON.stringify(sessionIds)).changes;
  }
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
  broadcastId?: string;
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
  if (filter.broadcastId) query = query.where('broadcast_id', '=', filter.broadcastId);
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
export async function countMessagesOnContacts(target: BulkTarget, perContact: Map<string, { count: number; at: number }>): Promise<void> {
  const rows = [...perContact].map(([id, v]) => ({ id, count: v.count, at: v.at }));
  if (rows.length === 0) return;
  if (target.raw) {
    runEach(target.raw, 'update contacts set total_messages = total_messages + ?, last_message_at = max(coalesce(last_message_at, 0), ?) where id = ?', rows.map((r) => [r.count, r.at, r.id]));
    return;
  }
  await sql`update contacts set total_messages = contacts.total_messages + v.n, last_message_at = greatest(coalesce(contacts.last_message_at, 0), v.at)
    from unnest(cast(${rows.map((r) => r.id)} as text[]), cast(${rows.map((r) => r.count)} as integer[]), cast(${rows.map((r) => r.at)} as bigint[])) as v(id, n, at)
    where contacts.id = v.id`.execute(target.db);
}

/**
 * Claims one queued message that is due, with the same lease as `claimDueMessages`:
 * for a send made at once (a direct API send) rather than by the dispatcher. Returns
 * null when it is not due or another worker holds it (SKIP LOCKED on PostgreSQL), in
 * which case the dispatcher sends it.
 */
export async function claimMessageById(db: Db, dialect: Dialect, id: string, now: number, leaseMs: number, confirmMs = 0): Promise<MessageRow | null> {
  const lock = dialect === 'postgres' ? sql` for update skip locked` : sql``;
  const found = await sql<MessageRow>`select * from messages where id = ${id} and status = 'queued' and next_attempt_at is not null and next_attempt_at <= ${now}${lock}`.execute(db);
  const row = found.rows[0];
  if (!row) return null;
  const until = now + leaseMs;
  const retryAt = row.provider === 'sandbox' ? until : until + confirmMs;
  await db.updateTable('messages').set((eb) => ({ status: 'sending', lease_until: until, next_attempt_at: retryAt, attempts: eb('attempts', '+', 1), updated_at: now })).where('id', '=', id).execute();
  return { ...row, status: 'sending', lease_until: until, next_attempt_at: retryAt, attempts: row.attempts + 1, updated_at: now };
}

/**
 * Gives claimed messages back to the queue without counting the attempt (the send
 * rate limit deferred them): queued again, due at `nextAttemptAt`.
 */
export async function releaseClaims(db: Db, ids: string[], nextAttemptAt: number, now: number): Promise<void> {
  if (ids.length === 0) return;
  await db
    .updateTable('messages')
    .set((eb) => ({ status: 'queued', lease_until: null, next_attempt_at: nextAttemptAt, attempts: eb('attempts', '-', 1), updated_at: now }))
    .where('id', 'in', ids)
    .where('status', '=', 'sending')
    .execute();
}

/**
 * A new outbound message waiting for the dispatcher: the caller names what it is,
 * everything about its delivery starts empty.
 */
export function queuedOutboundRow(fields: Pick<NewMessageRow, 'id' | 'workspace_id' | 'contact_id' | 'channel' | 'provider' | 'recipient' | 'kind' | 'content'> &
  Partial<Pick<NewMessageRow, 'session_id' | 'definition_id' | 'node_id' | 'dedupe_key' | 'marketing' | 'on_failure'>> & { now: number }): NewMessageRow {
  const { now, ...rest } = fields;
  return {
    session_id: null,
    definition_id: null,
    node_id: null,
    dedupe_key: null,
    marketing: 0,
    on_failure: 'continue',
    ...rest,
    direction: 'outbound',
    status: 'queued',
    provider_message_id: null,
    error_code: null,
    error_message: null,
    attempts: 0,
    next_attempt_at: now,
    lease_until: null,
    created_at: now,
    updated_at: now,
    sent_at: null,
    delivered_at: null,
    read_at: null,
    failed_at: null,
  };
}
