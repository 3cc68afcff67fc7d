import type BetterSqlite3 from 'better-sqlite3';
import type { Insertable, Selectable } from 'kysely';
import { insertRowsReturningIds, preparedQuery, selectRows, updateRows, type BulkTarget } from './batch.js';
import type { Db } from './database.js';
import { rememberAutomationVersion } from './automation-versions-read.js';
import { buildSearchText, tagKey } from '../domain/contact.js';
import type { ContactTable } from './schema.js';

/** Contact reads and writes the engine makes in bulk while it advances sessions. */
export type EngineContactRow = Selectable<ContactTable>;

export async function loadContacts(db: Db, ids: string[]): Promise<Map<string, EngineContactRow>> {
  const out = new Map<string, EngineContactRow>();
  for (let i = 0; i < ids.length; i += 900) {
    const rows = await db.selectFrom('contacts').selectAll().where('id', 'in', ids.slice(i, i + 900)).execute();
    for (const row of rows) out.set(row.id, row);
  }
  return out;
}

/** What the scheduler reads of a contact to run its steps: no search text, counters or times it does not use. */
export type SnapshotRow = Pick<
  EngineContactRow,
  'id' | 'phone' | 'email' | 'name' | 'first_name' | 'last_name' | 'timezone' | 'language' | 'metadata' | 'whatsapp_opted_out_at' | 'sms_opted_out_at' | 'email_opted_out_at' | 'whatsapp_last_inbound_at'
>;
const snapshotColumns = ['id', 'phone', 'email', 'name', 'first_name', 'last_name', 'timezone', 'language', 'metadata', 'whatsapp_opted_out_at', 'sms_opted_out_at', 'email_opted_out_at', 'whatsapp_last_inbound_at'] as const;

/**
 * The contacts of a scheduler batch. On SQLite one prepared statement takes the ids as
 * a JSON array, whatever their number (no query to build, no statement per size).
 */
export async function loadContactSnapshots(target: BulkTarget, ids: string[]): Promise<Map<string, SnapshotRow>> {
  const out = new Map<string, SnapshotRow>();
  if (ids.length === 0) return out;
  if (target.raw) {
    const rows = selectRows<SnapshotRow>(target.raw, `select ${snapshotColumns.join(', ')} from contacts where id in (select value from json_each(?))`, snapshotColumns, JSON.stringify(ids));
    for (const row of rows) out.set(row.id, row);
    return out;
  }
  for (let i = 0; i < ids.length; i += 900) {
    const rows = await target.db.selectFrom('contacts').select(snapshotColumns).where('id', 'in', ids.slice(i, i + 900)).execute();
    for (const row of rows) out.set(row.id, row);
  }
  return out;
}

/** Tag names of each contact, for a scheduler batch (see loadContactSnapshots). */
export async function loadTagNamesOf(target: BulkTarget, contactIds: string[]): Promise<Map<string, string[]>> {
  if (!target.raw) return loadTagNames(target.db, contactIds);
  const out = new Map<string, string[]>();
  if (contactIds.length === 0) return out;
  const rows = preparedQuery(
    target.raw,
    'select ct.contact_id as contact_id, t.name as name from contact_tags ct join tags t on t.id = ct.tag_id where ct.contact_id in (select value from json_each(?))',
  ).all(JSON.stringify(contactIds)) as Array<{ contact_id: string; name: string }>;
  for (const row of rows) {
    const list = out.get(row.contact_id);
    if (list) list.push(row.name);
    else out.set(row.contact_id, [row.name]);
  }
  return out;
}

export async function loadTagNames(db: Db, contactIds: string[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for (let i = 0; i < contactIds.length; i += 900) {
    const rows = await db
      .selectFrom('contact_tags')
      .innerJoin('tags', 'tags.id', 'contact_tags.tag_id')
      .select(['contact_tags.contact_id as contact_id', 'tags.name as name'])
      .where('contact_tags.contact_id', 'in', contactIds.slice(i, i + 900))
      .execute();
    for (const row of rows) {
      const list = out.get(row.contact_id) ?? [];
      list.push(row.name);
      out.set(row.contact_id, list);
    }
  }
  return out;
}

/** Finds the tag by case-insensitive name, creating it when needed. */
export async function ensureTag(db: Db, workspaceId: string, name: string, id: string, now: number): Promise<string> {
  const key = tagKey(name);
  await db.insertInto('tags').values({ id, workspace_id: workspaceId, name, name_key: key, created_at: now }).onConflict((oc) => oc.doNothing()).execute();
  const row = await db.selectFrom('tags').select('id').where('workspace_id', '=', workspaceId).where('name_key', '=', key).executeTakeFirstOrThrow();
  return row.id;
}

export async function tagContact(db: Db, workspaceId: string, contactId: string, tagId: string, now: number): Promise<boolean> {
  const result = await db
    .insertInto('contact_tags')
    .values({ workspace_id: workspaceId, contact_id: contactId, tag_id: tagId, created_at: now })
    .onConflict((oc) => oc.doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
}

export async function untagContact(db: Db, workspaceId: string, contactId: string, name: string): Promise<boolean> {
  const tag = await db.selectFrom('tags').select('id').where('workspace_id', '=', workspaceId).where('name_key', '=', tagKey(name)).executeTakeFirst();
  if (!tag) return false;
  const result = await db.deleteFrom('contact_tags').where('contact_id', '=', contactId).where('tag_id', '=', tag.id).executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

export async function updateContactFields(db: Db, contactId: string, patch: Partial<EngineContactRow>): Promise<void> {
  await db.updateTable('contacts').set(patch).where('id', '=', contactId).execute();
}

/** A new contact row: every column, with the given fields and the rest empty. */
export function newContactValues(row: {
  id: string;
  workspace_id: string;
  phone?: string | null;
  email?: string | null;
  name?: string | null;
  first_name?: string | null;
  last_name?: string | null;
  timezone?: string | null;
  language?: string | null;
  metadata?: string;
  external_id?: string | null;
  source: string;
  now: number;
  optedIn: boolean;
}): Insertable<ContactTable> {
  const fields = { name: row.name ?? null, first_name: row.first_name ?? null, last_name: row.last_name ?? null, phone: row.phone ?? null, email: row.email ?? null };
  return {
    id: row.id,
    workspace_id: row.workspace_id,
    ...fields,
    metadata: row.metadata ?? '{}',
    timezone: row.timezone ?? null,
    language: row.language ?? null,
    external_id: row.external_id ?? null,
    source: row.source,
    search_text: buildSearchText(fields),
    opted_in_at: row.optedIn ? row.now : null,
    opted_out_at: null,
    whatsapp_opted_out_at: null,
    sms_opted_out_at: null,
    email_opted_out_at: null,
    whatsapp_last_inbound_at: null,
    sms_last_inbound_at: null,
    last_message_at: null,
    total_messages: 0,
    created_at: row.now,
    updated_at: row.now,
  };
}

/**
 * The workspace's contact with this phone, inserted when missing (the engine's upsert).
 * Concurrent callers race on the unique (workspace, phone) index; the loser reads
 * the winner's row.
 */
export async function upsertContactByPhone(db: Db, row: Parameters<typeof newContactValues>[0] & { phone: string }, raw: BetterSqlite3.Database | null = null): Promise<{ contact: EngineContactRow; created: boolean }> {
  if (raw) {
    // SQLite inside the caller's transaction: the same two statements, prepared once.
    const created = insertRowsReturningIds(raw, 'contacts', [newContactValues(row) as Record<string, unknown>]).length > 0;
    const contact = preparedQuery(raw, 'select * from "contacts" where "workspace_id" = ? and "phone" = ?').get(row.workspace_id, row.phone) as EngineContactRow | undefined;
    if (!contact) throw new Error('the contact upserted by phone is not there');
    return { contact, created };
  }
  return upsertThroughBuilder(db, row, 'phone', row.phone);
}

/** The same by email: concurrent callers with one email end with one contact. */
export async function upsertContactByEmail(db: Db, row: Parameters<typeof newContactValues>[0] & { email: string }): Promise<{ contact: EngineContactRow; created: boolean }> {
  return upsertThroughBuilder(db, row, 'email', row.email);
}

/**
 * Through the query builder (PostgreSQL, and SQLite without its raw handle): a new contact comes back from
 * the insert itself, with the workspace's automation version, which applying the new
 * contact's triggers reads next in the same transaction; each statement is a round
 * trip. Only a contact that already existed is read again. By email, only a clash on
 * (workspace, email) is tolerated, as before; by phone, any unique clash.
 */
async function upsertThroughBuilder(db: Db, row: Parameters<typeof newContactValues>[0], by: 'phone' | 'email', value: string): Promise<{ contact: EngineContactRow; created: boolean }> {
  const inserted = await db
    .insertInto('contacts')
    .values(newContactValues(row))
    .onConflict((oc) => (by === 'email' ? oc.columns(['workspace_id', 'email']) : oc).doNothing())
    .returningAll()
    .returning((eb) => eb.selectFrom('workspaces').select('automation_version').where('id', '=', row.workspace_id).as('automation_version'))
    .executeTakeFirst();
  if (inserted) {
    const { automation_version: version, ...contact } = inserted;
    if (version !== null) rememberAutomationVersion(db, row.workspace_id, Number(version));
    return { contact, created: true };
  }
  const contact = await db.selectFrom('contacts').selectAll().where('workspace_id', '=', row.workspace_id).where(by, '=', value).executeTakeFirstOrThrow();
  return { contact, created: false };
}

/** Rows per multi-row contact insert: 24 columns each, well under SQLite's 32,766 parameters. */
const contactInsertChunk = 500;

/**
 * Inserts new contacts with one multi-row statement per chunk, each row skipped when
 * it collides with a unique index (the workspace already has its email or its phone,
 * or a concurrent request just inserted it). Returns the ids this call inserted; the
 * caller reads the rows back (findContactsByEmails) to learn the winners of any race.
 */
export async function insertContactsIfNew(db: Db, rows: ReadonlyArray<Insertable<ContactTable>>): Promise<Set<string>> {
  const inserted = new Set<string>();
  for (let i = 0; i < rows.length; i += contactInsertChunk) {
    const result = await db.insertInto('contacts').values(rows.slice(i, i + contactInsertChunk)).onConflict((oc) => oc.doNothing()).returning('id').execute();
    for (const row of result) inserted.add(row.id);
  }
  return inserted;
}

/**
 * The workspace's contacts with these emails, by email. Emails are stored normalised
 * (lower-case), so an exact match on the unique (workspace_id, email) index is the
 * case-insensitive lookup.
 */
export async function findContactsByEmails(db: Db, workspaceId: string, emails: readonly string[]): Promise<Map<string, EngineContactRow>> {
  const out = new Map<string, EngineContactRow>();
  const unique = [...new Set(emails)];
  for (let i = 0; i < unique.length; i += 500) {
    const rows = await db.selectFrom('contacts').selectAll().where('workspace_id', '=', workspaceId).where('email', 'in', unique.slice(i, i + 500)).execute();
    for (const row of rows) if (row.email !== null) out.set(row.email, row);
  }
  return out;
}

/** The workspace's contacts with these (E.164) phones, by phone. */
export async function findContactsByPhones(db: Db, workspaceId: string, phones: readonly string[]): Promise<Map<string, EngineContactRow>> {
  const out = new Map<string, EngineContactRow>();
  const unique = [...new Set(phones)];
  for (let i = 0; i < unique.length; i += 500) {
    const rows = await db.selectFrom('contacts').selectAll().where('workspace_id', '=', workspaceId).where('phone', 'in', unique.slice(i, i + 500)).execute();
    for (const row of rows) if (row.phone !== null) out.set(row.phone, row);
  }
  return out;
}

/** The workspace's contacts with these ids, by id; ids of other workspaces are not found. */
export async function findContactsByIds(db: Db, workspaceId: string, ids: readonly string[]): Promise<Map<string, EngineContactRow>> {
  const out = new Map<string, EngineContactRow>();
  const unique = [...new Set(ids)];
  for (let i = 0; i < unique.length; i += 500) {
    const rows = await db.selectFrom('contacts').selectAll().where('workspace_id', '=', workspaceId).where('id', 'in', unique.slice(i, i + 500)).execute();
    for (const row of rows) out.set(row.id, row);
  }
  return out;
}

export interface ContactNameUpdate {
  id: string;
  first_name: string | null;
  last_name: string | null;
  name: string | null;
  phone: string | null;
  search_text: string;
  updated_at: number;
}

const nameUpdateColumns = [
  { name: 'first_name', kind: 'text' },
  { name: 'last_name', kind: 'text' },
  { name: 'name', kind: 'text' },
  { name: 'phone', kind: 'text' },
  { name: 'search_text', kind: 'text' },
  { name: 'updated_at', kind: 'bigint' },
] as const;

/** Writes names and phones of many contacts: one statement on PostgreSQL, prepared single-row updates on SQLite. */
export async function updateContactNames(target: BulkTarget, updates: readonly ContactNameUpdate[]): Promise<void> {
  await updateRows(target, 'contacts', 'id', nameUpdateColumns, updates as unknown as Record<string, unknown>[]);
}

export async function findContactById(db: Db, workspaceId: string, id: string): Promise<EngineContactRow | undefined> {
  return db.selectFrom('contacts').selectAll().where('workspace_id', '=', workspaceId).where('id', '=', id).executeTakeFirst();
}

export async function findContactByEmail(db: Db, workspaceId: string, email: string): Promise<EngineContactRow | undefined> {
  return db.selectFrom('contacts').selectAll().where('workspace_id', '=', workspaceId).where('email', '=', email).executeTakeFirst();
}

export async function findContactByPhone(db: Db, workspaceId: string, phone: string): Promise<EngineContactRow | undefined> {
  return db.selectFrom('contacts').selectAll().where('workspace_id', '=', workspaceId).where('phone', '=', phone).executeTakeFirst();
}

/** Records an inbound message on the contact: counters, and the channel's service window. */
export async function noteInbound(db: Db, contactId: string, channel: string, at: number): Promise<void> {
  const column = channel === 'whatsapp' ? 'whatsapp_last_inbound_at' : channel === 'sms' ? 'sms_last_inbound_at' : null;
  await db
    .updateTable('contacts')
    .set((eb) => ({
      total_messages: eb('total_messages', '+', 1),
      last_message_at: at,
      updated_at: at,
      ...(column ? { [column]: at } : {}),
    }))
    .where('id', '=', contactId)
    .execute();
}
