import { sql, type Insertable, type Selectable } from 'kysely';
import type { Db, Dialect } from './database.js';
import type BetterSqlite3 from 'better-sqlite3';
import { extractorFor, insertRows, insertRowsReturningIds, preparedQuery, selectRows, updateRows, type BulkTarget } from './batch.js';
import type { SessionStepTable, SessionTable } from './schema.js';

export type SessionRow = Selectable<SessionTable>;
export type NewSessionRow = Insertable<SessionTable>;
export type SessionStepRow = Selectable<SessionStepTable>;

/**
 * Inserts sessions in one statement, each skipped when its contact already has an
 * active one for the same definition and enrollment key. The partial unique index
 * decides, so concurrent callers cannot both win. Returns the ids this call inserted.
 */
export async function insertSessionsIfNoneActive(db: Db, rows: NewSessionRow[], raw: BetterSqlite3.Database | null = null): Promise<string[]> {
  if (rows.length === 0) return [];
  // SQLite, inside the caller's transaction (one connection): the same statement, prepared once.
  if (raw) return insertRowsReturningIds(raw, 'sessions', rows as unknown as Record<string, unknown>[]);
  const inserted = await db.insertInto('sessions').values(rows).onConflict((oc) => oc.doNothing()).returning('id').execute();
  return inserted.map((r) => r.id);
}

/**
 * The active sessions of these contacts in these definitions, read through the
 * partial unique index (definition_id, contact_id, enrollment_key) where active = 1.
 * `active = 1` is written literally: SQLite uses a partial index only for a term it
 * can match against the index's own condition, which a bound parameter is not.
 */
export async function findActiveSessionsOf(
  db: Db,
  definitionIds: readonly string[],
  contactIds: readonly string[],
): Promise<Array<Pick<SessionRow, 'id' | 'definition_id' | 'contact_id' | 'enrollment_key'>>> {
  const contacts = [...new Set(contactIds)];
  if (definitionIds.length === 0 || contacts.length === 0) return [];
  const out: Array<Pick<SessionRow, 'id' | 'definition_id' | 'contact_id' | 'enrollment_key'>> = [];
  for (let i = 0; i < contacts.length; i += 500) {
    const rows = await db
      .selectFrom('sessions')
      .select(['id', 'definition_id', 'contact_id', 'enrollment_key'])
      .where('definition_id', 'in', [...definitionIds])
      .where('contact_id', 'in', contacts.slice(i, i + 500))
      .where(sql<boolean>`active = 1`)
      .execute();
    out.push(...rows);
  }
  return out;
}

/**
 * Claims due sessions, oldest first. On PostgreSQL the rows stay locked (`FOR UPDATE
 * SKIP LOCKED`) until the caller's transaction ends, so workers never take the same
 * session and a killed worker's sessions are free again at once. On SQLite the
 * caller's BEGIN IMMEDIATE transaction already excludes every other writer.
 * Reads only the low end of the `sessions_due` index: sessions waiting in the future
 * add nothing to the cost.
 */
export async function claimDueSessions(db: Db, dialect: Dialect, now: number, limit: number, raw: BulkTarget['raw'] = null): Promise<DueSession[]> {
  if (raw) return selectRows<DueSession>(raw, `select ${dueColumns} from sessions where wake_at is not null and wake_at <= ? order by wake_at limit ?`, dueColumnList, now, limit);
  const lock = dialect === 'postgres' ? sql` for update skip locked` : sql``;
  const result = await sql<DueSession>`select ${sql.raw(dueColumns)} from sessions where wake_at is not null and wake_at <= ${now} order by wake_at limit ${limit}${lock}`.execute(db);
  return result.rows;
}

/** What the scheduler reads of a due session (not the enrollment key, times or A/B columns it does not use). */
export type DueSession = Pick<
  SessionRow,
  'id' | 'workspace_id' | 'definition_id' | 'version_id' | 'kind' | 'contact_id' | 'status' | 'current_node' | 'expires_at' | 'context' | 'event' | 'state' | 'end_reason' | 'steps_run' | 'created_at'
>;
const dueColumnList = ['id', 'workspace_id', 'definition_id', 'version_id', 'kind', 'contact_id', 'status', 'current_node', 'expires_at', 'context', 'event', 'state', 'end_reason', 'steps_run', 'created_at'] as const;
const dueColumns = dueColumnList.join(', ');

/** When the next session falls due (the smallest wake_at), or null when none waits. */
export async function nextWakeAt(db: Db): Promise<number | null> {
  const result = await sql<{ w: number | string | null }>`select min(wake_at) as w from sessions where wake_at is not null`.execute(db);
  const value = result.rows[0]?.w;
  return value === null || value === undefined ? null : Number(value);
}

export interface SessionUpdate {
  id: string;
  status: string;
  active: number;
  current_node: string | null;
  wake_at: number | null;
  state: string;
  end_reason: string | null;
  steps_run: number;
  updated_at: number;
  ended_at: number | null;
}

const sessionUpdateColumns = [
  { name: 'status', kind: 'text' },
  { name: 'active', kind: 'integer' },
  { name: 'current_node', kind: 'text' },
  { name: 'wake_at', kind: 'bigint' },
  { name: 'state', kind: 'text' },
  { name: 'end_reason', kind: 'text' },
  { name: 'steps_run', kind: 'integer' },
  { name: 'updated_at', kind: 'bigint' },
  { name: 'ended_at', kind: 'bigint' },
] as const;

/** The columns of a session update but `active`, and the statement that writes them to an active session. */
const stayingColumns = sessionUpdateColumns.map((c) => c.name).filter((name) => name !== 'active');
const stayingUpdate = `update sessions set ${stayingColumns.map((name) => `"${name}" = ?`).join(', ')} where id = ? and active = 1`;
const stayingValues = extractorFor([...stayingColumns, 'id']);

/**
 * Writes the scheduler's session updates. On SQLite, a session that stays active is
 * updated without `active` in the SET list: SQLite maintains only the indexes whose
 * columns (or partial-index WHERE columns) an UPDATE names, and `active` is the WHERE of
 * the unique `sessions_one_active`, so naming it deleted, re-checked and re-inserted that
 * entry at every step: 37 µs against 21 µs per update with 1,000,000 sessions
 * (bench/session-update.ts). A row that is not active (or gone) falls through to the full
 * update, which behaves as before. PostgreSQL writes a new row version with every index
 * entry either way.
 */
export async function saveSessions(target: BulkTarget, updates: SessionUpdate[]): Promise<void> {
  let rest = updates;
  if (target.raw && updates.length > 0) {
    const staying = preparedQuery(target.raw, stayingUpdate);
    rest = [];
    for (const u of updates) {
      if (u.active === 1 && staying.run(stayingValues(u as unknown as Record<string, unknown>)).changes === 1) continue;
      rest.push(u);
    }
  }
  await updateRows(target, 'sessions', 'id', sessionUpdateColumns, rest as unknown as Record<string, unknown>[]);
}

export async function insertSteps(target: BulkTarget, steps: SessionStepRow[]): Promise<void> {
  await insertRows(target, 'session_steps', steps as unknown as Record<string, unknown>[]);
}

export async function findSession(db: Db, workspaceId: string, id: string): Promise<SessionRow | undefined> {
  return db.selectFrom('sessions').selectAll().where('workspace_id', '=', workspaceId).where('id', '=', id).executeTakeFirst();
}

export async function findSessionForUpdate(db: Db, dialect: Dialect, workspaceId: string, id: string): Promise<SessionRow | undefined> {
  const lock = dialect === 'postgres' ? sql` for update` : sql``;
  const result = await sql<SessionRow>`select * from sessions where workspace_id = ${workspaceId} and id = ${id}${lock}`.execute(db);
  return result.rows[0];
}

/** The contact's active flow session waiting for a reply, newest first, locked for the caller's transaction. */
export async function findWaitingFlowSession(db: Db, dialect: Dialect, workspaceId: string, contactId: string): Promise<SessionRow | undefined> {
  const lock = dialect === 'postgres' ? sql` for update` : sql``;
  const result = await sql<SessionRow>`select * from sessions where contact_id = ${contactId} and workspace_id = ${workspaceId} and status = 'waiting' and active = 1 and kind = 'flow' order by created_at desc limit 1${lock}`.execute(db);
  return result.rows[0];
}

export interface SessionFilter {
  definitionId?: string;
  contactId?: string;
  status?: string;
  kind?: 'sequence' | 'flow';
  after?: string;
  limit: number;
}

export async function listSessions(db: Db, workspaceId: string, filter: SessionFilter): Promise<SessionRow[]> {
  let query = db.selectFrom('sessions').selectAll().where('workspace_id', '=', workspaceId);
  if (filter.definitionId) query = query.where('definition_id', '=', filter.definitionId);
  if (filter.contactId) query = query.where('contact_id', '=', filter.contactId);
  if (filter.status) query = query.where('status', '=', filter.status);
  if (filter.kind) query = query.where('kind', '=', filter.kind);
  if (filter.after) query = query.where('id', '<', filter.after);
  return query.orderBy('id', 'desc').limit(filter.limit).execute();
}

export async function listSteps(db: Db, sessionId: string): Promise<SessionStepRow[]> {
  return db.selectFrom('session_steps').selectAll().where('session_id', '=', sessionId).orderBy('id').execute();
}

export async function updateSession(db: Db, id: string, patch: Partial<NewSessionRow>): Promise<void> {
  await db.updateTable('sessions').set(patch).where('id', '=', id).execute();
}
