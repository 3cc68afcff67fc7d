import { sql } from 'kysely';
import type { Db } from './database.js';

/**
 * The newest-first reads behind the polling triggers (integration tools call them
 * every few minutes, for every connected account). Each is one descending range of an
 * index that starts with the workspace (see migration 0008), stopped after `limit`
 * rows: the cost does not grow with the history kept.
 */

export interface InboundFeedRow {
  id: string;
  contact_id: string;
  channel: string;
  kind: string;
  content: string;
  session_id: string | null;
  definition_id: string | null;
  provider_message_id: string | null;
  created_at: number;
  phone: string | null;
  email: string | null;
  name: string | null;
  first_name: string | null;
  last_name: string | null;
}

/**
 * Received messages, newest first. The direction is written as a literal, not a
 * parameter: SQLite uses a partial index only when the query's own text implies its
 * `where direction = 'inbound'`.
 */
export async function recentInbound(db: Db, workspaceId: string, filter: { kind?: string; channel?: string; limit: number }): Promise<InboundFeedRow[]> {
  let query = db
    .selectFrom('messages')
    .innerJoin('contacts', 'contacts.id', 'messages.contact_id')
    .select([
      'messages.id',
      'messages.contact_id',
      'messages.channel',
      'messages.kind',
      'messages.content',
      'messages.session_id',
      'messages.definition_id',
      'messages.provider_message_id',
      'messages.created_at',
      'contacts.phone',
      'contacts.email',
      'contacts.name',
      'contacts.first_name',
      'contacts.last_name',
    ])
    .where('messages.workspace_id', '=', workspaceId)
    .where(sql<boolean>`messages.direction = 'inbound'`);
  if (filter.kind) query = query.where('messages.kind', '=', filter.kind);
  if (filter.channel) query = query.where('messages.channel', '=', filter.channel as 'whatsapp');
  return query.orderBy('messages.id', 'desc').limit(filter.limit).execute();
}

export interface SessionFeedRow {
  id: string;
  definition_id: string;
  definition_name: string | null;
  status: string;
  source: string;
  end_reason: string | null;
  context: string;
  created_at: number;
  ended_at: number | null;
  contact_id: string;
  phone: string | null;
  email: string | null;
  name: string | null;
  first_name: string | null;
  last_name: string | null;
}

/** Sessions of one kind started, newest first (session ids are UUIDv7: id order is start order). */
export async function recentSessions(db: Db, workspaceId: string, kind: 'sequence' | 'flow', filter: { definitionId?: string; limit: number }): Promise<SessionFeedRow[]> {
  let query = db
    .selectFrom('sessions')
    .innerJoin('contacts', 'contacts.id', 'sessions.contact_id')
    .leftJoin('definitions', 'definitions.id', 'sessions.definition_id')
    .select([
      'sessions.id',
      'sessions.definition_id',
      'definitions.name as definition_name',
      'sessions.status',
      'sessions.source',
      'sessions.end_reason',
      'sessions.context',
      'sessions.created_at',
      'sessions.ended_at',
      'sessions.contact_id',
      'contacts.phone',
      'contacts.email',
      'contacts.name',
      'contacts.first_name',
      'contacts.last_name',
    ])
    .where('sessions.workspace_id', '=', workspaceId)
    .where('sessions.kind', '=', kind);
  if (filter.definitionId) query = query.where('sessions.definition_id', '=', filter.definitionId);
  return query.orderBy('sessions.id', 'desc').limit(filter.limit).execute();
}

export interface BroadcastFeedRow {
  id: string;
  name: string;
  status: string;
  template_id: string;
  template_name: string | null;
  language: string | null;
  audience: string;
  recipients: number;
  skipped: number;
  scheduled_at: number | null;
  started_at: number | null;
  completed_at: number;
  created_at: number;
}

/**
 * Broadcasts that have been sent (every message queued), most recently sent first:
 * ordered by when they were sent, not created, because one scheduled weeks ahead is
 * news the day it goes out. Reads the partial index `broadcasts_completed`.
 */
export async function recentlySentBroadcasts(db: Db, workspaceId: string, filter: { templateId?: string; limit: number }): Promise<BroadcastFeedRow[]> {
  let query = db
    .selectFrom('broadcasts')
    .leftJoin('templates', 'templates.id', 'broadcasts.template_id')
    .select([
      'broadcasts.id',
      'broadcasts.name',
      'broadcasts.status',
      'broadcasts.template_id',
      'templates.name as template_name',
      'broadcasts.language',
      'broadcasts.audience',
      'broadcasts.recipients',
      'broadcasts.skipped',
      'broadcasts.scheduled_at',
      'broadcasts.started_at',
      'broadcasts.completed_at',
      'broadcasts.created_at',
    ])
    .where('broadcasts.workspace_id', '=', workspaceId)
    .where('broadcasts.completed_at', 'is not', null)
    .where('broadcasts.deleted_at', 'is', null);
  if (filter.templateId) query = query.where('broadcasts.template_id', '=', filter.templateId);
  const rows = await query.orderBy('broadcasts.completed_at', 'desc').orderBy('broadcasts.id', 'desc').limit(filter.limit).execute();
  return rows as BroadcastFeedRow[];
}

/** Active (published) sequences or flows, for pickers: id and name, alphabetical. */
export async function activeDefinitionOptions(db: Db, workspaceId: string, kind: 'sequence' | 'flow', limit: number): Promise<Array<{ id: string; name: string }>> {
  return db
    .selectFrom('definitions')
    .select(['id', 'name'])
    .where('workspace_id', '=', workspaceId)
    .where('kind', '=', kind)
    .where('status', '=', 'active')
    .where('deleted_at', 'is', null)
    .orderBy('name')
    .orderBy('id')
    .limit(limit)
    .execute();
}
