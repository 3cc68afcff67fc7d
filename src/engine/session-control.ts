import type BetterSqlite3 from 'better-sqlite3';
import { preparedQuery } from '../store/batch.js';
import { rawIn, type Tx, type Db } from '../store/database.js';
import { cancelQueuedForSessions } from '../store/message-repository.js';
import type { Context } from './context.js';
import { emitWebhookEvents, sessionData } from './webhook-emitter.js';

/**
 * Stops running sessions matching the filter in the caller's transaction: they end
 * with the reason recorded, their queued, unsent messages are cancelled with them, and
 * each announces `session.stopped` to webhook subscriptions.
 */
export async function stopSessions(
  ctx: Context,
  trx: Tx | Db,
  filter: { workspaceId: string; definitionId?: string; sessionIds?: string[]; contactId?: string },
  reason: string,
): Promise<string[]> {
  const now = ctx.clock.now();
  const raw = rawIn(ctx.database, trx);
  if (raw && filter.sessionIds && !filter.definitionId && !filter.contactId) return stopSessionsById(ctx, trx, raw, filter.workspaceId, filter.sessionIds, reason, now);
  let query = trx.selectFrom('sessions').select(['id', 'kind', 'definition_id', 'contact_id', 'created_at']).where('workspace_id', '=', filter.workspaceId).where('active', '=', 1);
  if (filter.definitionId) query = query.where('definition_id', '=', filter.definitionId);
  if (filter.contactId) query = query.where('contact_id', '=', filter.contactId);
  if (filter.sessionIds) query = query.where('id', 'in', filter.sessionIds.length > 0 ? filter.sessionIds : ['']);
  const rows = await query.execute();
  const ids = rows.map((r) => r.id);
  if (ids.length === 0) return [];
  for (let i = 0; i < ids.length; i += 1000) {
    const chunk = ids.slice(i, i + 1000);
    await trx
      .updateTable('sessions')
      .set({ status: 'stopped', active: 0, wake_at: null, end_reason: reason, ended_at: now, updated_at: now })
      .where('id', 'in', chunk)
      .where('active', '=', 1)
      .execute();
    await cancelQueuedForSessions(trx, chunk, now, reason);
    await emitWebhookEvents(
      ctx,
      trx,
      rows.slice(i, i + 1000).map((r) => ({ workspaceId: filter.workspaceId, type: 'session.stopped' as const, data: () => sessionData({ ...r, status: 'stopped', end_reason: reason, ended_at: now }) })),
    );
  }
  return ids;
}

/**
 * stopSessions by ids on SQLite, inside the caller's transaction: statements prepared
 * once on the handle, the ids as one JSON array. Stops by a stop condition (a tag, an
 * event) come one request per contact, and the query builder's work was most of theirs.
 */
async function stopSessionsById(ctx: Context, trx: Tx | Db, raw: BetterSqlite3.Database, workspaceId: string, sessionIds: string[], reason: string, now: number): Promise<string[]> {
  const rows = preparedQuery(raw, 'select id, kind, definition_id, contact_id, created_at from sessions where workspace_id = ? and active = 1 and id in (select value from json_each(?))').all(
    workspaceId,
    JSON.stringify(sessionIds),
  ) as Array<{ id: string; kind: 'sequence' | 'flow'; definition_id: string; contact_id: string; created_at: number }>;
  if (rows.length === 0) return [];
  const ids = rows.map((r) => r.id);
  preparedQuery(
    raw,
    "update sessions set status = 'stopped', active = 0, wake_at = null, end_reason = ?, ended_at = ?, updated_at = ? where id in (select value from json_each(?)) and active = 1",
  ).run(reason, now, now, JSON.stringify(ids));
  await cancelQueuedForSessions(trx, ids, now, reason, raw);
  await emitWebhookEvents(
    ctx,
    trx,
    rows.map((r) => ({ workspaceId, type: 'session.stopped' as const, data: () => sessionData({ ...r, status: 'stopped', end_reason: reason, ended_at: now }) })),
  );
  return ids;
}
