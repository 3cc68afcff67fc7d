import type { Selectable } from 'kysely';
import type { Db } from './database.js';
import type { ProviderSettingsTable } from './schema.js';

export type ProviderSettingsRow = Selectable<ProviderSettingsTable>;
export type ProviderChannelName = ProviderSettingsTable['channel'];

export async function findProviderSettings(db: Db, workspaceId: string, channel: ProviderChannelName): Promise<ProviderSettingsRow | undefined> {
  return db.selectFrom('provider_settings').selectAll().where('workspace_id', '=', workspaceId).where('channel', '=', channel).executeTakeFirst();
}

export async function listProviderSettings(db: Db, workspaceId: string): Promise<ProviderSettingsRow[]> {
  return db.selectFrom('provider_settings').selectAll().where('workspace_id', '=', workspaceId).execute();
}

/** Every workspace's settings: a handful of rows per workspace, read in bulk by the channel registry. */
export async function listAllProviderSettings(db: Db): Promise<ProviderSettingsRow[]> {
  return db.selectFrom('provider_settings').selectAll().execute();
}

export async function listProviderSettingsByChannel(db: Db, channel: ProviderChannelName): Promise<ProviderSettingsRow[]> {
  return db.selectFrom('provider_settings').selectAll().where('channel', '=', channel).orderBy('created_at').execute();
}

/** Inserts or replaces the channel's settings; a replaced row keeps its created_at and starts unverified again. */
export async function upsertProviderSettings(
  db: Db,
  row: Pick<ProviderSettingsRow, 'workspace_id' | 'channel' | 'provider' | 'config' | 'secrets'> & { now: number },
): Promise<void> {
  await db
    .insertInto('provider_settings')
    .values({
      workspace_id: row.workspace_id,
      channel: row.channel,
      provider: row.provider,
      config: row.config,
      secrets: row.secrets,
      status: 'unverified',
      status_error: null,
      status_at: null,
      created_at: row.now,
      updated_at: row.now,
    })
    .onConflict((oc) =>
      oc.columns(['workspace_id', 'channel']).doUpdateSet({
        provider: row.provider,
        config: row.config,
        secrets: row.secrets,
        status: 'unverified',
        status_error: null,
        status_at: null,
        updated_at: row.now,
      }),
    )
    .execute();
}

export async function deleteProviderSettings(db: Db, workspaceId: string, channel: ProviderChannelName): Promise<boolean> {
  const result = await db.deleteFrom('provider_settings').where('workspace_id', '=', workspaceId).where('channel', '=', channel).executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

export async function updateProviderStatus(
  db: Db,
  workspaceId: string,
  channel: ProviderChannelName,
  status: string,
  error: string | null,
  now: number,
): Promise<boolean> {
  const result = await db
    .updateTable('provider_settings')
    .set({ status, status_error: error, status_at: now })
    .where('workspace_id', '=', workspaceId)
    .where('channel', '=', channel)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}
