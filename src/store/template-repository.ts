import type { Insertable, Selectable, Updateable } from 'kysely';
import type { Db } from './database.js';
import type { TemplateTable } from './schema.js';

/** One row per template name and language, as Meta keeps them. */
export type TemplateRow = Selectable<TemplateTable>;
export type NewTemplateRow = Insertable<TemplateTable>;
export type TemplatePatch = Updateable<TemplateTable>;

export async function insertTemplate(db: Db, row: NewTemplateRow): Promise<boolean> {
  const result = await db.insertInto('templates').values(row).onConflict((oc) => oc.doNothing()).executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
}

export async function findTemplate(db: Db, workspaceId: string, id: string): Promise<TemplateRow | undefined> {
  return db.selectFrom('templates').selectAll().where('workspace_id', '=', workspaceId).where('id', '=', id).executeTakeFirst();
}

export async function findTemplateByNameLanguage(db: Db, workspaceId: string, name: string, language: string): Promise<TemplateRow | undefined> {
  return db.selectFrom('templates').selectAll().where('workspace_id', '=', workspaceId).where('name', '=', name).where('language', '=', language).executeTakeFirst();
}

export async function findTemplateByProviderId(db: Db, workspaceId: string, providerTemplateId: string): Promise<TemplateRow | undefined> {
  return db.selectFrom('templates').selectAll().where('workspace_id', '=', workspaceId).where('provider_template_id', '=', providerTemplateId).executeTakeFirst();
}

/** Every language of a template name, oldest first. */
export async function listTemplateLanguages(db: Db, workspaceId: string, name: string): Promise<TemplateRow[]> {
  return db.selectFrom('templates').selectAll().where('workspace_id', '=', workspaceId).where('name', '=', name).orderBy('id').execute();
}

export async function listTemplates(db: Db, workspaceId: string, filter: { status?: string; afterId?: string; limit?: number } = {}): Promise<TemplateRow[]> {
  let query = db.selectFrom('templates').selectAll().where('workspace_id', '=', workspaceId);
  if (filter.status) query = query.where('status', '=', filter.status);
  if (filter.afterId) query = query.where('id', '>', filter.afterId);
  query = query.orderBy('id');
  if (filter.limit !== undefined) query = query.limit(filter.limit);
  return query.execute();
}

export async function updateTemplate(db: Db, workspaceId: string, id: string, patch: TemplatePatch): Promise<void> {
  await db.updateTable('templates').set(patch).where('workspace_id', '=', workspaceId).where('id', '=', id).execute();
}

export async function deleteTemplate(db: Db, workspaceId: string, id: string): Promise<boolean> {
  const result = await db.deleteFrom('templates').where('workspace_id', '=', workspaceId).where('id', '=', id).executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}
