import { applyConsentSettings, consentSettingsOf, type ConsentSettings, type ConsentSettingsInput } from '../domain/consent.js';
import { notFound } from '../domain/errors.js';
import { parseJson, toJson } from '../domain/json.js';
import * as workspaces from '../store/workspace-repository.js';
import type { Context } from './context.js';

export type { ConsentSettings, ConsentSettingsInput } from '../domain/consent.js';

/** The workspace's consent keywords and confirmation texts (defaults for what it has not set). */
export async function getConsentSettings(ctx: Context, workspaceId: string): Promise<ConsentSettings> {
  const row = await workspaces.findWorkspace(ctx.database.db, workspaceId);
  if (!row) throw notFound('Workspace');
  return consentSettingsOf(parseJson<Record<string, unknown>>(row.settings, {}));
}

/**
 * Changes the consent settings: given fields replace, `null` restores the default.
 * Stored in `workspaces.settings` beside the workspace's other settings, which a
 * read-modify-write under the row's lock leaves untouched.
 */
export async function updateConsentSettings(ctx: Context, workspaceId: string, input: ConsentSettingsInput): Promise<ConsentSettings> {
  return ctx.database.db.transaction().execute(async (trx) => {
    let query = trx.selectFrom('workspaces').select('settings').where('id', '=', workspaceId);
    if (ctx.database.dialect === 'postgres') query = query.forUpdate();
    const row = await query.executeTakeFirst();
    if (!row) throw notFound('Workspace');
    const stored = parseJson<Record<string, unknown>>(row.settings, {});
    const next = applyConsentSettings(consentSettingsOf(stored), input);
    await workspaces.updateWorkspaceSettings(trx, workspaceId, toJson({ ...stored, ...next }));
    return next;
  });
}
