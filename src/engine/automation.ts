import { tagKey } from '../domain/contact.js';
import { isPlainObject, parseJson, toJson } from '../domain/json.js';
import { evaluateSegment, segmentNeeds, type SegmentFacts, type SegmentFilter } from '../domain/segment-filter.js';
import { resolveEnrollmentKey, type EnrollmentMode } from '../domain/enrollment.js';
import * as audience from '../store/audience-repository.js';
import type { AutomationRule } from '../store/audience-repository.js';
import { rawIn, type Db, type Tx } from '../store/database.js';
import { preparedQuery } from '../store/batch.js';
import * as contactsRepo from '../store/engine-contact-repository.js';
import type { Context } from './context.js';
import { workspaceRules, type LoadedSegment } from './automation-rules.js';
import { contactsMeetingStopCondition, resolveAbTest, startSessions } from './session-start.js';
import { stopSessions } from './session-control.js';

/**
 * Triggers, stop conditions and segment membership, applied in the caller's
 * transaction. Every path that changes a contact (tags, lists, fields, events,
 * creation) reports what changed here, so a sequence starts, a run stops or a segment
 * gains a member in the same commit as the change that caused it: a crash can never
 * leave a tag added without its sequence started.
 */

export const dayMs = 86_400_000;

export interface RecordedEvent {
  id: string;
  name: string;
  properties: Record<string, unknown>;
  occurredAt: number;
}

export interface ContactChange {
  contactId: string;
  created?: boolean;
  /** Tag names as stored; compared ignoring case. */
  tagsAdded?: readonly string[];
  tagsRemoved?: readonly string[];
  listsAdded?: readonly string[];
  listsRemoved?: readonly string[];
  /** Names, email, phone or custom attributes changed. */
  attributes?: boolean;
  /** A message's status or a reply changed (segments on engagement). */
  engagement?: boolean;
  event?: RecordedEvent;
}

export interface EnrollmentResult {
  sequenceId: string;
  sequenceName: string;
  contactId: string;
  status: 'enrolled' | 'already_enrolled' | 'skipped';
  reason?: string;
  sessionId?: string;
  enrollmentKey?: string;
  /** With an A/B test on the sequence: the side the contact runs, and the definition of that side. */
  variant?: 'A' | 'B';
  definitionId?: string;
}

export interface AutomationOutcome {
  enrollments: EnrollmentResult[];
  stopped: string[];
  segmentsEntered: Array<{ segmentId: string; contactId: string }>;
  segmentsLeft: Array<{ segmentId: string; contactId: string }>;
}

interface TriggerSettings {
  enrollmentMode: EnrollmentMode;
  enrollmentFieldPath: string | null;
  minCount: number;
  timeWindowDays: number;
}

function settingsOf(trigger: Record<string, unknown> | null): TriggerSettings {
  const t = trigger ?? {};
  const mode = t.enrollmentMode === 'one_time' || t.enrollmentMode === 'matching_field' ? t.enrollmentMode : 'unlimited';
  return {
    enrollmentMode: mode,
    enrollmentFieldPath: typeof t.enrollmentFieldPath === 'string' && t.enrollmentFieldPath.trim() !== '' ? t.enrollmentFieldPath.trim() : null,
    minCount: typeof t.minCount === 'number' ? t.minCount : 1,
    timeWindowDays: typeof t.timeWindowDays === 'number' ? t.timeWindowDays : 1,
  };
}

export interface EnrollOptions {
  source: string;
  /** The event that enrolls: stored on the session as `{{event.*}}`. */
  event?: RecordedEvent | null;
  context?: Record<string, unknown>;
  /** An explicit enrollment key (the API); otherwise the mode decides. */
  enrollmentKey?: string;
}

/**
 * Starts `rule` for a contact inside the caller's transaction, honouring its
 * enrollment mode:
 * - `unlimited`: one active run at a time; a new one may start when it ends;
 * - `one_time`: once ever, recorded in trigger_fires under the key `once`;
 * - `matching_field`: one active run per resolved key (e.g. per order id).
 * The database decides every "already": the partial unique index on active sessions
 * and the trigger_fires primary key.
 */
export async function enrollContact(ctx: Context, trx: Tx | Db, rule: AutomationRule, contactId: string, options: EnrollOptions): Promise<EnrollmentResult> {
  const [result] = await enrollContacts(ctx, trx, rule, [contactId], options);
  return result!;
}

/**
 * enrollContact for many contacts with the same options, in a fixed number of
 * statements (bulk enrollment and execution call it with hundreds). Results come
 * back in the order given; a contact given twice starts once, and its second entry
 * reports `already_enrolled` with the first one's session.
 */
export async function enrollContacts(ctx: Context, trx: Tx | Db, rule: AutomationRule, contactIds: readonly string[], options: EnrollOptions): Promise<EnrollmentResult[]> {
  const base = (contactId: string) => ({ sequenceId: rule.id, sequenceName: rule.name, contactId });
  const skipAll = (reason: string): EnrollmentResult[] => contactIds.map((contactId) => ({ ...base(contactId), status: 'skipped', reason }));
  if (contactIds.length === 0) return [];
  if (rule.status !== 'active' || rule.current_version_id === null) return skipAll('not_active');
  if (rule.enrollments_paused === 1) return skipAll('enrollments_paused');
  const version = (await ctx.versions.load(trx, [rule.current_version_id])).get(rule.current_version_id);
  if (!version || version.graph.entry === null) return skipAll('no_steps');
  const settings = settingsOf(version.body.trigger);

  let key = options.enrollmentKey ?? '';
  if (options.enrollmentKey === undefined && settings.enrollmentMode === 'matching_field') {
    const resolved = resolveEnrollmentKey(options.event?.properties ?? {}, settings.enrollmentFieldPath);
    if (resolved === null) return skipAll('enrollment_key_missing');
    key = resolved;
  }
  const now = ctx.clock.now();
  const unique = [...new Set(contactIds)];
  let allowed = unique;
  const once = new Set<string>();
  const stoppedAlready = new Set<string>();
  if (settings.enrollmentMode === 'one_time') {
    // A refusal of the A/B variant must not use up the contacts' only run, nor a skip
    // for a stop condition the contact already meets.
    const test = await resolveAbTest(ctx, trx, rule);
    if (test !== null && 'reason' in test) return skipAll(test.reason);
    const meeting = await contactsMeetingStopCondition(trx, rule, unique);
    for (const id of meeting) stoppedAlready.add(id);
    const first = await audience.recordFires(trx, rule.workspace_id, rule.id, unique.filter((id) => !meeting.has(id)), 'once', now);
    allowed = unique.filter((id) => first.has(id));
    for (const id of unique) if (!first.has(id) && !meeting.has(id)) once.add(id);
  }
  const context = toJson(options.context ?? {});
  const event = options.event ? toJson(options.event.properties) : null;
  const started = await startSessions(
    ctx,
    trx,
    rule,
    version,
    allowed.map((contactId) => ({ contactId, enrollmentKey: key, context, event, source: options.source })),
  );
  const byContact = new Map<string, EnrollmentResult>();
  allowed.forEach((contactId, i) => {
    const s = started[i]!;
    const result: EnrollmentResult = s.refused
      ? { ...base(contactId), status: 'skipped', reason: s.refused.reason }
      : s.skipped
        ? { ...base(contactId), status: 'skipped', reason: s.skipped }
        : { ...base(contactId), status: s.created ? 'enrolled' : 'already_enrolled', sessionId: s.sessionId ?? undefined, enrollmentKey: key, ...(s.variant === null ? {} : { variant: s.variant, definitionId: s.definitionId }) };
    byContact.set(contactId, result);
  });
  for (const contactId of once) byContact.set(contactId, { ...base(contactId), status: 'skipped', reason: 'already_enrolled_once' });
  for (const contactId of stoppedAlready) byContact.set(contactId, { ...base(contactId), status: 'skipped', reason: 'stop_condition_met' });
  const seen = new Set<string>();
  return contactIds.map((contactId) => {
    const result = byContact.get(contactId)!;
    if (seen.has(contactId) && result.status === 'enrolled') return { ...result, status: 'already_enrolled' };
    seen.add(contactId);
    return result;
  });
}

/** Wakes the scheduler after the caller's commit when anything was enrolled. */
export function wakeForOutcome(ctx: Context, outcome: { enrollments: EnrollmentResult[] }): void {
  if (outcome.enrollments.some((e) => e.status === 'enrolled')) ctx.wake.sessions();
}

function affects(segment: LoadedSegment, change: ContactChange, entered: ReadonlySet<string>): boolean {
  const d = segment.depends;
  if (change.created) return true;
  if (change.attributes && d.attributes) return true;
  if (change.engagement && d.engagement) return true;
  if (d.tags.size > 0 && [...(change.tagsAdded ?? []), ...(change.tagsRemoved ?? [])].some((t) => d.tags.has(t.toLowerCase()))) return true;
  if (d.lists.size > 0 && [...(change.listsAdded ?? []), ...(change.listsRemoved ?? [])].some((l) => d.lists.has(l))) return true;
  if (change.event && d.events.has(change.event.name)) return true;
  void entered;
  return false;
}

/** Everything a segment filter may ask about one contact. */
export async function loadSegmentFacts(db: Db, contactId: string, filters: readonly SegmentFilter[], now: number): Promise<SegmentFacts | null> {
  return (await loadSegmentFactsMany(db, [contactId], filters, now)).get(contactId) ?? null;
}

/**
 * The same for many contacts with one query per kind of fact (and per count a filter
 * needs), whatever their number: the full computation of a new segment reads a page
 * of contacts this way. Contacts that do not exist are absent.
 */
export async function loadSegmentFactsMany(db: Db, contactIds: readonly string[], filters: readonly SegmentFilter[], now: number): Promise<Map<string, SegmentFacts>> {
  const ids = [...contactIds];
  const rows = await contactsRepo.loadContacts(db, ids);
  const tags = await contactsRepo.loadTagNames(db, ids);
  const lists = await audience.listIdsOfContacts(db, ids);
  const counts = new Map<string, Map<string, number>>();
  for (const filter of filters) {
    for (const need of segmentNeeds(filter)) {
      if (counts.has(need.key)) continue;
      const since = need.withinDays === null ? null : now - need.withinDays * dayMs;
      counts.set(
        need.key,
        need.kind === 'event'
          ? await audience.countEventsMany(db, ids, need.eventName ?? '', since)
          : await audience.countEngagementMany(db, ids, need.metric ?? '', need.channel ?? null, since),
      );
    }
  }
  const out = new Map<string, SegmentFacts>();
  for (const [id, row] of rows) {
    out.set(id, {
      contact: {
        email: row.email,
        phone: row.phone,
        firstName: row.first_name,
        lastName: row.last_name,
        name: row.name,
        timezone: row.timezone,
        language: row.language,
        source: row.source,
        createdAt: Number(row.created_at),
        attributes: parseJson<Record<string, unknown>>(row.metadata, {}),
      },
      tags: new Set((tags.get(id) ?? []).map((t) => t.toLowerCase())),
      lists: new Set(lists.get(id) ?? []),
      counts: new Map([...counts].map(([key, byContact]) => [key, byContact.get(id) ?? 0])),
    });
  }
  return out;
}

/**
 * When a member's result may change with the clock alone: the earliest moment an
 * event counted inside a window leaves it. Engagement windows are looked at daily.
 * One query per windowed event the filter counts, for all the contacts.
 */
async function recheckAtMany(db: Db, contactIds: readonly string[], filter: SegmentFilter, now: number): Promise<Map<string, number | null>> {
  const due = new Map<string, number | null>(contactIds.map((id) => [id, null]));
  const earliest = (id: string, at: number) => {
    const current = due.get(id);
    if (current === null || current === undefined || at < current) due.set(id, at);
  };
  for (const need of segmentNeeds(filter)) {
    if (need.withinDays === null) continue;
    const windowMs = need.withinDays * dayMs;
    if (need.kind === 'event') {
      for (const [id, oldest] of await audience.oldestEventsSince(db, contactIds, need.eventName ?? '', now - windowMs)) earliest(id, oldest + windowMs + 1);
    } else {
      for (const id of contactIds) earliest(id, now + dayMs);
    }
  }
  return due;
}

/**
 * Computes one segment for a page of contacts and records who is in it, with no
 * "entered" firing: the full pass over a workspace when a segment is created or its
 * filter changes.
 */
export async function computeSegmentPage(db: Db, workspaceId: string, segment: LoadedSegment, contactIds: readonly string[], now: number): Promise<void> {
  const facts = await loadSegmentFactsMany(db, contactIds, [segment.filter], now);
  const current = await audience.segmentMembersAmong(db, segment.id, contactIds);
  const rechecks = segment.depends.timeWindows ? await recheckAtMany(db, contactIds, segment.filter, now) : null;
  for (const id of contactIds) {
    const contact = facts.get(id);
    const member = contact !== undefined && evaluateSegment(segment.filter, contact);
    if (member && !current.has(id)) await audience.addSegmentMember(db, workspaceId, segment.id, id, now);
    else if (!member && current.has(id)) await audience.removeSegmentMember(db, segment.id, id);
    if (rechecks && contact !== undefined) await audience.setSegmentRecheck(db, workspaceId, segment.id, id, rechecks.get(id) ?? null);
  }
}

/**
 * Re-evaluates the given segments for one contact and records entries and exits.
 * Returns the segments entered and left.
 */
export async function refreshSegments(db: Db, workspaceId: string, contactId: string, segments: readonly LoadedSegment[], now: number): Promise<{ entered: string[]; left: string[] }> {
  const entered: string[] = [];
  const left: string[] = [];
  if (segments.length === 0) return { entered, left };
  const facts = await loadSegmentFacts(db, contactId, segments.map((s) => s.filter), now);
  const current = new Set(await audience.segmentIdsOfContact(db, contactId));
  for (const segment of segments) {
    const member = facts !== null && evaluateSegment(segment.filter, facts);
    if (member && !current.has(segment.id)) {
      if (await audience.addSegmentMember(db, workspaceId, segment.id, contactId, now)) entered.push(segment.id);
    } else if (!member && current.has(segment.id)) {
      if (await audience.removeSegmentMember(db, segment.id, contactId)) left.push(segment.id);
    }
    if (segment.depends.timeWindows && facts !== null) await audience.setSegmentRecheck(db, workspaceId, segment.id, contactId, (await recheckAtMany(db, [contactId], segment.filter, now)).get(contactId) ?? null);
  }
  return { entered, left };
}

function stopMatches(rule: AutomationRule, change: ContactChange): boolean {
  const key = rule.stop_key;
  switch (rule.stop_type) {
    case 'has_tag':
      return key !== null && (change.tagsAdded ?? []).some((t) => tagKey(t) === key);
    case 'does_not_have_tag':
      return key !== null && (change.tagsRemoved ?? []).some((t) => tagKey(t) === key);
    case 'event_received':
      return key !== null && change.event?.name === key;
    case 'added_to_list':
      return key !== null && (change.listsAdded ?? []).includes(key);
    case 'removed_from_list':
      return key !== null && (change.listsRemoved ?? []).includes(key);
    default:
      return false;
  }
}

function triggerMatches(rule: AutomationRule, change: ContactChange, entered: readonly string[]): boolean {
  const key = rule.trigger_key;
  switch (rule.trigger_type) {
    case 'contact_added':
      return key === null ? change.created === true : (change.listsAdded ?? []).includes(key);
    case 'tag_added':
      return key !== null && (change.tagsAdded ?? []).some((t) => tagKey(t) === key);
    case 'segment_entered':
      return key !== null && entered.includes(key);
    case 'event_received':
    case 'frequency':
      return key !== null && change.event?.name === key;
    default:
      return false;
  }
}

/**
 * Applies triggers, stop conditions and segment membership for the given changes in
 * the caller's transaction. Stops run before enrollments, so a change that both
 * stops a run and starts one (e.g. a tag) never stops the run it just started.
 */
export async function applyContactChanges(ctx: Context, trx: Tx | Db, workspaceId: string, changes: readonly ContactChange[], source: string): Promise<AutomationOutcome> {
  const outcome: AutomationOutcome = { enrollments: [], stopped: [], segmentsEntered: [], segmentsLeft: [] };
  if (changes.length === 0) return outcome;
  const { rules, segments } = await workspaceRules(ctx, trx, workspaceId);
  const now = ctx.clock.now();
  // Triggers without an event (a contact created, a tag, a list, a segment) start many
  // contacts in one batch per rule when each contact changes once: a bulk call creating
  // 100 contacts costs one insert per contact_added rule, not 100. A contact changed
  // twice keeps the order of the changes (its second change may stop what its first started).
  const batchable = new Set(changes.map((c) => c.contactId)).size === changes.length;
  const batched = new Map<AutomationRule, string[]>();
  // Each contact changing once, its stops come before anything else of the batch, for
  // all contacts at once: a read per 500 contacts and one stop per rule, instead of a
  // read and a stop per contact. Neither a segment's membership nor another contact's
  // runs depend on them, so the outcome is the same as stopping contact by contact.
  if (batchable) await stopMatching(ctx, trx, workspaceId, rules, changes, outcome);
  for (const change of changes) {
    const relevant = segments.filter((s) => affects(s, change, new Set()));
    const { entered, left } = await refreshSegments(trx, workspaceId, change.contactId, relevant, now);
    for (const segmentId of entered) outcome.segmentsEntered.push({ segmentId, contactId: change.contactId });
    for (const segmentId of left) outcome.segmentsLeft.push({ segmentId, contactId: change.contactId });

    if (!batchable) await stopMatching(ctx, trx, workspaceId, rules, [change], outcome);

    for (const rule of rules) {
      if (rule.status !== 'active' || !triggerMatches(rule, change, entered)) continue;
      if (rule.trigger_type === 'frequency') {
        const result = await frequencyReached(ctx, trx, rule, change, now);
        if (!result) continue;
      }
      if (batchable && !change.event) batched.set(rule, [...(batched.get(rule) ?? []), change.contactId]);
      else outcome.enrollments.push(await enrollContact(ctx, trx, rule, change.contactId, { source: `trigger:${rule.trigger_type}`, event: change.event ?? null }));
    }
  }
  for (const [rule, contactIds] of batched) outcome.enrollments.push(...(await enrollContacts(ctx, trx, rule, contactIds, { source: `trigger:${rule.trigger_type}`, event: null })));
  void source;
  return outcome;
}

/**
 * Stops the active runs whose stop condition these changes meet: one read of the
 * contacts' active runs in those definitions per 500 contacts, then one stop per rule.
 */
async function stopMatching(ctx: Context, trx: Tx | Db, workspaceId: string, rules: readonly AutomationRule[], changes: readonly ContactChange[], outcome: AutomationOutcome): Promise<void> {
  const matched = new Map<AutomationRule, Set<string>>();
  for (const rule of rules) {
    if (rule.stop_type === null) continue;
    for (const change of changes) {
      if (!stopMatches(rule, change)) continue;
      const contacts = matched.get(rule) ?? new Set<string>();
      contacts.add(change.contactId);
      matched.set(rule, contacts);
    }
  }
  if (matched.size === 0) return;
  const definitionIds = [...matched.keys()].map((r) => r.id);
  const contactIds = [...new Set([...matched.values()].flatMap((c) => [...c]))];
  const active: Array<{ id: string; definition_id: string; contact_id: string }> = [];
  const raw = rawIn(ctx.database, trx);
  for (let i = 0; i < contactIds.length; i += 500) {
    if (raw) {
      // SQLite: one statement prepared once, the lists as JSON arrays. `active = 1` is
      // written literally, so the partial index of active sessions can serve it.
      active.push(
        ...(preparedQuery(
          raw,
          'select id, definition_id, contact_id from sessions where contact_id in (select value from json_each(?)) and active = 1 and definition_id in (select value from json_each(?))',
        ).all(JSON.stringify(contactIds.slice(i, i + 500)), JSON.stringify(definitionIds)) as typeof active),
      );
      continue;
    }
    active.push(
      ...(await trx
        .selectFrom('sessions')
        .select(['id', 'definition_id', 'contact_id'])
        .where('contact_id', 'in', contactIds.slice(i, i + 500))
        .where('active', '=', 1)
        .where('definition_id', 'in', definitionIds)
        .execute()),
    );
  }
  for (const [rule, contacts] of matched) {
    const sessionIds = active.filter((s) => s.definition_id === rule.id && contacts.has(s.contact_id)).map((s) => s.id);
    if (sessionIds.length === 0) continue;
    outcome.stopped.push(...(await stopSessions(ctx, trx, { workspaceId, sessionIds }, `stop_condition:${rule.stop_type}`)));
  }
}

/**
 * A message to or from these contacts was sent, delivered, read, failed or answered:
 * segments that count messages are re-evaluated for them, in the caller's
 * transaction. Costs one read of the workspace's rule counter when no segment counts
 * messages, which is the common case on the engine's hot path. Returns whether a
 * sequence started (segment_entered): the caller wakes the scheduler after its commit.
 */
export async function reportEngagement(ctx: Context, trx: Tx | Db, workspaceId: string, contactIds: Iterable<string>): Promise<boolean> {
  const unique = [...new Set(contactIds)];
  if (unique.length === 0) return false;
  if (!(await workspaceRules(ctx, trx, workspaceId)).engagement) return false;
  const outcome = await applyContactChanges(ctx, trx, workspaceId, unique.map((contactId) => ({ contactId, engagement: true })), 'engagement');
  return outcome.enrollments.some((e) => e.status === 'enrolled');
}

/**
 * A frequency rule fires when the contact's count of the event inside the window
 * reaches `minCount`, and then not again until the window since that firing has
 * passed: three purchases in a week fire once, not on the fourth and fifth.
 */
async function frequencyReached(ctx: Context, trx: Tx | Db, rule: AutomationRule, change: ContactChange, now: number): Promise<boolean> {
  const version = rule.current_version_id ? (await ctx.versions.load(trx, [rule.current_version_id])).get(rule.current_version_id) : undefined;
  if (!version) return false;
  const { minCount, timeWindowDays } = settingsOf(version.body.trigger);
  const windowMs = timeWindowDays * dayMs;
  const count = await audience.countEvents(trx, change.contactId, rule.trigger_key ?? '', now - windowMs);
  if (count < minCount) return false;
  if (await audience.recordFire(trx, rule.workspace_id, rule.id, change.contactId, 'frequency', now)) return true;
  const last = await audience.lastFire(trx, rule.id, change.contactId, 'frequency');
  if (last !== null && last > now - windowMs) return false;
  await audience.moveFire(trx, rule.id, change.contactId, 'frequency', now);
  return true;
}

/**
 * The inactivity scan: for each active `inactivity` rule, starts the contacts whose
 * last `eventName` event is now `inactiveDays` old. It reads only the slice of the
 * (name, last_at) index that crossed the threshold since the previous scan, so its
 * cost follows the contacts going quiet, never the ones that are active. Each quiet
 * spell fires once (keyed by its last event time); a contact that comes back and goes
 * quiet again fires again. Contacts that never sent the event are not inactive: they
 * were never active.
 */
export async function scanInactivity(ctx: Context, batch = 500): Promise<number> {
  const db = ctx.database.db;
  const rules = await audience.rulesWithTrigger(db, 'inactivity');
  let started = 0;
  for (const rule of rules) {
    if (rule.current_version_id === null || rule.trigger_key === null) continue;
    const version = (await ctx.versions.load(db, [rule.current_version_id])).get(rule.current_version_id);
    const days = Number((version?.body.trigger as Record<string, unknown> | null)?.inactiveDays ?? 0);
    if (!version || !(days > 0)) continue;
    for (;;) {
      const outcome = await db.transaction().execute(async (trx) => {
        const now = ctx.clock.now();
        const cutoff = now - days * dayMs;
        const watermark = (await audience.scanWatermark(trx, rule.id)) ?? cutoff;
        if (watermark >= cutoff) return { done: true, enrolled: [] as EnrollmentResult[] };
        let rows = await audience.contactsGoneQuiet(trx, rule.workspace_id, rule.trigger_key!, watermark, cutoff, batch);
        const full = rows.length === batch;
        if (full) {
          // Finish every contact sharing the last timestamp, so the watermark can move past it.
          const lastAt = rows[rows.length - 1]!.last_at;
          rows = [...rows.filter((r) => r.last_at !== lastAt), ...(await audience.contactsQuietAt(trx, rule.workspace_id, rule.trigger_key!, lastAt))];
        }
        const enrolled: EnrollmentResult[] = [];
        for (const row of rows) {
          if (!(await audience.recordFire(trx, rule.workspace_id, rule.id, row.contact_id, `inactive:${row.last_at}`, now))) continue;
          enrolled.push(await enrollContact(ctx, trx, rule, row.contact_id, { source: 'trigger:inactivity' }));
        }
        await audience.setScanWatermark(trx, rule.workspace_id, rule.id, full ? rows[rows.length - 1]!.last_at : cutoff, now);
        return { done: !full, enrolled };
      });
      started += outcome.enrolled.filter((e) => e.status === 'enrolled').length;
      wakeForOutcome(ctx, { enrollments: outcome.enrolled });
      if (outcome.done) break;
    }
  }
  return started;
}

/** Segment memberships whose time window moved: re-evaluated when due. */
export async function recheckSegments(ctx: Context, batch = 500): Promise<number> {
  const db = ctx.database.db;
  const now = ctx.clock.now();
  const due = await audience.dueSegmentRechecks(db, now, batch);
  if (due.length === 0) return 0;
  const byContact = new Map<string, { workspaceId: string; segmentIds: string[] }>();
  for (const row of due) {
    const entry = byContact.get(row.contact_id) ?? { workspaceId: row.workspace_id, segmentIds: [] };
    entry.segmentIds.push(row.segment_id);
    byContact.set(row.contact_id, entry);
  }
  const enrolled: EnrollmentResult[] = [];
  await db.transaction().execute(async (trx) => {
    for (const [contactId, { workspaceId, segmentIds }] of byContact) {
      const loaded = await workspaceRules(ctx, trx, workspaceId);
      const segments = loaded.segments.filter((s) => segmentIds.includes(s.id));
      for (const id of segmentIds) if (!segments.some((r) => r.id === id)) await audience.setSegmentRecheck(trx, workspaceId, id, contactId, null);
      const { entered } = await refreshSegments(trx, workspaceId, contactId, segments, now);
      for (const segmentId of segmentIds) {
        // A recheck that found nothing more to wait for is done.
        const still = await trx.selectFrom('segment_rechecks').select('due_at').where('segment_id', '=', segmentId).where('contact_id', '=', contactId).executeTakeFirst();
        if (still && Number(still.due_at) <= now) await audience.setSegmentRecheck(trx, workspaceId, segmentId, contactId, null);
      }
      if (entered.length > 0) {
        const rules = loaded.rules.filter((r) => r.status === 'active' && r.trigger_type === 'segment_entered' && entered.includes(r.trigger_key ?? ''));
        for (const rule of rules) enrolled.push(await enrollContact(ctx, trx, rule, contactId, { source: 'trigger:segment_entered' }));
      }
    }
  });
  wakeForOutcome(ctx, { enrollments: enrolled });
  return due.length;
}

export function isEventProperties(value: unknown): value is Record<string, unknown> {
  return isPlainObject(value);
}
