import { sql, type Selectable } from 'kysely';
import type { Db } from './database.js';
import type { DefinitionTable, ListTable, SegmentTable } from './schema.js';

/**
 * Queries behind triggers, stop conditions, lists, segments and events. Every one is
 * bounded by an index: a contact's own rows, a definition's trigger key, or a
 * (name, last_at) range for the inactivity scan.
 */

export type ListRow = Selectable<ListTable>;
export type SegmentRow = Selectable<SegmentTable>;

/** A published definition that reacts to contact changes (a trigger other than the API, or a stop condition). */
export type AutomationRule = Pick<
  Selectable<DefinitionTable>,
  | 'id'
  | 'workspace_id'
  | 'kind'
  | 'name'
  | 'status'
  | 'current_version_id'
  | 'trigger_type'
  | 'trigger_key'
  | 'stop_type'
  | 'stop_key'
  | 'enrollments_paused'
  | 'ab_variant_id'
  | 'ab_split_percent'
>;

/** The columns of an AutomationRule. */
export const automationRuleColumns = [
  'id',
  'workspace_id',
  'kind',
  'name',
  'status',
  'current_version_id',
  'trigger_type',
  'trigger_key',
  'stop_type',
  'stop_key',
  'enrollments_paused',
  'ab_variant_id',
  'ab_split_percent',
] as const satisfies ReadonlyArray<keyof AutomationRule>;

export async function automationRules(db: Db, workspaceId: string): Promise<AutomationRule[]> {
  return db
    .selectFrom('definitions')
    .select(automationRuleColumns)
    .where('workspace_id', '=', workspaceId)
    .where('deleted_at', 'is', null)
    .where('current_version_id', 'is not', null)
    .where((eb) => eb.or([eb('trigger_type', '!=', 'api'), eb('stop_type', 'is not', null)]))
    .execute();
}

/** Active definitions with this trigger type across workspaces (the periodic scans). */
export async function rulesWithTrigger(db: Db, triggerType: string): Promise<AutomationRule[]> {
  return db
    .selectFrom('definitions')
    .select(automationRuleColumns)
    .where('trigger_type', '=', triggerType)
    .where('status', '=', 'active')
    .where('deleted_at', 'is', null)
    .execute();
}

export async function segmentsOf(db: Db, workspaceId: string): Promise<SegmentRow[]> {
  return db.selectFrom('segments').selectAll().where('workspace_id', '=', workspaceId).execute();
}

export async function listIdsOfContact(db: Db, contactId: string): Promise<string[]> {
  const rows = await db.selectFrom('list_members').select('list_id').where('contact_id', '=', contactId).execute();
  return rows.map((r) => r.list_id);
}

export async function segmentIdsOfContact(db: Db, contactId: string): Promise<string[]> {
  const rows = await db.selectFrom('segment_members').select('segment_id').where('contact_id', '=', contactId).execute();
  return rows.map((r) => r.segment_id);
}

export async function countEvents(db: Db, contactId: string, name: string, since: number | null): Promise<number> {
  let query = db.selectFrom('events').select((eb) => eb.fn.countAll<number>().as('n')).where('contact_id', '=', contactId).where('name', '=', name);
  if (since !== null) query = query.where('occurred_at', '>=', since);
  return Number((await query.executeTakeFirst())?.n ?? 0);
}

/** The oldest occurrence inside the window: when it leaves the window, the count drops. */
export async function oldestEventSince(db: Db, contactId: string, name: string, since: number): Promise<number | null> {
  const row = await db
    .selectFrom('events')
    .select((eb) => eb.fn.min('occurred_at').as('at'))
    .where('contact_id', '=', contactId)
    .where('name', '=', name)
    .where('occurred_at', '>=', since)
    .executeTakeFirst();
  return row?.at === null || row?.at === undefined ? null : Number(row.at);
}

const engagementColumn = { sent: 'sent_at', delivered: 'delivered_at', read: 'read_at', failed: 'failed_at' } as const;

export async function countEngagement(db: Db, contactId: string, metric: string, channel: string | null, since: number | null): Promise<number> {
  let query = db.selectFrom('messages').select((eb) => eb.fn.countAll<number>().as('n')).where('contact_id', '=', contactId);
  if (metric === 'replied') {
    query = query.where('direction', '=', 'inbound');
    if (since !== null) query = query.where('created_at', '>=', since);
  } else {
    const column = engagementColumn[metric as keyof typeof engagementColumn];
    if (!column) return 0;
    query = query.where('direction', '=', 'outbound').where(column, 'is not', null);
    if (since !== null) query = query.where(column, '>=', since);
  }
  if (channel) query = query.where('channel', '=', channel as 'email');
  return Number((await query.executeTakeFirst())?.n ?? 0);
}

/** Chunks of ids small enough for one `in (…)` on either engine. */
function chunks<T>(items: readonly T[], size = 900): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** The lists of each contact. */
export async function listIdsOfContacts(db: Db, contactIds: readonly string[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for (const part of chunks(contactIds)) {
    for (const row of await db.selectFrom('list_members').select(['contact_id', 'list_id']).where('contact_id', 'in', part).execute()) {
      const list = out.get(row.contact_id);
      if (list) list.push(row.list_id);
      else out.set(row.contact_id, [row.list_id]);
    }
  }
  return out;
}

/** How many `name` events each contact has (since `since`); contacts without any are absent. */
export async function countEventsMany(db: Db, contactIds: readonly string[], name: string, since: number | null): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const part of chunks(contactIds)) {
    let query = db.selectFrom('events').select(['contact_id', (eb) => eb.fn.countAll<number>().as('n')]).where('contact_id', 'in', part).where('name', '=', name);
    if (since !== null) query = query.where('occurred_at', '>=', since);
    for (const row of await query.groupBy('contact_id').execute()) out.set(row.contact_id, Number(row.n));
  }
  return out;
}

/** The same for messages: sent, delivered, read, failed (outbound) or replied (inbound). */
export async function countEngagementMany(db: Db, contactIds: readonly string[], metric: string, channel: string | null, since: number | null): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const column = engagementColumn[metric as keyof typeof engagementColumn];
  if (metric !== 'replied' && !column) return out;
  for (const part of chunks(contactIds)) {
    let query = db.selectFrom('messages').select(['contact_id', (eb) => eb.fn.countAll<number>().as('n')]).where('contact_id', 'in', part);
    if (metric === 'replied') {
      query = query.where('direction', '=', 'inbound');
      if (since !== null) query = query.where('created_at', '>=', since);
    } else {
      query = query.where('direction', '=', 'outbound').where(column!, 'is not', null);
      if (since !== null) query = query.where(column!, '>=', since);
    }
    if (channel) query = query.where('channel', '=', channel as 'email');
    for (const row of await query.groupBy('contact_id').execute()) out.set(row.contact_id, Number(row.n));
  }
  return out;
}

/** Each contact's oldest `name` event inside the window; contacts without one are absent. */
export async function oldestEventsSince(db: Db, contactIds: readonly string[], name: string, since: number): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const part of chunks(contactIds)) {
    const rows = await db
      .selectFrom('events')
      .select(['contact_id', (eb) => eb.fn.min('occurred_at').as('at')])
      .where('contact_id', 'in', part)
      .where('name', '=', name)
      .where('occurred_at', '>=', since)
      .groupBy('contact_id')
      .execute();
    for (const row of rows) if (row.at !== null) out.set(row.contact_id, Number(row.at));
  }
  return out;
}

/** Which of these contacts are members of the segment. */
export async function segmentMembersAmong(db: Db, segmentId: string, contactIds: readonly string[]): Promise<Set<string>> {
  const out = new Set<string>();
  for (const part of chunks(contactIds)) {
    for (const row of await db.selectFrom('segment_members').select('contact_id').where('segment_id', '=', segmentId).where('contact_id', 'in', part).execute()) out.add(row.contact_id);
  }
  return out;
}

export async function addSegmentMember(db: Db, workspaceId: string, segmentId: string, contactId: string, now: number): Promise<boolean> {
  const result = await db
    .insertInto('segment_members')
    .values({ segment_id: segmentId, contact_id: contactId, workspace_id: workspaceId, entered_at: now })
    .onConflict((oc) => oc.doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
}

export async function removeSegmentMember(db: Db, segmentId: string, contactId: string): Promise<boolean> {
  const result = await db.deleteFrom('segment_members').where('segment_id', '=', segmentId).where('contact_id', '=', contactId).executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

export async function setSegmentRecheck(db: Db, workspaceId: string, segmentId: string, contactId: string, dueAt: number | null): Promise<void> {
  if (dueAt === null) {
    await db.deleteFrom('segment_rechecks').where('segment_id', '=', segmentId).where('contact_id', '=', contactId).execute();
    return;
  }
  await db
    .insertInto('segment_rechecks')
    .values({ segment_id: segmentId, contact_id: contactId, workspace_id: workspaceId, due_at: dueAt })
    .onConflict((oc) => oc.columns(['segment_id', 'contact_id']).doUpdateSet({ due_at: dueAt }))
    .execute();
}

export async function dueSegmentRechecks(db: Db, now: number, limit: number): Promise<Array<{ segment_id: string; contact_id: string; workspace_id: string }>> {
  return db.selectFrom('segment_rechecks').select(['segment_id', 'contact_id', 'workspace_id']).where('due_at', '<=', now).orderBy('due_at').limit(limit).execute();
}

/**
 * Records that a rule fired for a contact under `key`. Returns false when it already
 * had: the primary key is what makes "once per rule" hold under concurrency.
 */
export async function recordFire(db: Db, workspaceId: string, definitionId: string, contactId: string, key: string, now: number): Promise<boolean> {
  const result = await db
    .insertInto('trigger_fires')
    .values({ definition_id: definitionId, contact_id: contactId, fire_key: key, workspace_id: workspaceId, fired_at: now })
    .onConflict((oc) => oc.doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
}

/** recordFire for many contacts in one statement: returns the contacts whose fire this call recorded. */
export async function recordFires(db: Db, workspaceId: string, definitionId: string, contactIds: readonly string[], key: string, now: number): Promise<Set<string>> {
  const recorded = new Set<string>();
  const unique = [...new Set(contactIds)];
  for (let i = 0; i < unique.length; i += 500) {
    const rows = await db
      .insertInto('trigger_fires')
      .values(unique.slice(i, i + 500).map((contactId) => ({ definition_id: definitionId, contact_id: contactId, fire_key: key, workspace_id: workspaceId, fired_at: now })))
      .onConflict((oc) => oc.doNothing())
      .returning('contact_id')
      .execute();
    for (const row of rows) recorded.add(row.contact_id);
  }
  return recorded;
}

export async function lastFire(db: Db, definitionId: string, contactId: string, key: string): Promise<number | null> {
  const row = await db
    .selectFrom('trigger_fires')
    .select('fired_at')
    .where('definition_id', '=', definitionId)
    .where('contact_id', '=', contactId)
    .where('fire_key', '=', key)
    .executeTakeFirst();
  return row ? Number(row.fired_at) : null;
}

export async function moveFire(db: Db, definitionId: string, contactId: string, key: string, now: number): Promise<void> {
  await db.updateTable('trigger_fires').set({ fired_at: now }).where('definition_id', '=', definitionId).where('contact_id', '=', contactId).where('fire_key', '=', key).execute();
}

/** Upserts the contact's statistics for an event name (last time, count). */
export async function noteEventStat(db: Db, workspaceId: string, contactId: string, name: string, at: number): Promise<void> {
  await db
    .insertInto('contact_event_stats')
    .values({ workspace_id: workspaceId, contact_id: contactId, name, first_at: at, last_at: at, total: 1 })
    .onConflict((oc) =>
      oc.columns(['contact_id', 'name']).doUpdateSet({
        last_at: sql`case when excluded.last_at > contact_event_stats.last_at then excluded.last_at else contact_event_stats.last_at end`,
        first_at: sql`case when excluded.first_at < contact_event_stats.first_at then excluded.first_at else contact_event_stats.first_at end`,
        total: sql`contact_event_stats.total + 1`,
      }),
    )
    .execute();
}

/**
 * Contacts whose last `name` event falls in (after, upTo]: the ones that crossed the
 * inactivity threshold since the previous scan. Reads a range of the
 * (workspace, name, last_at) index, so contacts active since are never read.
 */
/** The inactivity scan's query: a range of the (workspace, name, last_at) index. Exported for the test that checks its plan. */
export function contactsGoneQuietQuery(db: Db, workspaceId: string, name: string, after: number, upTo: number, limit: number) {
  return db
    .selectFrom('contact_event_stats')
    .select(['contact_id', 'last_at'])
    .where('workspace_id', '=', workspaceId)
    .where('name', '=', name)
    .where('last_at', '>', after)
    .where('last_at', '<=', upTo)
    .orderBy('last_at')
    .limit(limit);
}

export async function contactsGoneQuiet(db: Db, workspaceId: string, name: string, after: number, upTo: number, limit: number): Promise<Array<{ contact_id: string; last_at: number }>> {
  const rows = await contactsGoneQuietQuery(db, workspaceId, name, after, upTo, limit).execute();
  return rows.map((r) => ({ contact_id: r.contact_id, last_at: Number(r.last_at) }));
}

export async function contactsQuietAt(db: Db, workspaceId: string, name: string, at: number): Promise<Array<{ contact_id: string; last_at: number }>> {
  const rows = await db.selectFrom('contact_event_stats').select(['contact_id', 'last_at']).where('workspace_id', '=', workspaceId).where('name', '=', name).where('last_at', '=', at).execute();
  return rows.map((r) => ({ contact_id: r.contact_id, last_at: Number(r.last_at) }));
}

export async function scanWatermark(db: Db, definitionId: string): Promise<number | null> {
  const row = await db.selectFrom('trigger_scans').select('scanned_until').where('definition_id', '=', definitionId).executeTakeFirst();
  return row ? Number(row.scanned_until) : null;
}

export async function setScanWatermark(db: Db, workspaceId: string, definitionId: string, until: number, now: number): Promise<void> {
  await db
    .insertInto('trigger_scans')
    .values({ definition_id: definitionId, workspace_id: workspaceId, scanned_until: until, updated_at: now })
    .onConflict((oc) => oc.column('definition_id').doUpdateSet({ scanned_until: until, updated_at: now }))
    .execute();
}
