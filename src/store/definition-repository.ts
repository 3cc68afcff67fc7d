import type BetterSqlite3 from 'better-sqlite3';
import type { Insertable, Selectable } from 'kysely';
import { forgetAutomationVersion, knownAutomationVersion } from './automation-versions-read.js';
import { preparedQuery } from './batch.js';
import type { Db, Dialect } from './database.js';
import type { DefinitionTable, DefinitionVersionTable } from './schema.js';

export type DefinitionRow = Selectable<DefinitionTable>;
export type DefinitionVersionRow = Selectable<DefinitionVersionTable>;

export async function insertDefinition(db: Db, row: Insertable<DefinitionTable>): Promise<void> {
  await db.insertInto('definitions').values(row).execute();
  await bumpAutomationVersion(db, row.workspace_id);
}

export async function findDefinition(db: Db, workspaceId: string, kind: 'sequence' | 'flow', id: string): Promise<DefinitionRow | undefined> {
  return db
    .selectFrom('definitions')
    .selectAll()
    .where('workspace_id', '=', workspaceId)
    .where('kind', '=', kind)
    .where('id', '=', id)
    .where('deleted_at', 'is', null)
    .executeTakeFirst();
}

/**
 * The definition, locked for the rest of the transaction on PostgreSQL, so writers of its
 * draft (a PUT, an email template edit, the AI writer) take turns instead of overwriting
 * each other; SQLite's BEGIN IMMEDIATE already serialises them. Any kind when `kind` is null.
 */
export async function lockDefinition(db: Db, dialect: Dialect, workspaceId: string, kind: 'sequence' | 'flow' | null, id: string): Promise<DefinitionRow | undefined> {
  let query = db.selectFrom('definitions').selectAll().where('workspace_id', '=', workspaceId).where('id', '=', id).where('deleted_at', 'is', null);
  if (kind !== null) query = query.where('kind', '=', kind);
  if (dialect === 'postgres') query = query.forUpdate();
  return query.executeTakeFirst();
}

export async function listDefinitions(
  db: Db,
  workspaceId: string,
  kind: 'sequence' | 'flow',
  options: { limit: number; after?: string; status?: string },
): Promise<DefinitionRow[]> {
  let query = db
    .selectFrom('definitions')
    .selectAll()
    .where('workspace_id', '=', workspaceId)
    .where('kind', '=', kind)
    .where('deleted_at', 'is', null);
  if (options.after) query = query.where('id', '>', options.after);
  if (options.status) query = query.where('status', '=', options.status as DefinitionRow['status']);
  return query.orderBy('id').limit(options.limit).execute();
}

export async function updateDefinition(db: Db, workspaceId: string, id: string, patch: Partial<Insertable<DefinitionTable>>): Promise<void> {
  await db.updateTable('definitions').set(patch).where('workspace_id', '=', workspaceId).where('id', '=', id).execute();
  // After the change: a reader between the two statements re-reads at the next change.
  await bumpAutomationVersion(db, workspaceId);
}

/** Tells every process that the workspace's automation rules changed (see automation-rules.ts). */
export async function bumpAutomationVersion(db: Db, workspaceId: string): Promise<void> {
  forgetAutomationVersion(db, workspaceId);
  await db.updateTable('workspaces').set((eb) => ({ automation_version: eb('automation_version', '+', 1) })).where('id', '=', workspaceId).execute();
}

export async function readAutomationVersion(db: Db, workspaceId: string, raw: BetterSqlite3.Database | null = null): Promise<number> {
  const known = knownAutomationVersion(db, workspaceId);
  if (known !== undefined) return known;
  if (raw) return Number((preparedQuery(raw, 'select "automation_version" from "workspaces" where "id" = ?').get(workspaceId) as { automation_version: number } | undefined)?.automation_version ?? 0);
  const row = await db.selectFrom('workspaces').select('automation_version').where('id', '=', workspaceId).executeTakeFirst();
  return Number(row?.automation_version ?? 0);
}

export async function latestVersionNumber(db: Db, definitionId: string): Promise<number> {
  const row = await db
    .selectFrom('definition_versions')
    .select((eb) => eb.fn.max('version').as('v'))
    .where('definition_id', '=', definitionId)
    .executeTakeFirst();
  return Number(row?.v ?? 0);
}

export async function insertVersion(db: Db, row: DefinitionVersionRow): Promise<void> {
  await db.insertInto('definition_versions').values(row).execute();
}

export async function findVersion(db: Db, id: string): Promise<DefinitionVersionRow | undefined> {
  return db.selectFrom('definition_versions').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function findVersions(db: Db, ids: string[]): Promise<DefinitionVersionRow[]> {
  if (ids.length === 0) return [];
  return db.selectFrom('definition_versions').selectAll().where('id', 'in', ids).execute();
}

/** Sessions ever started per definition: counted on read so enrollments never contend on one row. */
export async function countSessions(db: Db, definitionIds: string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  if (definitionIds.length === 0) return out;
  const rows = await db
    .selectFrom('sessions')
    .select(['definition_id', (eb) => eb.fn.countAll<number>().as('n')])
    .where('definition_id', 'in', definitionIds)
    .groupBy('definition_id')
    .execute();
  for (const row of rows) out.set(row.definition_id, Number(row.n));
  return out;
}
