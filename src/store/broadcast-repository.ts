import { sql, type Insertable, type Selectable, type Updateable } from 'kysely';
import type { Db, Dialect } from './database.js';
import type { BroadcastTable } from './schema.js';

/**
 * Broadcasts and the queries their worker makes: claiming a due one, reading its
 * audience a page at a time in contact-id order (keyset, so each page is an index
 * range whatever the audience's size), and counting its messages.
 */

export type BroadcastRow = Selectable<BroadcastTable>;
export type NewBroadcastRow = Insertable<BroadcastTable>;
export type BroadcastPatch = Updateable<BroadcastTable>;

export async function insertBroadcast(db: Db, row: NewBroadcastRow): Promise<void> {
  await db.insertInto('broadcasts').values(row).execute();
}

/** A broadcast of the workspace that has not been deleted. */
export async function findBroadcast(db: Db, workspaceId: string, id: string): Promise<BroadcastRow | undefined> {
  return db.selectFrom('broadcasts').selectAll().where('workspace_id', '=', workspaceId).where('id', '=', id).where('deleted_at', 'is', null).executeTakeFirst();
}

/** Newest first (ids are UUIDv7), a page at a time: `before` is the last id of the previous page. */
export async function listBroadcasts(db: Db, workspaceId: string, filter: { status?: string; before?: string; limit: number }): Promise<BroadcastRow[]> {
  let query = db.selectFrom('broadcasts').selectAll().where('workspace_id', '=', workspaceId).where('deleted_at', 'is', null);
  if (filter.status) query = query.where('status', '=', filter.status);
  if (filter.before) query = query.where('id', '<', filter.before);
  return query.orderBy('id', 'desc').limit(filter.limit).execute();
}

/**
 * Updates the broadcast only while its status is one of `statuses`: a compare-and-set,
 * so an edit racing the worker that starts sending it loses cleanly instead of
 * changing a broadcast already going out. Returns whether it changed.
 */
export async function updateBroadcastIf(db: Db, workspaceId: string, id: string, statuses: readonly string[], patch: BroadcastPatch): Promise<boolean> {
  const result = await db
    .updateTable('broadcasts')
    .set(patch)
    .where('workspace_id', '=', workspaceId)
    .where('id', '=', id)
    .where('deleted_at', 'is', null)
    .where('status', 'in', [...statuses])
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

/**
 * Claims the broadcast that has been due longest. On PostgreSQL the row stays locked
 * (`FOR UPDATE SKIP LOCKED`) until the caller's transaction ends: that lock is the
 * lease, so two workers never expand the same broadcast at once, and a worker killed
 * mid-chunk releases it with its uncommitted work. On SQLite the caller's BEGIN
 * IMMEDIATE already excludes every other writer. Reads the low end of `broadcasts_due`.
 */
export async function claimDueBroadcast(db: Db, dialect: Dialect, now: number): Promise<BroadcastRow | undefined> {
  const lock = dialect === 'postgres' ? sql` for update skip locked` : sql``;
  const result = await sql<BroadcastRow>`select * from broadcasts where due_at is not null and due_at <= ${now} order by due_at limit 1${lock}`.execute(db);
  return result.rows[0];
}

export async function saveBroadcast(db: Db, id: string, patch: BroadcastPatch): Promise<void> {
  await db.updateTable('broadcasts').set(patch).where('id', '=', id).execute();
}

/** When the next broadcast falls due, or null when none waits. */
export async function nextBroadcastDueAt(db: Db): Promise<number | null> {
  const result = await sql<{ w: number | string | null }>`select min(due_at) as w from broadcasts where due_at is not null`.execute(db);
  const value = result.rows[0]?.w;
  return value === null || value === undefined ? null : Number(value);
}

/** An audience as the worker reads it: a tag by id, a list, a segment, or fixed contact ids (sorted). */
export type AudienceSource =
  | { type: 'tag'; tagId: string }
  | { type: 'list'; listId: string }
  | { type: 'segment'; segmentId: string }
  | { type: 'contacts'; contactIds: readonly string[] };

/**
 * The next `limit` contact ids of the audience after `after`, in id order. Each kind
 * is one range of an index that starts with the audience's key: contact_tags_tag
 * (tag_id, contact_id), and the primary keys of list_members and segment_members.
 */
export async function audiencePage(db: Db, workspaceId: string, source: AudienceSource, after: string | null, limit: number): Promise<string[]> {
  const from = after ?? '';
  if (source.type === 'contacts') return source.contactIds.filter((id) => id > from).slice(0, limit);
  const [table, key, value] =
    source.type === 'tag'
      ? (['contact_tags', 'tag_id', source.tagId] as const)
      : source.type === 'list'
        ? (['list_members', 'list_id', source.listId] as const)
        : (['segment_members', 'segment_id', source.segmentId] as const);
  const rows = await db
    .selectFrom(table)
    .select('contact_id')
    .where(sql.ref(key), '=', value)
    .where('workspace_id', '=', workspaceId)
    .where('contact_id', '>', from)
    .orderBy('contact_id')
    .limit(limit)
    .execute();
  return rows.map((r) => r.contact_id);
}

/** Which of these ids are contacts of the workspace. */
export async function existingContactIds(db: Db, workspaceId: string, ids: readonly string[]): Promise<Set<string>> {
  const found = new Set<string>();
  for (let i = 0; i < ids.length; i += 900) {
    const rows = await db.selectFrom('contacts').select('id').where('workspace_id', '=', workspaceId).where('id', 'in', ids.slice(i, i + 900)).execute();
    for (const row of rows) found.add(row.id);
  }
  return found;
}

export async function segmentExists(db: Db, workspaceId: string, id: string): Promise<boolean> {
  return (await db.selectFrom('segments').select('id').where('workspace_id', '=', workspaceId).where('id', '=', id).executeTakeFirst()) !== undefined;
}

export async function listExists(db: Db, workspaceId: string, id: string): Promise<boolean> {
  return (await db.selectFrom('lists').select('id').where('workspace_id', '=', workspaceId).where('id', '=', id).executeTakeFirst()) !== undefined;
}

export interface BroadcastCounts {
  /** Waiting for the dispatcher, or being sent. */
  queued: number;
  /** Accepted by the provider (delivered and read ones included). */
  sent: number;
  delivered: number;
  read: number;
  failed: number;
  skipped: number;
  cancelled: number;
}

export const noCounts: BroadcastCounts = { queued: 0, sent: 0, delivered: 0, read: 0, failed: 0, skipped: 0, cancelled: 0 };

/**
 * Counts the messages of each broadcast by what became of them, from the messages
 * themselves: status callbacks update messages, and the counts follow with nothing
 * else to keep in step. Reads the (broadcast_id, id) index range of each broadcast.
 */
export async function countBroadcastMessages(db: Db, workspaceId: string, broadcastIds: readonly string[]): Promise<Map<string, BroadcastCounts>> {
  const out = new Map<string, BroadcastCounts>();
  if (broadcastIds.length === 0) return out;
  const rows = await db
    .selectFrom('messages')
    .select((eb) => [
      'broadcast_id',
      'status',
      eb.fn.countAll<number | string>().as('n'),
      eb.fn.sum<number | string | null>(eb.case().when('sent_at', 'is not', null).then(1).else(0).end()).as('sent'),
      eb.fn.sum<number | string | null>(eb.case().when('delivered_at', 'is not', null).then(1).else(0).end()).as('delivered'),
      eb.fn.sum<number | string | null>(eb.case().when('read_at', 'is not', null).then(1).else(0).end()).as('read'),
    ])
    .where('broadcast_id', 'in', [...broadcastIds])
    .where('workspace_id', '=', workspaceId)
    .groupBy(['broadcast_id', 'status'])
    .execute();
  for (const row of rows) {
    const counts = out.get(row.broadcast_id!) ?? { ...noCounts };
    const n = Number(row.n);
    if (row.status === 'queued' || row.status === 'sending') counts.queued += n;
    else if (row.status === 'failed') counts.failed += n;
    else if (row.status === 'skipped') counts.skipped += n;
    else if (row.status === 'cancelled') counts.cancelled += n;
    // A message that failed after being sent counts as failed, not as sent.
    if (row.status !== 'failed') {
      counts.sent += Number(row.sent ?? 0);
      counts.delivered += Number(row.delivered ?? 0);
      counts.read += Number(row.read ?? 0);
    }
    out.set(row.broadcast_id!, counts);
  }
  return out;
}

/**
 * How many of the broadcast's newest `recent` messages are still waiting to be sent:
 * the worker queues the next chunk only once the previous one has mostly gone out.
 * Reads at most `recent` entries of the (broadcast_id, id) index.
 */
export async function waitingAmongLatest(db: Db, broadcastId: string, recent: number): Promise<number> {
  const result = await sql<{ n: number | string }>`select count(*) as n from (select status from messages where broadcast_id = ${broadcastId} order by id desc limit ${recent}) latest where status in ('queued', 'sending')`.execute(db);
  return Number(result.rows[0]?.n ?? 0);
}

/** Cancels the broadcast's messages that are still queued; those being sent finish. */
export async function cancelQueuedForBroadcast(db: Db, broadcastId: string, now: number): Promise<number> {
  const result = await db
    .updateTable('messages')
    .set({ status: 'cancelled', next_attempt_at: null, lease_until: null, error_code: 'broadcast_cancelled', error_message: 'The broadcast was cancelled before this message was sent', updated_at: now })
    .where('broadcast_id', '=', broadcastId)
    .where('status', '=', 'queued')
    .executeTakeFirst();
  return Number(result.numUpdatedRows);
}
