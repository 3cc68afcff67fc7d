import type { Selectable } from 'kysely';
import { newId } from '../domain/ids.js';
import type BetterSqlite3 from 'better-sqlite3';
import { preparedQuery } from './batch.js';
import type { Db } from './database.js';
import type { TagTable } from './schema.js';

export type TagRow = Selectable<TagTable>;

export interface TagWithCount extends TagRow {
  contacts_count: number;
}

export async function findTagByKey(db: Db, workspaceId: string, nameKey: string): Promise<TagRow | undefined> {
  return db.selectFrom('tags').selectAll().where('workspace_id', '=', workspaceId).where('name_key', '=', nameKey).executeTakeFirst();
}

/**
 * The workspace's tags with these keys, created where missing (with the given
 * spelling). Safe under concurrency: the unique (workspace_id, name_key) index decides
 * which insert wins and the others read the winner. Inserted in key order, so two
 * transactions creating overlapping sets cannot deadlock on PostgreSQL.
 */
export async function ensureTags(
  db: Db,
  workspaceId: string,
  tags: ReadonlyArray<{ name: string; key: string }>,
  now: number,
  raw: BetterSqlite3.Database | null = null,
): Promise<TagRow[]> {
  if (tags.length === 0) return [];
  const sorted = [...tags].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  if (raw) {
    // SQLite, inside the caller's transaction (rawIn): statements prepared once, the keys as one JSON array.
    const insert = preparedQuery(raw, 'insert into tags (id, workspace_id, name, name_key, created_at) values (?, ?, ?, ?, ?) on conflict (workspace_id, name_key) do nothing');
    for (const t of sorted) insert.run(newId(), workspaceId, t.name, t.key, now);
    return preparedQuery(raw, 'select * from tags where workspace_id = ? and name_key in (select value from json_each(?))').all(workspaceId, JSON.stringify(sorted.map((t) => t.key))) as TagRow[];
  }
  await db
    .insertInto('tags')
    .values(sorted.map((t) => ({ id: newId(), workspace_id: workspaceId, name: t.name, name_key: t.key, created_at: now })))
    .onConflict((oc) => oc.columns(['workspace_id', 'name_key']).doNothing())
    .execute();
  return db
    .selectFrom('tags')
    .selectAll()
    .where('workspace_id', '=', workspaceId)
    .where('name_key', 'in', sorted.map((t) => t.key))
    .execute();
}

/** Tag names per contact, alphabetical (case-insensitively). Contacts without tags are absent. */
export async function tagNamesByContact(db: Db, workspaceId: string, contactIds: readonly string[], raw: BetterSqlite3.Database | null = null): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  if (contactIds.length === 0) return out;
  const rows = raw
    ? (preparedQuery(
        raw,
        'select contact_tags.contact_id, tags.name from contact_tags inner join tags on tags.id = contact_tags.tag_id ' +
          'where contact_tags.workspace_id = ? and contact_tags.contact_id in (select value from json_each(?)) order by tags.name_key',
      ).all(workspaceId, JSON.stringify(contactIds)) as Array<{ contact_id: string; name: string }>)
    : await db
    .selectFrom('contact_tags')
    .innerJoin('tags', 'tags.id', 'contact_tags.tag_id')
    .select(['contact_tags.contact_id', 'tags.name'])
    .where('contact_tags.workspace_id', '=', workspaceId)
    .where('contact_tags.contact_id', 'in', [...contactIds])
    .orderBy('tags.name_key')
    .execute();
  for (const row of rows) {
    const names = out.get(row.contact_id);
    if (names) names.push(row.name);
    else out.set(row.contact_id, [row.name]);
  }
  return out;
}

/** Attaches tags to a contact; already attached ones are left alone. Returns how many were new. */
export async function attachTags(db: Db, workspaceId: string, contactId: string, tagIds: readonly string[], now: number, raw: BetterSqlite3.Database | null = null): Promise<number> {
  if (tagIds.length === 0) return 0;
  if (raw) {
    const insert = preparedQuery(raw, 'insert into contact_tags (workspace_id, contact_id, tag_id, created_at) values (?, ?, ?, ?) on conflict (contact_id, tag_id) do nothing');
    let added = 0;
    for (const tagId of tagIds) added += insert.run(workspaceId, contactId, tagId, now).changes;
    return added;
  }
  const result = await db
    .insertInto('contact_tags')
    .values(tagIds.map((tagId) => ({ workspace_id: workspaceId, contact_id: contactId, tag_id: tagId, created_at: now })))
    .onConflict((oc) => oc.columns(['contact_id', 'tag_id']).doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0);
}

/** Detaches one tag from a contact; returns how many links were removed (0 or 1). */
export async function detachTag(db: Db, workspaceId: string, contactId: string, tagId: string): Promise<number> {
  const result = await db
    .deleteFrom('contact_tags')
    .where('workspace_id', '=', workspaceId)
    .where('contact_id', '=', contactId)
    .where('tag_id', '=', tagId)
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}

/** Detaches every tag of the contact except `keepTagIds`; returns how many were removed. */
export async function detachTagsExcept(db: Db, workspaceId: string, contactId: string, keepTagIds: readonly string[]): Promise<number> {
  let query = db.deleteFrom('contact_tags').where('workspace_id', '=', workspaceId).where('contact_id', '=', contactId);
  if (keepTagIds.length > 0) query = query.where('tag_id', 'not in', [...keepTagIds]);
  const result = await query.executeTakeFirst();
  return Number(result.numDeletedRows);
}

/** Every tag of the workspace with how many contacts carry it, alphabetical. */
export async function listTagsWithCounts(db: Db, workspaceId: string): Promise<TagWithCount[]> {
  const rows = await db
    .selectFrom('tags')
    .leftJoin('contact_tags', 'contact_tags.tag_id', 'tags.id')
    .select(['tags.id', 'tags.workspace_id', 'tags.name', 'tags.name_key', 'tags.created_at'])
    .select((eb) => eb.fn.count<number>('contact_tags.contact_id').as('contacts_count'))
    .where('tags.workspace_id', '=', workspaceId)
    .groupBy(['tags.id', 'tags.workspace_id', 'tags.name', 'tags.name_key', 'tags.created_at'])
    .orderBy('tags.name_key')
    .execute();
  return rows.map((row) => ({ ...row, contacts_count: Number(row.contacts_count) }));
}
