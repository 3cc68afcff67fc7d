import { isoTime } from '../domain/clock.js';
import { decodeCursor, encodeCursor } from '../domain/cursor.js';
import { AppError, invalid, invalidFields, notFound } from '../domain/errors.js';
import { isUuid, newId } from '../domain/ids.js';
import { parseJson, toJson } from '../domain/json.js';
import { normalizeEmail } from '../domain/phone.js';
import { validateSegmentFilter, type SegmentFilter } from '../domain/segment-filter.js';
import type { Db } from '../store/database.js';
import { bumpAutomationVersion } from '../store/definition-repository.js';
import type { ContactRow } from '../store/schema.js';
import { applyContactChanges, computeSegmentPage, wakeForOutcome, type EnrollmentResult } from './automation.js';
import { loadSegment, workspaceRules } from './automation-rules.js';
import type { Context } from './context.js';
import { addToLists, ensureContactByEmail } from './subscriber-service.js';

/**
 * Lists (membership set through the API) and segments (membership computed from a
 * filter and kept current by every contact change; see automation.ts).
 */

export interface List {
  id: string;
  name: string;
  description: string | null;
  subscriberCount: number;
  createdAt: string;
  updatedAt: string;
}

export interface Segment {
  id: string;
  name: string;
  description: string | null;
  filter: SegmentFilter;
  subscriberCount: number;
  createdAt: string;
  updatedAt: string;
}

function checkName(value: unknown): string {
  if (typeof value !== 'string' || value.trim().length === 0 || value.trim().length > 200) throw invalid('name', 'is required: 1 to 200 characters');
  return value.trim();
}

function checkDescription(value: unknown): string | null | undefined {
  if (value === undefined) return undefined;
  if (value === null || value === '') return null;
  if (typeof value !== 'string' || value.length > 2000) throw invalid('description', 'must be a string of at most 2000 characters');
  return value;
}

async function memberCounts(db: Db, table: 'list_members' | 'segment_members', column: 'list_id' | 'segment_id', ids: string[]): Promise<Map<string, number>> {
  if (ids.length === 0) return new Map();
  const rows = await db
    .selectFrom(table as 'list_members')
    .select([`${column as 'list_id'} as id`, (eb) => eb.fn.countAll<number>().as('n')])
    .where(column as 'list_id', 'in', ids)
    .groupBy(column as 'list_id')
    .execute();
  return new Map(rows.map((r) => [r.id, Number(r.n)]));
}

async function requireList(db: Db, workspaceId: string, id: string) {
  const row = isUuid(id) ? await db.selectFrom('lists').selectAll().where('workspace_id', '=', workspaceId).where('id', '=', id).executeTakeFirst() : undefined;
  if (!row) throw notFound('List');
  return row;
}

function toList(row: { id: string; name: string; description: string | null; created_at: number; updated_at: number }, count: number): List {
  return { id: row.id, name: row.name, description: row.description, subscriberCount: count, createdAt: isoTime(row.created_at)!, updatedAt: isoTime(row.updated_at)! };
}

export async function createList(ctx: Context, workspaceId: string, input: { name?: unknown; description?: unknown }): Promise<List> {
  const name = checkName(input.name);
  const description = checkDescription(input.description) ?? null;
  const now = ctx.clock.now();
  const row = { id: newId(now), workspace_id: workspaceId, name, description, created_at: now, updated_at: now };
  await ctx.database.db.insertInto('lists').values(row).execute();
  return toList(row, 0);
}

export async function listLists(ctx: Context, workspaceId: string): Promise<List[]> {
  const db = ctx.database.db;
  const rows = await db.selectFrom('lists').selectAll().where('workspace_id', '=', workspaceId).orderBy('id').limit(1000).execute();
  const counts = await memberCounts(db, 'list_members', 'list_id', rows.map((r) => r.id));
  return rows.map((r) => toList(r, counts.get(r.id) ?? 0));
}

export async function getList(ctx: Context, workspaceId: string, id: string): Promise<List> {
  const row = await requireList(ctx.database.db, workspaceId, id);
  const counts = await memberCounts(ctx.database.db, 'list_members', 'list_id', [row.id]);
  return toList(row, counts.get(row.id) ?? 0);
}

export async function updateList(ctx: Context, workspaceId: string, id: string, input: { name?: unknown; description?: unknown }): Promise<List> {
  const db = ctx.database.db;
  await requireList(db, workspaceId, id);
  const patch: { name?: string; description?: string | null; updated_at: number } = { updated_at: ctx.clock.now() };
  if (input.name !== undefined) patch.name = checkName(input.name);
  const description = checkDescription(input.description);
  if (description !== undefined) patch.description = description;
  await db.updateTable('lists').set(patch).where('id', '=', id).execute();
  return getList(ctx, workspaceId, id);
}

/** Deletes the list and its memberships. Sequences triggered by it stop being reachable that way; nothing else is stopped. */
/**
 * Deletes a list. Refused while an active sequence starts from it or a segment's filter
 * names it (either would silently stop working). Its members leave it as if removed
 * one by one, a page per transaction, so removed_from_list stop conditions and
 * segments see the change; a deletion interrupted half-way is finished by calling it again.
 */
export async function deleteList(ctx: Context, workspaceId: string, id: string): Promise<void> {
  const db = ctx.database.db;
  await requireList(db, workspaceId, id);
  const used = await db
    .selectFrom('definitions')
    .select(['id', 'name'])
    .where('workspace_id', '=', workspaceId)
    .where('deleted_at', 'is', null)
    .where('status', '=', 'active')
    .where('trigger_type', '=', 'contact_added')
    .where('trigger_key', '=', id)
    .executeTakeFirst();
  if (used) throw new AppError('business_rule', `The list starts the active sequence "${used.name}" (${used.id}); disable or change it first`);
  const { segments } = await workspaceRules(ctx, db, workspaceId);
  const naming = segments.filter((s) => s.depends.lists.has(id)).map((s) => s.id);
  if (naming.length > 0) throw new AppError('business_rule', `Segments filter on this list (${naming.join(', ')}); change their filters first`);
  let enrolled = false;
  for (;;) {
    const done = await db.transaction().execute(async (trx) => {
      const page = await trx.selectFrom('list_members').select('contact_id').where('list_id', '=', id).orderBy('contact_id').limit(500).execute();
      if (page.length === 0) {
        await trx.deleteFrom('lists').where('id', '=', id).execute();
        return true;
      }
      const contactIds = page.map((m) => m.contact_id);
      await trx.deleteFrom('list_members').where('list_id', '=', id).where('contact_id', 'in', contactIds).execute();
      const outcome = await applyContactChanges(ctx, trx, workspaceId, contactIds.map((contactId) => ({ contactId, listsRemoved: [id] })), 'api');
      if (outcome.enrollments.some((e) => e.status === 'enrolled')) enrolled = true;
      return false;
    });
    if (done) break;
  }
  if (enrolled) ctx.wake.sessions();
}

export interface MembershipInput {
  emails?: unknown;
  subscriberIds?: unknown;
}

export interface MembershipResult {
  email: string | null;
  subscriberId: string | null;
  status: 'added' | 'already_member' | 'removed' | 'not_member' | 'not_found';
}

function membershipTargets(input: MembershipInput): { emails: string[]; ids: string[] } {
  const errors: Record<string, string[]> = {};
  const emails: string[] = [];
  const ids: string[] = [];
  if (input.emails !== undefined) {
    if (!Array.isArray(input.emails)) errors.emails = ['emails must be an array of email addresses'];
    else
      input.emails.forEach((value, i) => {
        const email = typeof value === 'string' ? normalizeEmail(value) : null;
        if (email === null) (errors[`emails[${i}]`] ??= []).push('must be a valid email address');
        else emails.push(email);
      });
  }
  if (input.subscriberIds !== undefined) {
    if (!Array.isArray(input.subscriberIds) || input.subscriberIds.some((v) => typeof v !== 'string')) errors.subscriberIds = ['subscriberIds must be an array of subscriber ids'];
    else ids.push(...(input.subscriberIds as string[]));
  }
  if (Object.keys(errors).length > 0) throw invalidFields(errors);
  if (emails.length + ids.length === 0) throw invalid('emails', 'or subscriberIds is required: name at least one subscriber');
  if (emails.length + ids.length > 1000) throw invalid('emails', 'at most 1000 subscribers per call (emails and subscriberIds together)');
  return { emails: [...new Set(emails)], ids: [...new Set(ids)] };
}

async function contactsByIds(db: Db, workspaceId: string, ids: string[]): Promise<Map<string, ContactRow>> {
  const valid = ids.filter(isUuid);
  if (valid.length === 0) return new Map();
  const rows = await db.selectFrom('contacts').selectAll().where('workspace_id', '=', workspaceId).where('id', 'in', valid).execute();
  return new Map(rows.map((r) => [r.id, r]));
}

/**
 * Adds subscribers to a list (creating subscribers for new emails) and, in the same
 * transaction, starts `contact_added` sequences of that list and updates segments.
 */
export async function addListMembers(ctx: Context, workspaceId: string, listId: string, input: MembershipInput): Promise<{ added: number; results: MembershipResult[]; enrollments: EnrollmentResult[] }> {
  const { emails, ids } = membershipTargets(input);
  const db = ctx.database.db;
  await requireList(db, workspaceId, listId);
  const result = await db.transaction().execute(async (trx) => {
    const now = ctx.clock.now();
    const results: MembershipResult[] = [];
    const changes: Array<{ contactId: string; created: boolean; listsAdded: string[] }> = [];
    const byId = await contactsByIds(trx, workspaceId, ids);
    const targets: Array<{ email: string | null; row: ContactRow | undefined; created: boolean }> = ids.map((id) => ({ email: null, row: byId.get(id), created: false }));
    for (const email of emails) {
      const ensured = await ensureContactByEmail(ctx, trx, workspaceId, email, {}, 'api');
      targets.push({ email, row: ensured.row, created: ensured.created });
    }
    ids.forEach((id, i) => {
      if (!targets[i]!.row) results.push({ email: null, subscriberId: id, status: 'not_found' });
    });
    for (const target of targets) {
      if (!target.row) continue;
      const added = await addToLists(trx, workspaceId, target.row.id, [listId], now);
      results.push({ email: target.row.email, subscriberId: target.row.id, status: added.length > 0 ? 'added' : 'already_member' });
      if (added.length > 0 || target.created) changes.push({ contactId: target.row.id, created: target.created, listsAdded: added });
    }
    const outcome = await applyContactChanges(ctx, trx, workspaceId, changes, 'api');
    return { results, outcome };
  });
  wakeForOutcome(ctx, result.outcome);
  return { added: result.results.filter((r) => r.status === 'added').length, results: result.results, enrollments: result.outcome.enrollments };
}

/** Removes subscribers from a list; runs whose stop condition is removed_from_list stop in the same transaction. */
export async function removeListMembers(ctx: Context, workspaceId: string, listId: string, input: MembershipInput): Promise<{ removed: number; results: MembershipResult[] }> {
  const { emails, ids } = membershipTargets(input);
  const db = ctx.database.db;
  await requireList(db, workspaceId, listId);
  return db.transaction().execute(async (trx) => {
    const results: MembershipResult[] = [];
    const changes: Array<{ contactId: string; listsRemoved: string[] }> = [];
    const byId = await contactsByIds(trx, workspaceId, ids);
    const targets: Array<{ key: { email: string | null; subscriberId: string | null }; row: ContactRow | undefined }> = ids.map((id) => ({ key: { email: null, subscriberId: id }, row: byId.get(id) }));
    for (const email of emails) {
      const row = await trx.selectFrom('contacts').selectAll().where('workspace_id', '=', workspaceId).where('email', '=', email).executeTakeFirst();
      targets.push({ key: { email, subscriberId: row?.id ?? null }, row });
    }
    for (const target of targets) {
      if (!target.row) {
        results.push({ ...target.key, status: 'not_found' });
        continue;
      }
      const deleted = await trx.deleteFrom('list_members').where('list_id', '=', listId).where('contact_id', '=', target.row.id).executeTakeFirst();
      const removed = Number(deleted.numDeletedRows) > 0;
      results.push({ email: target.row.email, subscriberId: target.row.id, status: removed ? 'removed' : 'not_member' });
      if (removed) changes.push({ contactId: target.row.id, listsRemoved: [listId] });
    }
    await applyContactChanges(ctx, trx, workspaceId, changes, 'api');
    return { removed: results.filter((r) => r.status === 'removed').length, results };
  });
}

export interface MemberPage {
  data: Array<{ id: string; email: string | null; phone: string | null; firstName: string | null; lastName: string | null; joinedAt: string }>;
  nextCursor: string | null;
}

async function membersOf(db: Db, table: 'list_members' | 'segment_members', id: string, options: { limit?: number; cursor?: string }): Promise<MemberPage> {
  const limit = Math.min(Math.max(options.limit ?? 50, 1), 500);
  const after = options.cursor ? decodeCursor(options.cursor) : undefined;
  const columns = ['contacts.id as id', 'contacts.email as email', 'contacts.phone as phone', 'contacts.first_name as first_name', 'contacts.last_name as last_name'] as const;
  let rows: Array<{ id: string; email: string | null; phone: string | null; first_name: string | null; last_name: string | null; joined: number }>;
  if (table === 'list_members') {
    let query = db.selectFrom('list_members').innerJoin('contacts', 'contacts.id', 'list_members.contact_id').select([...columns, 'list_members.created_at as joined']).where('list_members.list_id', '=', id);
    if (after) query = query.where('contacts.id', '>', after);
    rows = await query.orderBy('contacts.id').limit(limit + 1).execute();
  } else {
    let query = db.selectFrom('segment_members').innerJoin('contacts', 'contacts.id', 'segment_members.contact_id').select([...columns, 'segment_members.entered_at as joined']).where('segment_members.segment_id', '=', id);
    if (after) query = query.where('contacts.id', '>', after);
    rows = await query.orderBy('contacts.id').limit(limit + 1).execute();
  }
  const page = rows.slice(0, limit);
  return {
    data: page.map((r) => ({ id: r.id, email: r.email, phone: r.phone, firstName: r.first_name, lastName: r.last_name, joinedAt: isoTime(Number(r.joined))! })),
    nextCursor: rows.length > limit ? encodeCursor(page[page.length - 1]!.id) : null,
  };
}

export async function listMembers(ctx: Context, workspaceId: string, listId: string, options: { limit?: number; cursor?: string }): Promise<MemberPage> {
  await requireList(ctx.database.db, workspaceId, listId);
  return membersOf(ctx.database.db, 'list_members', listId, options);
}

// Segments

async function requireSegment(db: Db, workspaceId: string, id: string) {
  const row = isUuid(id) ? await db.selectFrom('segments').selectAll().where('workspace_id', '=', workspaceId).where('id', '=', id).executeTakeFirst() : undefined;
  if (!row) throw notFound('Segment');
  return row;
}

function toSegment(row: { id: string; name: string; description: string | null; filter: string; created_at: number; updated_at: number }, count: number): Segment {
  return {
    id: row.id,
    name: row.name,
    description: row.description,
    filter: parseJson<SegmentFilter>(row.filter, { match: 'all', conditions: [] }),
    subscriberCount: count,
    createdAt: isoTime(row.created_at)!,
    updatedAt: isoTime(row.updated_at)!,
  };
}

function checkFilter(value: unknown): SegmentFilter {
  if (value === undefined) throw invalid('filter', 'is required: {"match": "all", "conditions": [...]}');
  const { filter, errors } = validateSegmentFilter(value, 'filter');
  if (filter === null) throw invalidFields(errors);
  return filter;
}

async function checkFilterReferences(db: Db, workspaceId: string, filter: SegmentFilter): Promise<void> {
  const lists = new Set<string>();
  const walk = (f: SegmentFilter) => {
    for (const c of f.conditions) {
      if ('conditions' in c) walk(c);
      else if (c.type === 'list') lists.add(c.listId);
    }
  };
  walk(filter);
  const ids = [...lists];
  if (ids.length === 0) return;
  const found = new Set((await db.selectFrom('lists').select('id').where('workspace_id', '=', workspaceId).where('id', 'in', ids.filter(isUuid).length > 0 ? ids.filter(isUuid) : ['']).execute()).map((r) => r.id));
  const missing = ids.filter((id) => !found.has(id));
  if (missing.length > 0) throw new AppError('validation_failed', `The filter names lists that do not exist in this workspace: ${missing.join(', ')}`, { errors: { filter: [`unknown list ids: ${missing.join(', ')}`] } });
}

/**
 * Computes a segment's membership over every contact of the workspace, a page at a
 * time (each page its own transaction, so writers are never blocked for long). This
 * full pass runs only when a segment is created or its filter changes; after that
 * every contact change updates membership for that contact alone. Contacts that
 * qualify at creation are members, but they did not "enter" it: segment_entered
 * sequences start for contacts that enter later.
 */
async function computeMembership(ctx: Context, workspaceId: string, segment: { id: string; filter: string }): Promise<void> {
  const db = ctx.database.db;
  const loaded = loadSegment(segment);
  let after = '';
  for (;;) {
    const page = await db.selectFrom('contacts').select('id').where('workspace_id', '=', workspaceId).where('id', '>', after).orderBy('id').limit(500).execute();
    if (page.length === 0) break;
    await db.transaction().execute(async (trx) => computeSegmentPage(trx, workspaceId, loaded, page.map((c) => c.id), ctx.clock.now()));
    after = page[page.length - 1]!.id;
  }
}

export async function createSegment(ctx: Context, workspaceId: string, input: { name?: unknown; description?: unknown; filter?: unknown }): Promise<Segment> {
  const name = checkName(input.name);
  const description = checkDescription(input.description) ?? null;
  const filter = checkFilter(input.filter);
  await checkFilterReferences(ctx.database.db, workspaceId, filter);
  const now = ctx.clock.now();
  const row = { id: newId(now), workspace_id: workspaceId, name, description, filter: toJson(filter), created_at: now, updated_at: now };
  await ctx.database.db.insertInto('segments').values(row).execute();
  await bumpAutomationVersion(ctx.database.db, workspaceId);
  await computeMembership(ctx, workspaceId, row);
  return getSegment(ctx, workspaceId, row.id);
}

export async function listSegments(ctx: Context, workspaceId: string): Promise<Segment[]> {
  const db = ctx.database.db;
  const rows = await db.selectFrom('segments').selectAll().where('workspace_id', '=', workspaceId).orderBy('id').limit(1000).execute();
  const counts = await memberCounts(db, 'segment_members', 'segment_id', rows.map((r) => r.id));
  return rows.map((r) => toSegment(r, counts.get(r.id) ?? 0));
}

export async function getSegment(ctx: Context, workspaceId: string, id: string): Promise<Segment> {
  const row = await requireSegment(ctx.database.db, workspaceId, id);
  const counts = await memberCounts(ctx.database.db, 'segment_members', 'segment_id', [row.id]);
  return toSegment(row, counts.get(row.id) ?? 0);
}

/** Changes name, description or filter; a new filter recomputes membership (without firing segment_entered for the recomputation). */
export async function updateSegment(ctx: Context, workspaceId: string, id: string, input: { name?: unknown; description?: unknown; filter?: unknown }): Promise<Segment> {
  const db = ctx.database.db;
  await requireSegment(db, workspaceId, id);
  const patch: { name?: string; description?: string | null; filter?: string; updated_at: number } = { updated_at: ctx.clock.now() };
  if (input.name !== undefined) patch.name = checkName(input.name);
  const description = checkDescription(input.description);
  if (description !== undefined) patch.description = description;
  if (input.filter !== undefined) {
    const filter = checkFilter(input.filter);
    await checkFilterReferences(db, workspaceId, filter);
    patch.filter = toJson(filter);
  }
  await db.updateTable('segments').set(patch).where('id', '=', id).execute();
  await bumpAutomationVersion(db, workspaceId);
  if (patch.filter !== undefined) await computeMembership(ctx, workspaceId, { id, filter: patch.filter });
  return getSegment(ctx, workspaceId, id);
}

export async function deleteSegment(ctx: Context, workspaceId: string, id: string): Promise<void> {
  const db = ctx.database.db;
  await requireSegment(db, workspaceId, id);
  const used = await db
    .selectFrom('definitions')
    .select(['id', 'name'])
    .where('workspace_id', '=', workspaceId)
    .where('deleted_at', 'is', null)
    .where('status', '=', 'active')
    .where('trigger_type', '=', 'segment_entered')
    .where('trigger_key', '=', id)
    .executeTakeFirst();
  if (used) throw new AppError('business_rule', `The segment starts the active sequence "${used.name}" (${used.id}); disable or change it first`);
  await db.transaction().execute(async (trx) => {
    await trx.deleteFrom('segment_members').where('segment_id', '=', id).execute();
    await trx.deleteFrom('segment_rechecks').where('segment_id', '=', id).execute();
    await trx.deleteFrom('segments').where('id', '=', id).execute();
    await bumpAutomationVersion(trx, workspaceId);
  });
}

export async function segmentMembers(ctx: Context, workspaceId: string, id: string, options: { limit?: number; cursor?: string }): Promise<MemberPage> {
  await requireSegment(ctx.database.db, workspaceId, id);
  return membersOf(ctx.database.db, 'segment_members', id, options);
}
