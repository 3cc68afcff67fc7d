import type { Insertable, Selectable, Updateable } from 'kysely';
import type { Db, Dialect } from './database.js';
import type { EmailTemplateTable } from './schema.js';

/** Email templates (not the WhatsApp `templates`): a step's own, or the library's. */
export type EmailTemplateRow = Selectable<EmailTemplateTable>;
export type NewEmailTemplateRow = Insertable<EmailTemplateTable>;
export type EmailTemplatePatch = Updateable<EmailTemplateTable>;

/** A template with the kind of the definition it is linked to (null when it is not). */
export type EmailTemplateListRow = EmailTemplateRow & { definition_kind: 'sequence' | 'flow' | null };

export async function insertEmailTemplates(db: Db, rows: NewEmailTemplateRow[]): Promise<void> {
  if (rows.length === 0) return;
  await db.insertInto('email_templates').values(rows).execute();
}

export async function findEmailTemplate(db: Db, workspaceId: string, id: string): Promise<EmailTemplateListRow | undefined> {
  return db
    .selectFrom('email_templates as t')
    .leftJoin('definitions as d', 'd.id', 't.definition_id')
    .selectAll('t')
    .select('d.kind as definition_kind')
    .where('t.workspace_id', '=', workspaceId)
    .where('t.id', '=', id)
    .executeTakeFirst();
}

/**
 * Templates by id, locked for the rest of the transaction on PostgreSQL (SQLite's
 * BEGIN IMMEDIATE already serialises writers). Locked in id order, so two writers
 * locking overlapping sets cannot deadlock on them.
 */
export async function lockEmailTemplates(db: Db, dialect: Dialect, workspaceId: string, ids: readonly string[]): Promise<EmailTemplateRow[]> {
  if (ids.length === 0) return [];
  let query = db.selectFrom('email_templates').selectAll().where('workspace_id', '=', workspaceId).where('id', 'in', [...ids]).orderBy('id');
  if (dialect === 'postgres') query = query.forUpdate();
  return query.execute();
}

export async function findEmailTemplates(db: Db, workspaceId: string, ids: readonly string[]): Promise<EmailTemplateRow[]> {
  if (ids.length === 0) return [];
  return db.selectFrom('email_templates').selectAll().where('workspace_id', '=', workspaceId).where('id', 'in', [...ids]).execute();
}

/** The templates linked to a definition's steps. */
export async function listDefinitionTemplates(db: Db, workspaceId: string, definitionId: string): Promise<EmailTemplateRow[]> {
  return db.selectFrom('email_templates').selectAll().where('workspace_id', '=', workspaceId).where('definition_id', '=', definitionId).orderBy('id').execute();
}

/** (definition, node) → template id, for the definitions' resource views. */
export async function templateLinks(db: Db, workspaceId: string, definitionIds: readonly string[]): Promise<Array<{ id: string; definition_id: string; node_id: string }>> {
  if (definitionIds.length === 0) return [];
  const rows = await db
    .selectFrom('email_templates')
    .select(['id', 'definition_id', 'node_id'])
    .where('workspace_id', '=', workspaceId)
    .where('definition_id', 'in', [...definitionIds])
    .where('node_id', 'is not', null)
    .orderBy('id')
    .execute();
  return rows as Array<{ id: string; definition_id: string; node_id: string }>;
}

export async function listEmailTemplates(db: Db, workspaceId: string, options: { limit: number; after?: string; definitionId?: string }): Promise<EmailTemplateListRow[]> {
  let query = db
    .selectFrom('email_templates as t')
    .leftJoin('definitions as d', 'd.id', 't.definition_id')
    .selectAll('t')
    .select('d.kind as definition_kind')
    .where('t.workspace_id', '=', workspaceId);
  if (options.definitionId !== undefined) query = query.where('t.definition_id', '=', options.definitionId);
  if (options.after !== undefined) query = query.where('t.id', '>', options.after);
  return query.orderBy('t.id').limit(options.limit).execute();
}

export async function updateEmailTemplate(db: Db, workspaceId: string, id: string, patch: EmailTemplatePatch): Promise<void> {
  await db.updateTable('email_templates').set(patch).where('workspace_id', '=', workspaceId).where('id', '=', id).execute();
}

/** Takes templates off their steps; they stay in the library. */
export async function unlinkEmailTemplates(db: Db, workspaceId: string, ids: readonly string[], now: number): Promise<void> {
  if (ids.length === 0) return;
  await db.updateTable('email_templates').set({ definition_id: null, node_id: null, updated_at: now }).where('workspace_id', '=', workspaceId).where('id', 'in', [...ids]).execute();
}

export async function unlinkDefinitionTemplates(db: Db, workspaceId: string, definitionId: string, now: number): Promise<void> {
  await db.updateTable('email_templates').set({ definition_id: null, node_id: null, updated_at: now }).where('workspace_id', '=', workspaceId).where('definition_id', '=', definitionId).execute();
}

export async function deleteEmailTemplate(db: Db, workspaceId: string, id: string): Promise<boolean> {
  const result = await db.deleteFrom('email_templates').where('workspace_id', '=', workspaceId).where('id', '=', id).executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}
