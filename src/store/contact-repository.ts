import { PostgresAdapter, sql, type Expression, type ExpressionBuilder, type SqlBool } from 'kysely';
import { containsPattern } from '../domain/contact.js';
import type BetterSqlite3 from 'better-sqlite3';
import { preparedQuery } from './batch.js';
import type { Db } from './database.js';
import type { ContactPatch, ContactRow, NewContactRow, Schema } from './schema.js';

export type { ContactRow, NewContactRow, ContactPatch };

export interface LockOptions {
  /**
   * Lock the row until the transaction ends, so a read-modify-write such as a metadata
   * merge cannot lose a concurrent one. PostgreSQL: `FOR NO KEY UPDATE`, which still
   * lets other transactions insert contact_tags rows pointing at the contact (their
   * foreign-key check takes only a key-share lock), so tag writes never deadlock with it.
   * SQLite needs no row lock: its transactions begin IMMEDIATE and run one at a time.
   */
  forUpdate?: boolean;
  /**
   * The SQLite handle when `db` is a transaction on it (`rawIn`): the read runs as a
   * statement prepared once, without the query builder's work.
   */
  raw?: BetterSqlite3.Database | null;
}

function supportsRowLocks(db: Db): boolean {
  return db.getExecutor().adapter instanceof PostgresAdapter;
}

async function findOne(db: Db, workspaceId: string, column: 'id' | 'phone' | 'email', value: string, options: LockOptions): Promise<ContactRow | undefined> {
  if (options.raw) return preparedQuery(options.raw, `select * from contacts where workspace_id = ? and ${column} = ?`).get(workspaceId, value) as ContactRow | undefined;
  let query = db.selectFrom('contacts').selectAll().where('workspace_id', '=', workspaceId).where(column, '=', value);
  if (options.forUpdate && supportsRowLocks(db)) query = query.forNoKeyUpdate();
  return query.executeTakeFirst();
}

export async function findContactById(db: Db, workspaceId: string, id: string, options: LockOptions = {}): Promise<ContactRow | undefined> {
  return findOne(db, workspaceId, 'id', id, options);
}

/** `phone` in E.164. */
export async function findContactByPhone(db: Db, workspaceId: string, phone: string, options: LockOptions = {}): Promise<ContactRow | undefined> {
  return findOne(db, workspaceId, 'phone', phone, options);
}

/** `email` normalised (lowercase). */
export async function findContactByEmail(db: Db, workspaceId: string, email: string, options: LockOptions = {}): Promise<ContactRow | undefined> {
  return findOne(db, workspaceId, 'email', email, options);
}

/**
 * Inserts the contact unless its workspace has a contact with that phone already;
 * true when this call inserted it. Concurrent callers with one phone all return
 * (PostgreSQL makes the losers wait for the winner's commit), and exactly one gets true.
 * A collision on email is not absorbed: it throws the driver's unique violation.
 */
export async function insertContactUnlessPhoneExists(db: Db, row: NewContactRow): Promise<boolean> {
  const result = await db
    .insertInto('contacts')
    .values(row)
    .onConflict((oc) => oc.columns(['workspace_id', 'phone']).doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
}

export async function updateContactRow(db: Db, workspaceId: string, id: string, patch: ContactPatch): Promise<void> {
  await db.updateTable('contacts').set(patch).where('workspace_id', '=', workspaceId).where('id', '=', id).execute();
}

export async function touchContact(db: Db, workspaceId: string, id: string, now: number, raw: BetterSqlite3.Database | null = null): Promise<void> {
  if (raw) {
    preparedQuery(raw, 'update contacts set updated_at = ? where workspace_id = ? and id = ?').run(now, workspaceId, id);
    return;
  }
  await db.updateTable('contacts').set({ updated_at: now }).where('workspace_id', '=', workspaceId).where('id', '=', id).execute();
}

export async function countContacts(db: Db, workspaceId: string): Promise<number> {
  const row = await db
    .selectFrom('contacts')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('workspace_id', '=', workspaceId)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** Filters shared by search and the paginated list. Text is already normalised by the caller. */
export interface ContactFilter {
  /** Folded words; each must occur in `search_text`. */
  terms?: readonly string[];
  /** `tags.name_key` of a tag the contact must carry. */
  tagKey?: string;
  email?: string;
  phone?: string;
  /** true: opted out (globally); false: not opted out. */
  optedOut?: boolean;
  createdAfter?: number;
  createdBefore?: number;
}

type ContactsEb = ExpressionBuilder<Schema, 'contacts'>;

function filterConditions(eb: ContactsEb, workspaceId: string, filter: ContactFilter): Expression<SqlBool>[] {
  const conditions: Expression<SqlBool>[] = [eb('contacts.workspace_id', '=', workspaceId)];
  for (const term of filter.terms ?? []) {
    // `escape '\'` is spelled out because SQLite has no default LIKE escape character.
    // search_text and the terms are both folded to lowercase, so LIKE's case rules
    // (sensitive on PostgreSQL, ASCII-insensitive on SQLite) never come into play.
    conditions.push(sql<SqlBool>`${eb.ref('contacts.search_text')} like ${containsPattern(term)} escape '\\'`);
  }
  if (filter.tagKey !== undefined) {
    conditions.push(
      eb.exists(
        eb
          .selectFrom('contact_tags')
          .innerJoin('tags', 'tags.id', 'contact_tags.tag_id')
          .select(sql.lit(1).as('one'))
          .whereRef('contact_tags.contact_id', '=', 'contacts.id')
          .where('contact_tags.workspace_id', '=', workspaceId)
          .where('tags.workspace_id', '=', workspaceId)
          .where('tags.name_key', '=', filter.tagKey),
      ),
    );
  }
  if (filter.email !== undefined) conditions.push(eb('contacts.email', '=', filter.email));
  if (filter.phone !== undefined) conditions.push(eb('contacts.phone', '=', filter.phone));
  if (filter.optedOut !== undefined) conditions.push(eb('contacts.opted_out_at', filter.optedOut ? 'is not' : 'is', null));
  if (filter.createdAfter !== undefined) conditions.push(eb('contacts.created_at', '>', filter.createdAfter));
  if (filter.createdBefore !== undefined) conditions.push(eb('contacts.created_at', '<', filter.createdBefore));
  return conditions;
}

/**
 * Matching contacts, most recently messaged first (never-messaged last), then newest.
 * Both engines support `nulls last` (SQLite since 3.30).
 */
export async function searchContactRows(db: Db, workspaceId: string, filter: ContactFilter, limit: number): Promise<ContactRow[]> {
  return db
    .selectFrom('contacts')
    .selectAll()
    .where((eb) => eb.and(filterConditions(eb, workspaceId, filter)))
    .orderBy('contacts.last_message_at', (ob) => ob.desc().nullsLast())
    .orderBy('contacts.created_at', 'desc')
    .orderBy('contacts.id', 'desc')
    .limit(limit)
    .execute();
}

/**
 * One page of contacts in id order (UUIDv7, so creation order), starting after
 * `afterId`. Reads the (workspace_id, id) index from the cursor on, so deep pages
 * cost what the first one does.
 */
export async function listContactRows(db: Db, workspaceId: string, filter: ContactFilter, page: { afterId?: string; limit: number }): Promise<ContactRow[]> {
  return db
    .selectFrom('contacts')
    .selectAll()
    .where((eb) => {
      const conditions = filterConditions(eb, workspaceId, filter);
      if (page.afterId !== undefined) conditions.push(eb('contacts.id', '>', page.afterId));
      return eb.and(conditions);
    })
    .orderBy('contacts.id', 'asc')
    .limit(page.limit)
    .execute();
}
