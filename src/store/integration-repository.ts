import type { Selectable } from 'kysely';
import type { Db } from './database.js';
import type { IntegrationTable } from './schema.js';

export type IntegrationRow = Selectable<IntegrationTable>;

export async function findIntegration(db: Db, workspaceId: string, provider: string): Promise<IntegrationRow | undefined> {
  return db.selectFrom('integrations').selectAll().where('workspace_id', '=', workspaceId).where('provider', '=', provider).executeTakeFirst();
}

export async function listIntegrations(db: Db, workspaceId: string): Promise<IntegrationRow[]> {
  return db.selectFrom('integrations').selectAll().where('workspace_id', '=', workspaceId).execute();
}

/** Inserts or replaces the provider's settings with the status its verification gave; a replaced row keeps its created_at. */
export async function upsertIntegration(
  db: Db,
  row: Pick<IntegrationRow, 'workspace_id' | 'provider' | 'config' | 'secrets' | 'status' | 'status_error'> & { now: number },
): Promise<void> {
  const values = { config: row.config, secrets: row.secrets, status: row.status, status_error: row.status_error, status_at: row.now, updated_at: row.now };
  await db
    .insertInto('integrations')
    .values({ workspace_id: row.workspace_id, provider: row.provider, created_at: row.now, ...values })
    .onConflict((oc) => oc.columns(['workspace_id', 'provider']).doUpdateSet(values))
    .execute();
}

export async function deleteIntegration(db: Db, workspaceId: string, provider: string): Promise<boolean> {
  const result = await db.deleteFrom('integrations').where('workspace_id', '=', workspaceId).where('provider', '=', provider).executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

/**
 * Records how the provider last answered. `onlyIfSecrets` guards against a race with a
 * PUT: a status learnt with the old credentials must not land on the new ones.
 */
export async function updateIntegrationStatus(db: Db, workspaceId: string, provider: string, status: string, error: string | null, now: number, onlyIfSecrets?: string): Promise<boolean> {
  let query = db
    .updateTable('integrations')
    .set({ status, status_error: error, status_at: now })
    .where('workspace_id', '=', workspaceId)
    .where('provider', '=', provider);
  if (onlyIfSecrets !== undefined) query = query.where('secrets', '=', onlyIfSecrets);
  const result = await query.executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}
