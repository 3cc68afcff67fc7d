import { isoTime } from '../domain/clock.js';
import { decodeCursor, encodeCursor } from '../domain/cursor.js';
import { AppError, notFound } from '../domain/errors.js';
import { isUuid } from '../domain/ids.js';
import { parseJson } from '../domain/json.js';
import * as messagesRepo from '../store/message-repository.js';
import * as sessionsRepo from '../store/session-repository.js';
import type { Context } from './context.js';
import { stopSessions } from './session-control.js';

export function toSessionView(row: sessionsRepo.SessionRow) {
  return {
    id: row.id,
    kind: row.kind,
    definition_id: row.definition_id,
    version_id: row.version_id,
    contact_id: row.contact_id,
    status: row.status,
    current_node: row.current_node,
    wake_at: isoTime(row.wake_at),
    expires_at: isoTime(row.expires_at),
    context: parseJson<Record<string, unknown>>(row.context, {}),
    event: parseJson<Record<string, unknown> | null>(row.event, null),
    enrollment_key: row.enrollment_key === '' ? null : row.enrollment_key,
    source: row.source,
    end_reason: row.end_reason,
    steps_run: row.steps_run,
    created_at: isoTime(row.created_at),
    updated_at: isoTime(row.updated_at),
    ended_at: isoTime(row.ended_at),
  };
}

export async function listSessions(
  ctx: Context,
  workspaceId: string,
  query: { definition_id?: string; contact_id?: string; status?: string; kind?: 'sequence' | 'flow'; cursor?: string; limit?: number },
) {
  const limit = query.limit ?? 50;
  for (const field of ['definition_id', 'contact_id'] as const) {
    const value = query[field];
    if (value !== undefined && !isUuid(value)) return { data: [], next_cursor: null };
  }
  const rows = await sessionsRepo.listSessions(ctx.database.db, workspaceId, {
    definitionId: query.definition_id,
    contactId: query.contact_id,
    status: query.status,
    kind: query.kind,
    after: query.cursor ? decodeCursor(query.cursor) : undefined,
    limit: limit + 1,
  });
  const page = rows.slice(0, limit);
  return { data: page.map(toSessionView), next_cursor: rows.length > limit ? encodeCursor(page[page.length - 1]!.id) : null };
}

/** A session with the history of its node visits and why each branch was taken. */
export async function getSession(ctx: Context, workspaceId: string, id: string) {
  if (!isUuid(id)) throw notFound('Session');
  const row = await sessionsRepo.findSession(ctx.database.db, workspaceId, id);
  if (!row) throw notFound('Session');
  const steps = await sessionsRepo.listSteps(ctx.database.db, id);
  return {
    ...toSessionView(row),
    history: steps.map((s) => ({
      node_id: s.node_id,
      node_type: s.node_type,
      visit: s.visit,
      outcome: s.outcome,
      detail: parseJson<Record<string, unknown> | null>(s.detail, null),
      at: isoTime(s.at),
    })),
  };
}

export async function stopSession(ctx: Context, workspaceId: string, id: string, reason?: string) {
  if (!isUuid(id)) throw notFound('Session');
  const row = await sessionsRepo.findSession(ctx.database.db, workspaceId, id);
  if (!row) throw notFound('Session');
  if (row.active !== 1) throw new AppError('business_rule', `The session has already ended (${row.status})`);
  await ctx.database.db.transaction().execute((trx) => stopSessions(ctx, trx, { workspaceId, sessionIds: [id] }, reason ? `stopped_by_api: ${reason}` : 'stopped_by_api'));
  return getSession(ctx, workspaceId, id);
}

export function toMessageView(row: messagesRepo.MessageRow) {
  return {
    id: row.id,
    direction: row.direction,
    channel: row.channel,
    provider: row.provider,
    status: row.status,
    contact_id: row.contact_id,
    session_id: row.session_id,
    definition_id: row.definition_id,
    node_id: row.node_id,
    broadcast_id: row.broadcast_id,
    to: row.direction === 'outbound' ? row.recipient : null,
    kind: row.kind,
    content: parseJson<Record<string, unknown>>(row.content, {}),
    provider_message_id: row.provider_message_id,
    error_code: row.error_code,
    error_message: row.error_message,
    attempts: row.attempts,
    created_at: isoTime(row.created_at),
    sent_at: isoTime(row.sent_at),
    delivered_at: isoTime(row.delivered_at),
    read_at: isoTime(row.read_at),
    failed_at: isoTime(row.failed_at),
  };
}

export async function listMessages(
  ctx: Context,
  workspaceId: string,
  query: { contact_id?: string; session_id?: string; definition_id?: string; broadcast_id?: string; channel?: string; direction?: string; status?: string; cursor?: string; limit?: number },
) {
  const limit = query.limit ?? 50;
  for (const field of ['contact_id', 'session_id', 'definition_id', 'broadcast_id'] as const) {
    const value = query[field];
    if (value !== undefined && !isUuid(value)) return { data: [], next_cursor: null };
  }
  const rows = await messagesRepo.listMessages(ctx.database.db, workspaceId, {
    contactId: query.contact_id,
    sessionId: query.session_id,
    definitionId: query.definition_id,
    broadcastId: query.broadcast_id,
    channel: query.channel,
    direction: query.direction,
    status: query.status,
    before: query.cursor ? decodeCursor(query.cursor) : undefined,
    limit: limit + 1,
  });
  const page = rows.slice(0, limit);
  return { data: page.map(toMessageView), next_cursor: rows.length > limit ? encodeCursor(page[page.length - 1]!.id) : null };
}
