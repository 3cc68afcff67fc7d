import { isoTime } from '../domain/clock.js';
import { decodeCursor, encodeCursor } from '../domain/cursor.js';
import { isFieldPath, valueAtPath } from '../domain/enrollment.js';
import { AppError, invalid, invalidFields, notFound, type FieldErrors } from '../domain/errors.js';
import { isUuid, newId } from '../domain/ids.js';
import { isPlainObject, nestsDeeperThan, parseJson, toJson } from '../domain/json.js';
import { normalizeEmail } from '../domain/phone.js';
import type { AutomationRule } from '../store/audience-repository.js';
import type { Db } from '../store/database.js';
import * as definitions from '../store/definition-repository.js';
import * as contacts from '../store/engine-contact-repository.js';
import type { SessionRow } from '../store/session-repository.js';
import { applyContactChanges, enrollContacts, wakeForOutcome } from './automation.js';
import type { Context } from './context.js';
import { resolveAbTest } from './session-start.js';
import { stopSessions } from './session-control.js';
import type { LoadedVersion } from './version-cache.js';

/**
 * Operating a sequence's enrollments from the API: enroll a batch of subscribers,
 * list the runs, and cancel runs chosen by subscriber or by a field of the event
 * that started them. Every write runs in one transaction; the scheduler is woken
 * after the commit, never before it.
 *
 * The few session and contact queries below live here rather than in the store
 * because they exist only for these operations; each names the index it relies on.
 */

export const enrollmentAdminLimits = {
  /** emails + subscriberIds of one enroll or cancel request. */
  subscribers: 500,
  /** values of one cancel-by-field request. */
  values: 500,
  valueLength: 500,
  reasonLength: 200,
  contextBytes: 32_768,
  pageSize: 200,
  defaultPageSize: 50,
  /** Active sessions read per page while cancelling, so 100k runs never load at once. */
  scanPage: 500,
} as const;

export const enrollmentStatuses = ['active', 'running', 'waiting', 'completed', 'stopped', 'expired', 'failed'] as const;
export type EnrollmentStatusFilter = (typeof enrollmentStatuses)[number];

export interface EnrollInput {
  emails?: unknown;
  subscriberIds?: unknown;
  context?: unknown;
}

export interface EnrollItem {
  email?: string;
  /** The contact's id; for an unknown id, the id as given. */
  subscriberId: string;
  status: 'enrolled' | 'already_enrolled' | 'skipped';
  reason?: string;
  enrollmentId?: string;
}

export interface EnrollOutcome {
  success: true;
  enrolled: number;
  skipped: number;
  alreadyEnrolled: number;
  results: EnrollItem[];
}

export interface Enrollment {
  id: string;
  subscriberId: string;
  email: string | null;
  status: string;
  currentNodeId: string | null;
  enrollmentKey: string | null;
  event: Record<string, unknown> | null;
  context: Record<string, unknown>;
  endReason: string | null;
  startedAt: string;
  updatedAt: string;
  endedAt: string | null;
  nextRunAt: string | null;
}

export interface ListEnrollmentsQuery {
  status?: string;
  nodeId?: string;
  subscriberId?: string;
  email?: string;
  limit?: number;
  cursor?: string;
}

export interface CancelInput {
  subscriberIds?: unknown;
  emails?: unknown;
  fieldPath?: unknown;
  values?: unknown;
  dryRun?: unknown;
  reason?: unknown;
}

export interface CancelledEnrollment {
  id: string;
  subscriberId: string;
  email: string | null;
  enrollmentKey: string | null;
}

export interface CancelOutcome {
  success: true;
  dryRun: boolean;
  cancelled: number;
  enrollments: CancelledEnrollment[];
}

/** A list of strings, each checked by `check` (which names what is wrong, or returns null). */
function stringList(value: unknown, field: string, errors: FieldErrors, check: (item: string) => string | null): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    (errors[field] ??= []).push(`${field} must be an array`);
    return [];
  }
  const out: string[] = [];
  value.forEach((item, i) => {
    const problem = typeof item === 'string' ? check(item) : 'must be a string';
    if (problem === null) out.push(item as string);
    else (errors[`${field}.${i}`] ??= []).push(`${field}.${i} ${problem}`);
  });
  return out;
}

interface SubscriberSelectors {
  /** Normalised emails, in the order given. */
  emails: string[];
  /** Lower-cased ids, in the order given. */
  ids: string[];
}

/**
 * Reads `emails` and `subscriberIds`: each email normalised (trimmed, lower-cased), each
 * id a UUID. `required` refuses an empty selection; the total is capped either way.
 */
function readSubscribers(input: { emails?: unknown; subscriberIds?: unknown }, errors: FieldErrors, required: boolean): SubscriberSelectors {
  const emails = stringList(input.emails, 'emails', errors, (item) => (normalizeEmail(item) === null ? 'must be an email address' : null)).map((e) => normalizeEmail(e)!);
  const ids = stringList(input.subscriberIds, 'subscriberIds', errors, (item) => (isUuid(item) ? null : 'must be a subscriber id (a UUID)')).map((id) => id.toLowerCase());
  const total = (Array.isArray(input.emails) ? input.emails.length : 0) + (Array.isArray(input.subscriberIds) ? input.subscriberIds.length : 0);
  const max = enrollmentAdminLimits.subscribers;
  if (total > max) {
    const message = `emails and subscriberIds may hold at most ${max} entries together (got ${total})`;
    for (const field of ['emails', 'subscriberIds'] as const) if (Array.isArray(input[field]) && input[field].length > 0) (errors[field] ??= []).push(message);
  } else if (required && total === 0 && Object.keys(errors).length === 0) {
    errors.emails = [`give 1 to ${max} emails or subscriberIds`];
    errors.subscriberIds = [`give 1 to ${max} emails or subscriberIds`];
  }
  return { emails, ids };
}

function readContext(value: unknown): Record<string, unknown> {
  if (value === undefined || value === null) return {};
  if (!isPlainObject(value)) throw invalid('context', 'must be an object');
  if (nestsDeeperThan(value, 16)) throw invalid('context', 'must not nest objects or arrays more than 16 levels deep');
  if (toJson(value).length > enrollmentAdminLimits.contextBytes) throw invalid('context', 'must be at most 32 KiB as JSON');
  return value;
}

/** The sequence, or a 404 for an unknown id, another workspace's or a deleted one. */
export async function requireSequence(db: Db, workspaceId: string, id: string): Promise<definitions.DefinitionRow> {
  const row = isUuid(id) ? await definitions.findDefinition(db, workspaceId, 'sequence', id.toLowerCase()) : undefined;
  if (!row) throw notFound('Sequence');
  return row;
}

export function ruleOf(row: definitions.DefinitionRow): AutomationRule {
  return {
    id: row.id,
    workspace_id: row.workspace_id,
    kind: row.kind,
    name: row.name,
    status: row.status,
    current_version_id: row.current_version_id,
    trigger_type: row.trigger_type,
    trigger_key: row.trigger_key,
    stop_type: row.stop_type,
    stop_key: row.stop_key,
    enrollments_paused: row.enrollments_paused,
    ab_variant_id: row.ab_variant_id,
    ab_split_percent: row.ab_split_percent,
  };
}

/** The reasons a whole enrollment call is refused (422 `business_rule`, this as `reason`). */
export type RefusalReason = 'sequence_not_active' | 'sequence_has_no_steps' | 'ab_variant_not_active' | 'ab_variant_has_no_steps' | 'no_enrollable_contacts';

export function refusal(reason: RefusalReason, message: string, extra: Record<string, unknown> = {}, errors?: FieldErrors): AppError {
  return new AppError('business_rule', message, { extra: { reason, ...extra }, ...(errors && Object.keys(errors).length > 0 ? { errors } : {}) });
}

export interface EnrollableSequence {
  row: definitions.DefinitionRow;
  rule: AutomationRule;
  version: LoadedVersion;
}

/**
 * The sequence as the caller's transaction sees it, ready to take enrollments: active,
 * published with steps, and, with an A/B test, a variant that can take its share.
 * Otherwise a 422 `business_rule` whose `reason` says which rule refused it; thrown
 * inside the transaction, it leaves nothing written.
 */
export async function requireEnrollableSequence(ctx: Context, trx: Db, workspaceId: string, sequenceId: string): Promise<EnrollableSequence> {
  const row = await requireSequence(trx, workspaceId, sequenceId);
  if (row.status !== 'active' || row.current_version_id === null) {
    const why = row.status === 'archived' ? 'is archived' : row.status === 'paused' ? 'is disabled (paused)' : 'is a draft';
    throw refusal('sequence_not_active', `This sequence ${why}: only an active sequence takes enrollments${row.status === 'archived' ? '' : '; enable it with POST /api/v1/sequences/{id}/enable'}`, { status: row.status });
  }
  const version = (await ctx.versions.load(trx, [row.current_version_id])).get(row.current_version_id);
  if (!version || version.graph.entry === null || version.body.graph.nodes.length === 0) {
    throw refusal('sequence_has_no_steps', 'This sequence has no steps: add steps and enable it again before enrolling subscribers');
  }
  const rule = ruleOf(row);
  const test = await resolveAbTest(ctx, trx, rule);
  if (test !== null && 'reason' in test) throw refusal(test.reason, test.message, { variantSequenceId: row.ab_variant_id });
  return { row, rule, version };
}

const optedOutColumn = { email: 'email_opted_out_at', sms: 'sms_opted_out_at', whatsapp: 'whatsapp_opted_out_at' } as const;

/**
 * Whether the contact opted out of every channel the sequence sends on: then enrolling
 * it would only record skipped sends. A contact opted out of email alone still takes a
 * sequence that also sends SMS (those steps go; the email steps are skipped).
 */
export function unsubscribedFrom(version: LoadedVersion, contact: contacts.EngineContactRow): boolean {
  if (version.channels.size === 0) return false;
  return [...version.channels].every((channel) => contact[optedOutColumn[channel]] !== null);
}

/**
 * Enrolls up to 500 subscribers, by email (found ignoring case, or created) or by id,
 * in one transaction. The sequence must be active and have steps (otherwise a 422
 * saying why, with `reason`); each subscriber then gets its own result: `enrolled`,
 * `already_enrolled` (a run with the same enrollment key is active), or `skipped` with
 * a reason: `not_found` (unknown id), `unsubscribed` (opted out of every channel the
 * sequence sends on), `enrollments_paused`, `already_enrolled_once` (one_time mode),
 * `enrollment_key_missing` (matching_field mode needs an event).
 *
 * Missing subscribers are created with one multi-row insert (source `api`, opted in
 * now, like the other API paths that create contacts); a concurrent request creating
 * the same email wins the unique (workspace_id, email) index and this one reads its
 * row. They are reported to the automation hooks in the same transaction, so their
 * contact_added sequences start and segments take them in, after the explicit
 * enrollments, so a contact_added sequence enrolled on purpose keeps the caller's context.
 *
 * @example
 * await enrollSubscribers(ctx, workspaceId, sequenceId, { emails: ['Ana@Example.com'], context: { plan: 'pro' } });
 * // { success: true, enrolled: 1, skipped: 0, alreadyEnrolled: 0, results: [{ email: 'ana@example.com', subscriberId: '…', status: 'enrolled', enrollmentId: '…' }] }
 */
export async function enrollSubscribers(ctx: Context, workspaceId: string, sequenceId: string, input: EnrollInput): Promise<EnrollOutcome> {
  const db = ctx.database.db;
  await requireSequence(db, workspaceId, sequenceId);
  const errors: FieldErrors = {};
  const selected = readSubscribers(input, errors, true);
  if (Object.keys(errors).length > 0) throw invalidFields(errors);
  const context = readContext(input.context);

  const { results, started } = await db.transaction().execute(async (trx) => {
    const { rule, version } = await requireEnrollableSequence(ctx, trx, workspaceId, sequenceId);
    const now = ctx.clock.now();
    const byEmail = await contacts.findContactsByEmails(trx, workspaceId, selected.emails);
    const missing = [...new Set(selected.emails.filter((email) => !byEmail.has(email)))];
    const created = await contacts.insertContactsIfNew(
      trx,
      missing.map((email) => contacts.newContactValues({ id: newId(now), workspace_id: workspaceId, email, source: 'api', now, optedIn: true })),
    );
    if (missing.length > 0) for (const [email, row] of await contacts.findContactsByEmails(trx, workspaceId, missing)) byEmail.set(email, row);
    const byId = await contacts.findContactsByIds(trx, workspaceId, selected.ids);

    // One entry per subscriber given, in order: emails first, then ids.
    const given: Array<{ email?: string; id: string; contact: contacts.EngineContactRow | undefined }> = [
      ...selected.emails.map((email) => ({ email, id: byEmail.get(email)?.id ?? '', contact: byEmail.get(email) })),
      ...selected.ids.map((id) => ({ id, contact: byId.get(id), email: byId.get(id)?.email ?? undefined })),
    ];
    const enrollable = given.filter((g) => g.contact !== undefined && !unsubscribedFrom(version, g.contact));
    const outcomes = await enrollContacts(ctx, trx, rule, enrollable.map((g) => g.contact!.id), { source: 'api:enroll', context });
    const outcomeOf = new Map(enrollable.map((g, i) => [g, outcomes[i]!]));
    const items: EnrollItem[] = given.map((g) => {
      const base = { ...(g.email === undefined ? {} : { email: g.email }), subscriberId: g.contact?.id ?? g.id };
      if (g.contact === undefined) return { ...base, status: 'skipped', reason: 'not_found' };
      const result = outcomeOf.get(g);
      if (result === undefined) return { ...base, status: 'skipped', reason: 'unsubscribed' };
      return {
        ...base,
        status: result.status,
        ...(result.reason === undefined ? {} : { reason: result.reason }),
        ...(result.sessionId === undefined ? {} : { enrollmentId: result.sessionId }),
      };
    });
    const automation = await applyContactChanges(
      ctx,
      trx,
      workspaceId,
      [...created].map((contactId) => ({ contactId, created: true })),
      'api',
    );
    return { results: items, started: [...outcomes, ...automation.enrollments] };
  });

  wakeForOutcome(ctx, { enrollments: started });
  return {
    success: true,
    enrolled: results.filter((r) => r.status === 'enrolled').length,
    skipped: results.filter((r) => r.status === 'skipped').length,
    alreadyEnrolled: results.filter((r) => r.status === 'already_enrolled').length,
    results,
  };
}

function toEnrollment(row: SessionRow & { email: string | null }): Enrollment {
  return {
    id: row.id,
    subscriberId: row.contact_id,
    email: row.email,
    status: row.status,
    currentNodeId: row.current_node,
    enrollmentKey: row.enrollment_key === '' ? null : row.enrollment_key,
    event: parseJson<Record<string, unknown> | null>(row.event, null),
    context: parseJson<Record<string, unknown>>(row.context, {}),
    endReason: row.end_reason,
    startedAt: isoTime(row.created_at),
    updatedAt: isoTime(row.updated_at),
    endedAt: isoTime(row.ended_at),
    nextRunAt: isoTime(row.wake_at),
  };
}

/**
 * The sequence's runs, newest first, a page at a time (`nextCursor` → `cursor`).
 * `status` `active` means running or waiting. Reads the (definition_id, id) index.
 */
export async function listEnrollments(ctx: Context, workspaceId: string, sequenceId: string, query: ListEnrollmentsQuery): Promise<{ data: Enrollment[]; nextCursor: string | null }> {
  const db = ctx.database.db;
  const sequence = await requireSequence(db, workspaceId, sequenceId);
  const limit = query.limit ?? enrollmentAdminLimits.defaultPageSize;
  if (!Number.isInteger(limit) || limit < 1 || limit > enrollmentAdminLimits.pageSize) throw invalid('limit', `must be a whole number from 1 to ${enrollmentAdminLimits.pageSize}`);
  if (query.status !== undefined && !(enrollmentStatuses as readonly string[]).includes(query.status)) throw invalid('status', `must be one of ${enrollmentStatuses.join(', ')}`);
  if (query.subscriberId !== undefined && !isUuid(query.subscriberId)) throw invalid('subscriberId', 'must be a subscriber id (a UUID)');
  let email: string | null = null;
  if (query.email !== undefined) {
    email = normalizeEmail(query.email);
    if (email === null) throw invalid('email', 'must be an email address');
  }
  const after = query.cursor ? decodeCursor(query.cursor) : undefined;

  let contactId = query.subscriberId?.toLowerCase();
  if (email !== null) {
    const contact = await contacts.findContactByEmail(db, workspaceId, email);
    if (!contact || (contactId !== undefined && contact.id !== contactId)) return { data: [], nextCursor: null };
    contactId = contact.id;
  }

  let q = db
    .selectFrom('sessions')
    .leftJoin('contacts', 'contacts.id', 'sessions.contact_id')
    .selectAll('sessions')
    .select('contacts.email as email')
    .where('sessions.definition_id', '=', sequence.id)
    .where('sessions.workspace_id', '=', workspaceId);
  if (query.status === 'active') q = q.where('sessions.active', '=', 1);
  else if (query.status !== undefined) q = q.where('sessions.status', '=', query.status);
  if (query.nodeId !== undefined) q = q.where('sessions.current_node', '=', query.nodeId);
  if (contactId !== undefined) q = q.where('sessions.contact_id', '=', contactId);
  if (after !== undefined) q = q.where('sessions.id', '<', after);
  const rows = await q.orderBy('sessions.id', 'desc').limit(limit + 1).execute();
  const page = rows.slice(0, limit);
  return { data: page.map(toEnrollment), nextCursor: rows.length > limit ? encodeCursor(page[page.length - 1]!.id) : null };
}

/** Where a cancel-by-field path reads: the session context, the enrollment key, or the stored event. */
type FieldMatcher = (row: { enrollment_key: string; event: string | null; context: string }) => string | null;

function scalarText(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if ((typeof value === 'number' && Number.isFinite(value)) || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  return null;
}

function matcherFor(fieldPath: string): FieldMatcher {
  if (fieldPath === 'enrollmentKey') return (row) => row.enrollment_key;
  if (fieldPath.startsWith('context.')) {
    const path = fieldPath.slice('context.'.length);
    return (row) => scalarText(valueAtPath(parseJson<unknown>(row.context, {}), path));
  }
  return (row) => scalarText(valueAtPath(parseJson<unknown>(row.event, null), fieldPath));
}

interface CancelSelection {
  contactIds: string[] | null;
  match: { read: FieldMatcher; values: Set<string> } | null;
  dryRun: boolean;
  reason: string;
}

async function readCancel(db: Db, workspaceId: string, input: CancelInput): Promise<CancelSelection> {
  const errors: FieldErrors = {};
  const add = (field: string, message: string) => (errors[field] ??= []).push(message);
  const selected = readSubscribers(input, errors, false);

  const hasPath = input.fieldPath !== undefined && input.fieldPath !== null;
  const hasValues = input.values !== undefined && input.values !== null;
  let match: CancelSelection['match'] = null;
  if (hasPath || hasValues) {
    if (!hasPath) add('fieldPath', 'fieldPath is required with values: a dot path such as order.id, context.orderId or enrollmentKey');
    else if (typeof input.fieldPath !== 'string' || input.fieldPath.length > 200 || !isFieldPath(input.fieldPath)) add('fieldPath', 'fieldPath must be a dot path such as order.id, context.orderId or enrollmentKey');
    const values: string[] = [];
    if (!hasValues) add('values', 'values is required with fieldPath: 1 to 500 strings or numbers');
    else if (!Array.isArray(input.values) || input.values.length === 0 || input.values.length > enrollmentAdminLimits.values) {
      add('values', `values must hold 1 to ${enrollmentAdminLimits.values} strings or numbers`);
    } else {
      input.values.forEach((value, i) => {
        const text = typeof value === 'number' && Number.isFinite(value) ? String(value) : typeof value === 'string' && value.length <= enrollmentAdminLimits.valueLength ? value : null;
        if (text === null) add(`values.${i}`, `values.${i} must be a string of at most ${enrollmentAdminLimits.valueLength} characters or a number`);
        else values.push(text);
      });
    }
    if (hasPath && hasValues && typeof input.fieldPath === 'string') match = { read: matcherFor(input.fieldPath), values: new Set(values) };
  }
  const bySubscriber = selected.emails.length + selected.ids.length > 0;
  if (!bySubscriber && !hasPath && !hasValues && Object.keys(errors).length === 0) {
    add('subscriberIds', 'give subscriberIds or emails, or fieldPath with values, to choose the enrollments to cancel');
  }
  if (input.dryRun !== undefined && input.dryRun !== null && typeof input.dryRun !== 'boolean') add('dryRun', 'dryRun must be true or false');
  if (input.reason !== undefined && input.reason !== null && (typeof input.reason !== 'string' || input.reason.length > enrollmentAdminLimits.reasonLength)) {
    add('reason', `reason must be a string of at most ${enrollmentAdminLimits.reasonLength} characters`);
  }
  if (Object.keys(errors).length > 0) throw invalidFields(errors);

  let contactIds: string[] | null = null;
  if (bySubscriber) {
    const found = await contacts.findContactsByEmails(db, workspaceId, selected.emails);
    contactIds = [...new Set([...selected.ids, ...[...found.values()].map((c) => c.id)])];
  }
  const reason = typeof input.reason === 'string' && input.reason.trim() !== '' ? input.reason.trim() : 'cancelled_by_api';
  return { contactIds, match, dryRun: input.dryRun === true, reason };
}

/**
 * One page of the sequence's active runs after `afterId`, in id order, read through
 * the (definition_id, id) index: cancelling in 100k runs holds one page at a time.
 */
async function activePage(db: Db, workspaceId: string, definitionId: string, contactIds: string[] | null, afterId: string | null) {
  let q = db
    .selectFrom('sessions')
    .select(['id', 'contact_id', 'enrollment_key', 'event', 'context'])
    .where('definition_id', '=', definitionId)
    .where('workspace_id', '=', workspaceId)
    .where('active', '=', 1);
  if (contactIds !== null) q = q.where('contact_id', 'in', contactIds);
  if (afterId !== null) q = q.where('id', '>', afterId);
  return q.orderBy('id').limit(enrollmentAdminLimits.scanPage).execute();
}

/**
 * Cancels the sequence's active runs chosen by subscriber (`subscriberIds`, `emails`)
 * and/or by a field (`fieldPath` + `values`, compared as strings): a path into the
 * event stored on the run (`order.id`), into its context (`context.orderId`), or
 * `enrollmentKey`. Both selectors given narrow each other. The runs stop with
 * `reason` (default `cancelled_by_api`) and their queued, unsent messages are
 * cancelled, all in one transaction. `dryRun` reports the same list and changes
 * nothing.
 *
 * @example
 * await cancelEnrollments(ctx, workspaceId, sequenceId, { fieldPath: 'order.id', values: ['A1'], dryRun: true });
 * // { success: true, dryRun: true, cancelled: 1, enrollments: [{ id, subscriberId, email, enrollmentKey }] }
 */
export async function cancelEnrollments(ctx: Context, workspaceId: string, sequenceId: string, input: CancelInput): Promise<CancelOutcome> {
  const db = ctx.database.db;
  const sequence = await requireSequence(db, workspaceId, sequenceId);
  const selection = await readCancel(db, workspaceId, input);
  if (selection.contactIds !== null && selection.contactIds.length === 0) return { success: true, dryRun: selection.dryRun, cancelled: 0, enrollments: [] };

  const scan = async (target: Db, onPage: (rows: Array<{ id: string; contact_id: string; enrollment_key: string }>) => Promise<string[]>) => {
    const chosen: Array<{ id: string; contact_id: string; enrollment_key: string }> = [];
    let afterId: string | null = null;
    for (;;) {
      const page = await activePage(target, workspaceId, sequence.id, selection.contactIds, afterId);
      if (page.length === 0) break;
      afterId = page[page.length - 1]!.id;
      const matched = selection.match === null ? page : page.filter((row) => {
        const text = selection.match!.read(row);
        return text !== null && selection.match!.values.has(text);
      });
      if (matched.length > 0) {
        const done = new Set(await onPage(matched));
        for (const row of matched) if (done.has(row.id)) chosen.push({ id: row.id, contact_id: row.contact_id, enrollment_key: row.enrollment_key });
      }
      if (page.length < enrollmentAdminLimits.scanPage) break;
    }
    return chosen;
  };

  const chosen = selection.dryRun
    ? await scan(db, async (rows) => rows.map((r) => r.id))
    : await db.transaction().execute((trx) => scan(trx, (rows) => stopSessions(ctx, trx, { workspaceId, sessionIds: rows.map((r) => r.id) }, selection.reason)));

  const emails = new Map<string, string | null>();
  const contactIds = [...new Set(chosen.map((c) => c.contact_id))];
  for (const [id, row] of await contacts.loadContacts(db, contactIds)) emails.set(id, row.email);
  return {
    success: true,
    dryRun: selection.dryRun,
    cancelled: chosen.length,
    enrollments: chosen.map((c) => ({ id: c.id, subscriberId: c.contact_id, email: emails.get(c.contact_id) ?? null, enrollmentKey: c.enrollment_key === '' ? null : c.enrollment_key })),
  };
}
