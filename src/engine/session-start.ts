import { abSide, isSplitPercent, type AbSide } from '../domain/ab-split.js';
import { newId } from '../domain/ids.js';
import { rawIn, type Db, type Tx } from '../store/database.js';
import * as definitions from '../store/definition-repository.js';
import * as sessions from '../store/session-repository.js';
import type { Context } from './context.js';
import type { LoadedVersion } from './version-cache.js';
import { emitWebhookEvents, sessionData } from './webhook-emitter.js';

/** The definition a session starts in, as the enrollment paths have loaded it. */
export interface StartTarget {
  id: string;
  workspace_id: string;
  kind: 'sequence' | 'flow';
  /** The published stop condition (see definition-service triggerColumns). */
  stop_type?: string | null;
  stop_key?: string | null;
  /**
   * The A/B test on this sequence: its variant B and the percentage of contacts sent
   * to B (both null without a test). Required, so that no enrollment path can forget it.
   */
  ab_variant_id: string | null;
  ab_split_percent: number | null;
}

/** One contact to start, with what its session carries. */
export interface SessionEntry {
  contactId: string;
  enrollmentKey: string;
  /** The caller's bag (`{{context.*}}`), as JSON. */
  context: string;
  /** The event that enrolled the contact (`{{event.*}}`), as JSON, or null. */
  event: string | null;
  source: string;
}

export interface SessionStart extends SessionEntry {
  definition: StartTarget;
  version: LoadedVersion;
}

/** Why an A/B test's variant cannot take the contacts sent to it. */
export interface AbRefusal {
  reason: 'ab_variant_not_active' | 'ab_variant_has_no_steps';
  message: string;
}

export interface StartedSession {
  /** False when the contact already had an active session for this definition and key (on either side of an A/B test), or was skipped. */
  created: boolean;
  /** The new session, or the active one that stopped this start (null if it ended meanwhile). */
  sessionId: string | null;
  /** Why no session started although none was running. */
  skipped?: 'stop_condition_met';
  /** The definition the session runs: the one enrolled into, or its variant B. */
  definitionId: string;
  /** The side of the A/B test, or null without a test. */
  variant: AbSide | null;
  /** Set when nothing started because the test's variant cannot take enrollments. */
  refused?: AbRefusal;
}

/** A sequence's A/B test, resolved: the variant B with the version its sessions run. */
export interface ResolvedAbTest {
  splitPercent: number;
  variant: StartTarget & { name: string };
  version: LoadedVersion;
}

const defaultFlowTtlMinutes = 30;
/** Rows per insert: well under SQLite's 32,766 parameters with the sessions table's 24 columns. */
const insertChunk = 250;

/**
 * The A/B test of `definition`, or null when it has none. A variant that cannot take
 * enrollments (deleted, not active, or published without steps) is a refusal: the
 * contacts it should receive are not silently sent to A instead, which would bias
 * the test.
 */
export async function resolveAbTest(ctx: Context, trx: Tx | Db, definition: StartTarget): Promise<ResolvedAbTest | AbRefusal | null> {
  if (definition.kind !== 'sequence' || definition.ab_variant_id === null || !isSplitPercent(definition.ab_split_percent)) return null;
  const row = await definitions.findDefinition(trx, definition.workspace_id, 'sequence', definition.ab_variant_id);
  if (!row || row.status !== 'active' || row.current_version_id === null) {
    return { reason: 'ab_variant_not_active', message: `The A/B test's variant sequence ${row ? `"${row.name}" is ${row.status === 'active' ? 'not published' : row.status}` : 'no longer exists'}: enable it, or remove the test with DELETE /api/v1/sequences/{id}/ab-test` };
  }
  const version = (await ctx.versions.load(trx, [row.current_version_id])).get(row.current_version_id);
  if (!version || version.graph.entry === null || version.body.graph.nodes.length === 0) {
    return { reason: 'ab_variant_has_no_steps', message: `The A/B test's variant sequence "${row.name}" has no steps: add steps and enable it again` };
  }
  return { splitPercent: definition.ab_split_percent, variant: { id: row.id, workspace_id: row.workspace_id, kind: row.kind, ab_variant_id: null, ab_split_percent: null, stop_type: row.stop_type, stop_key: row.stop_key, name: row.name }, version };
}

/**
 * Every enrollment ends here, inside the caller's transaction: the API trigger, bulk
 * enrollment and execution, and the automation (tags, lists, segments, events,
 * inactivity). The insert races on the partial unique index (definition, contact,
 * enrollment key) where active = 1, so concurrent starts for the same run make exactly
 * one session.
 */
export async function startSession(ctx: Context, trx: Tx | Db, start: SessionStart): Promise<StartedSession> {
  const [started] = await startSessions(ctx, trx, start.definition, start.version, [start]);
  return started!;
}

/**
 * Starts many contacts in one definition with a handful of statements, whatever their
 * number: one multi-row insert (chunked), and one read for the starts that found a run
 * already active. Results come back in the order of `entries`; a contact given twice
 * with the same key starts once, the second entry reporting the first's session.
 *
 * A/B tests are applied here, so every enrollment path honours them: with a test on
 * the definition (A), each contact's side is a hash of (A, contact), and a contact on
 * side B runs B's published version with `ab_variant` 'B' and `ab_parent_id` A; side A
 * sessions get 'A' and A. The same contact always maps to the same side, so the unique
 * index of that side decides "already running"; a run still active on the other side
 * (the split was changed, or the test added while it ran) stops the start as well,
 * so one contact never receives both versions at once.
 */
export async function startSessions(ctx: Context, trx: Tx | Db, definition: StartTarget, version: LoadedVersion, entries: readonly SessionEntry[]): Promise<StartedSession[]> {
  if (entries.length === 0) return [];
  const test = await resolveAbTest(ctx, trx, definition);
  if (test !== null && 'reason' in test) {
    return entries.map(() => ({ created: false, sessionId: null, definitionId: definition.id, variant: null, refused: test }));
  }
  const now = ctx.clock.now();
  const keyOf = (contactId: string, enrollmentKey: string) => `${contactId}\u0000${enrollmentKey}`;
  // A run that its stop condition would end at once is not started: an onboarding that
  // stops when the contact becomes a customer does not begin for a customer. Each side
  // of an A/B test is checked against its own stop condition.
  const contactIds = entries.map((e) => e.contactId);
  const meeting = { A: await contactsMeetingStopCondition(trx, definition, contactIds), B: test === null ? new Set<string>() : await contactsMeetingStopCondition(trx, test.variant, contactIds) };

  // With a test, a run active on either side counts as already running.
  const activeElsewhere = new Map<string, string>();
  if (test !== null) {
    const rows = await sessions.findActiveSessionsOf(trx, [definition.id, test.variant.id], entries.map((e) => e.contactId));
    for (const row of rows) activeElsewhere.set(keyOf(row.contact_id, row.enrollment_key), row.id);
  }

  type Planned =
    | { row: sessions.NewSessionRow; variant: AbSide | null }
    | { existing: string | null; variant: AbSide | null; definitionId: string }
    | { skipped: 'stop_condition_met'; variant: AbSide | null; definitionId: string }
    | { sameAs: number };
  const firstOf = new Map<string, number>();
  const plans: Planned[] = entries.map((entry, i) => {
    const key = keyOf(entry.contactId, entry.enrollmentKey);
    const first = firstOf.get(key);
    if (first !== undefined) return { sameAs: first };
    firstOf.set(key, i);
    const side = test === null ? null : abSide(definition.id, entry.contactId, test.splitPercent);
    const target = side === 'B' ? test!.variant : definition;
    const runs = side === 'B' ? test!.version : version;
    const active = activeElsewhere.get(key);
    if (active !== undefined) return { existing: active, variant: side, definitionId: target.id };
    if (meeting[side ?? 'A'].has(entry.contactId)) return { skipped: 'stop_condition_met' as const, variant: side, definitionId: target.id };
    const ttlMinutes = target.kind === 'flow' ? Number(runs.body.settings.session_ttl_minutes ?? defaultFlowTtlMinutes) : null;
    return {
      variant: side,
      row: {
        id: newId(now),
        workspace_id: definition.workspace_id,
        definition_id: target.id,
        version_id: runs.id,
        kind: target.kind,
        contact_id: entry.contactId,
        status: 'running',
        active: 1,
        enrollment_key: entry.enrollmentKey,
        current_node: runs.graph.entry,
        wake_at: now,
        expires_at: ttlMinutes === null ? null : now + ttlMinutes * 60_000,
        context: entry.context,
        event: entry.event,
        state: '{"visits":{}}',
        source: entry.source,
        end_reason: null,
        steps_run: 0,
        created_at: now,
        updated_at: now,
        ended_at: null,
        ab_variant: side,
        ab_parent_id: side === null ? null : definition.id,
      },
    };
  });

  const rows = plans.flatMap((p) => ('row' in p ? [p.row] : []));
  const inserted = new Set<string>();
  for (let i = 0; i < rows.length; i += insertChunk) {
    for (const id of await sessions.insertSessionsIfNoneActive(trx, rows.slice(i, i + insertChunk), rawIn(ctx.database, trx))) inserted.add(id);
  }
  // Those that lost the race to a run started meanwhile: read the run that won.
  const lost = rows.filter((r) => !inserted.has(r.id));
  const winners = new Map<string, string>();
  if (lost.length > 0) {
    const found = await sessions.findActiveSessionsOf(trx, [...new Set(lost.map((r) => r.definition_id))], lost.map((r) => r.contact_id));
    for (const row of found) winners.set(`${row.definition_id}\u0000${keyOf(row.contact_id, row.enrollment_key)}`, row.id);
  }

  const results: StartedSession[] = [];
  plans.forEach((plan) => {
    if ('sameAs' in plan) {
      const first = results[plan.sameAs]!;
      results.push({ ...first, created: false });
    } else if ('skipped' in plan) {
      results.push({ created: false, sessionId: null, definitionId: plan.definitionId, variant: plan.variant, skipped: plan.skipped });
    } else if ('existing' in plan) {
      results.push({ created: false, sessionId: plan.existing, definitionId: plan.definitionId, variant: plan.variant });
    } else if (inserted.has(plan.row.id)) {
      results.push({ created: true, sessionId: plan.row.id, definitionId: plan.row.definition_id, variant: plan.variant });
    } else {
      const winner = winners.get(`${plan.row.definition_id}\u0000${keyOf(plan.row.contact_id, plan.row.enrollment_key)}`) ?? null;
      results.push({ created: false, sessionId: winner, definitionId: plan.row.definition_id, variant: plan.variant });
    }
  });
  const started = plans.flatMap((plan) => ('row' in plan && inserted.has(plan.row.id) ? [plan.row] : []));
  await emitWebhookEvents(
    ctx,
    trx,
    started.map((row) => ({
      workspaceId: row.workspace_id,
      type: 'session.started' as const,
      data: () => sessionData({ id: row.id, kind: row.kind, definition_id: row.definition_id, contact_id: row.contact_id, status: 'running', end_reason: null, created_at: now, ended_at: null }),
    })),
  );
  return results;
}

type StopTarget = Pick<StartTarget, 'workspace_id' | 'stop_type' | 'stop_key'>;

/**
 * Which of these contacts already meet the definition's stop condition: has_tag and
 * added_to_list describe a state the contact can already be in; the others are changes.
 */
export async function contactsMeetingStopCondition(trx: Tx | Db, definition: StopTarget, contactIds: readonly string[]): Promise<Set<string>> {
  const key = definition.stop_key ?? null;
  const met = new Set<string>();
  if (key === null || contactIds.length === 0) return met;
  for (let i = 0; i < contactIds.length; i += 900) {
    const part = contactIds.slice(i, i + 900);
    if (definition.stop_type === 'has_tag') {
      const rows = await trx
        .selectFrom('contact_tags')
        .innerJoin('tags', 'tags.id', 'contact_tags.tag_id')
        .select('contact_tags.contact_id')
        .where('contact_tags.contact_id', 'in', part)
        .where('tags.workspace_id', '=', definition.workspace_id)
        .where('tags.name_key', '=', key)
        .execute();
      for (const row of rows) met.add(row.contact_id);
    } else if (definition.stop_type === 'added_to_list') {
      const rows = await trx.selectFrom('list_members').select('contact_id').where('list_id', '=', key).where('contact_id', 'in', part).execute();
      for (const row of rows) met.add(row.contact_id);
    }
  }
  return met;
}
