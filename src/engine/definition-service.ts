import { isoTime } from '../domain/clock.js';
import { decodeCursor, encodeCursor } from '../domain/cursor.js';
import { compileSteps, graphToStepNodes } from '../domain/compile-steps.js';
import type { DefinitionKind, DefinitionProblem, DefinitionSettings, Graph } from '../domain/definition.js';
import type { TemplateLink } from '../domain/email-template.js';
import { AppError, invalid, notFound, type FieldErrors } from '../domain/errors.js';
import { newId } from '../domain/ids.js';
import { isPlainObject, parseJson, toJson } from '../domain/json.js';
import { htmlToBlocks } from '../domain/html-to-blocks.js';
import { tagKey } from '../domain/contact.js';
import { defaultEnrollmentMode, enrollmentModes, isFieldPath, type EnrollmentMode } from '../domain/enrollment.js';
import { isUuid } from '../domain/ids.js';
import { validateGraph } from '../domain/validate-definition.js';
import type { Db } from '../store/database.js';
import { clearTestsUsingVariant } from '../store/ab-test-repository.js';
import * as repo from '../store/definition-repository.js';
import { unlinkDefinitionTemplates } from '../store/email-template-repository.js';
import type { Context } from './context.js';
import { resolveStepTemplates, syncDefinitionTemplates, templateIdsByDefinition } from './email-template-links.js';
import { requireWorkingIntegrations } from './integration-service.js';
import { stopSessions } from './session-control.js';
import type { VersionBody } from './version-cache.js';

/** What a definition's draft holds. */
export interface Draft {
  graph: Graph;
  settings: DefinitionSettings;
  trigger: TriggerConfig;
  /** The linear steps as given, when the definition was written as steps. */
  steps: unknown[] | null;
}

export interface TriggerConfig {
  type: string;
  [key: string]: unknown;
}

export interface DefinitionInput {
  name?: unknown;
  description?: unknown;
  steps?: unknown;
  graph?: unknown;
  settings?: unknown;
  trigger?: unknown;
  [key: string]: unknown;
}

const triggerFields = [
  'listId',
  'tagName',
  'segmentId',
  'eventName',
  'inactiveDays',
  'minCount',
  'timeWindowDays',
  'enrollmentMode',
  'enrollmentFieldPath',
  'stopCondition',
] as const;

const triggerTypes = ['api', 'contact_added', 'tag_added', 'segment_entered', 'event_received', 'inactivity', 'frequency'];

function problemsToErrors(problems: DefinitionProblem[], prefix: string): FieldErrors {
  const errors: FieldErrors = {};
  for (const p of problems) {
    const key = p.path ? `${prefix}${p.path}` : p.node ? `${prefix}nodes.${p.node}` : prefix.replace(/\.$/, '') || 'graph';
    (errors[key] ??= []).push(p.message);
  }
  return errors;
}

function refuse(problems: DefinitionProblem[], prefix: string): AppError {
  const errors = problemsToErrors(problems, prefix);
  const first = problems[0]?.message ?? 'The definition is invalid';
  const more = problems.length > 1 ? ` (and ${problems.length - 1} more problem${problems.length > 2 ? 's' : ''})` : '';
  return new AppError('validation_failed', `${first}${more}`, { errors, extra: { problems } });
}

async function templateLookup(db: Db, workspaceId: string): Promise<(name: string, language?: string) => boolean> {
  const rows = await db.selectFrom('templates').select(['name', 'language']).where('workspace_id', '=', workspaceId).execute();
  const names = new Set(rows.map((r) => r.name));
  const pairs = new Set(rows.map((r) => `${r.name}\u0000${r.language}`));
  return (name, language) => (language ? pairs.has(`${name}\u0000${language}`) || names.has(name) : names.has(name));
}

const stopTypes = ['has_tag', 'does_not_have_tag', 'event_received', 'added_to_list', 'removed_from_list', 'none'] as const;

function positiveInteger(value: unknown, max: number): boolean {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= max;
}

function nonEmptyText(value: unknown, max = 200): value is string {
  return typeof value === 'string' && value.trim().length > 0 && value.length <= max;
}

async function listExists(db: Db, workspaceId: string, id: string): Promise<boolean> {
  return isUuid(id) && (await db.selectFrom('lists').select('id').where('workspace_id', '=', workspaceId).where('id', '=', id).executeTakeFirst()) !== undefined;
}

async function segmentExists(db: Db, workspaceId: string, id: string): Promise<boolean> {
  return isUuid(id) && (await db.selectFrom('segments').select('id').where('workspace_id', '=', workspaceId).where('id', '=', id).executeTakeFirst()) !== undefined;
}

/**
 * Checks the trigger's own fields, its enrollment mode and its stop condition, naming
 * each field, and normalises the stop condition to `{ type, value }`.
 */
async function checkTrigger(db: Db, workspaceId: string, kind: DefinitionKind, trigger: TriggerConfig, add: (field: string, message: string) => void): Promise<void> {
  const type = trigger.type;
  const needsEvent = type === 'event_received' || type === 'inactivity' || type === 'frequency';
  if (needsEvent && !nonEmptyText(trigger.eventName)) add('eventName', `eventName is required for the ${type} trigger (1 to 200 characters)`);
  if (type === 'tag_added' && !nonEmptyText(trigger.tagName, 100)) add('tagName', 'tagName is required for the tag_added trigger (1 to 100 characters)');
  if (type === 'segment_entered') {
    if (typeof trigger.segmentId !== 'string') add('segmentId', 'segmentId is required for the segment_entered trigger');
    else if (!(await segmentExists(db, workspaceId, trigger.segmentId))) add('segmentId', 'no segment with this id in the workspace');
  }
  if (trigger.listId !== undefined && trigger.listId !== null) {
    if (type !== 'contact_added') add('listId', 'listId applies to the contact_added trigger only');
    else if (typeof trigger.listId !== 'string' || !(await listExists(db, workspaceId, trigger.listId))) add('listId', 'no list with this id in the workspace');
  }
  if (type === 'inactivity' && !positiveInteger(trigger.inactiveDays, 3650)) add('inactiveDays', 'inactiveDays is required for the inactivity trigger: a whole number of days from 1 to 3650');
  if (type === 'frequency') {
    if (!positiveInteger(trigger.minCount, 1_000_000)) add('minCount', 'minCount is required for the frequency trigger: a whole number from 1');
    if (!positiveInteger(trigger.timeWindowDays, 3650)) add('timeWindowDays', 'timeWindowDays is required for the frequency trigger: a whole number of days from 1 to 3650');
  }
  if (trigger.enrollmentMode !== undefined && trigger.enrollmentMode !== null) {
    if (typeof trigger.enrollmentMode !== 'string' || !enrollmentModes.includes(trigger.enrollmentMode as EnrollmentMode)) {
      add('enrollmentMode', `enrollmentMode must be one of ${enrollmentModes.join(', ')}`);
    } else if (trigger.enrollmentMode === 'matching_field' && type !== 'event_received') {
      add('enrollmentMode', 'matching_field is only valid with the event_received trigger');
    }
  }
  if (trigger.enrollmentFieldPath !== undefined && trigger.enrollmentFieldPath !== null && trigger.enrollmentFieldPath !== '') {
    if (typeof trigger.enrollmentFieldPath !== 'string' || !isFieldPath(trigger.enrollmentFieldPath)) add('enrollmentFieldPath', 'enrollmentFieldPath must be a dot path such as order.id');
    else if (trigger.enrollmentMode !== 'matching_field') add('enrollmentFieldPath', 'enrollmentFieldPath applies to enrollmentMode matching_field only');
  }
  if (kind === 'flow' && type !== 'api' && trigger.enrollmentMode === 'matching_field') add('enrollmentMode', 'flows run one conversation per contact');
  if ((trigger.enrollmentMode === undefined || trigger.enrollmentMode === null) && kind === 'sequence') {
    const mode = defaultEnrollmentMode(type, typeof trigger.eventName === 'string' ? trigger.eventName : null);
    if (mode !== 'unlimited') trigger.enrollmentMode = mode;
  }
  const stop = trigger.stopCondition;
  if (stop !== undefined && stop !== null) {
    if (!isPlainObject(stop)) {
      add('stopCondition', 'stopCondition must be an object such as {"type": "has_tag", "value": "customer"}');
      return;
    }
    const stopType = stop.type;
    if (typeof stopType !== 'string' || !(stopTypes as readonly string[]).includes(stopType)) {
      add('stopCondition.type', `stopCondition.type must be one of ${stopTypes.join(', ')}`);
      return;
    }
    if (stopType === 'none') {
      trigger.stopCondition = { type: 'none' };
      return;
    }
    const alias = stopType.endsWith('tag') ? stop.tagName : stopType === 'event_received' ? stop.eventName : stop.listId;
    const value = stop.value ?? alias;
    if (!nonEmptyText(value)) {
      add('stopCondition.value', `stopCondition.value is required for ${stopType}: the ${stopType.endsWith('tag') ? 'tag name' : stopType === 'event_received' ? 'event name' : 'list id'}`);
      return;
    }
    if (stopType.endsWith('list') && !(await listExists(db, workspaceId, value))) {
      add('stopCondition.value', 'no list with this id in the workspace');
      return;
    }
    trigger.stopCondition = { type: stopType, value: value.trim() };
  }
}

/** The indexed columns a published definition's trigger and stop condition are found by. */
export function triggerColumns(trigger: TriggerConfig | null): { trigger_type: string; trigger_key: string | null; stop_type: string | null; stop_key: string | null } {
  const type = trigger?.type ?? 'api';
  const text = (v: unknown) => (typeof v === 'string' && v.trim() !== '' ? v.trim() : null);
  let key: string | null = null;
  if (type === 'contact_added') key = text(trigger?.listId);
  else if (type === 'tag_added') key = text(trigger?.tagName) === null ? null : tagKey(text(trigger?.tagName)!);
  else if (type === 'segment_entered') key = text(trigger?.segmentId);
  else if (type === 'event_received' || type === 'inactivity' || type === 'frequency') key = text(trigger?.eventName);
  const stop = isPlainObject(trigger?.stopCondition) ? (trigger!.stopCondition as { type?: unknown; value?: unknown }) : null;
  const stopType = stop && typeof stop.type === 'string' && stop.type !== 'none' ? stop.type : null;
  let stopKey = stopType ? text(stop!.value) : null;
  if (stopKey !== null && stopType!.endsWith('tag')) stopKey = tagKey(stopKey);
  return { trigger_type: type, trigger_key: key, stop_type: stopType, stop_key: stopKey };
}

interface BuiltDraft {
  name: string;
  description: string | null;
  draft: Draft;
  /** The email templates steps named with `templateId`, by the node id each step compiled to. */
  named: Map<string, TemplateLink>;
}

/**
 * Reads and checks a create or replace body into a draft; every problem is named. Runs
 * inside the transaction that writes the draft (`db` is that transaction): the email
 * templates steps name are read, and locked, in it.
 */
async function buildDraft(
  ctx: Context,
  db: Db,
  workspaceId: string,
  kind: DefinitionKind,
  definitionId: string,
  input: DefinitionInput,
  partial: Draft | null,
): Promise<BuiltDraft> {
  const errors: FieldErrors = {};
  const add = (field: string, message: string) => (errors[field] ??= []).push(message);

  const name = typeof input.name === 'string' ? input.name.trim() : '';
  if (typeof input.name !== 'string' || name.length === 0 || name.length > 200) add('name', 'name is required and must be 1 to 200 characters');
  const description = typeof input.description === 'string' ? input.description.slice(0, 2000) : null;

  let settings: DefinitionSettings = partial?.settings ?? {};
  if (input.settings !== undefined) {
    if (!isPlainObject(input.settings)) add('settings', 'settings must be an object');
    else settings = input.settings as DefinitionSettings;
  }
  const ttl = settings.session_ttl_minutes;
  if (ttl !== undefined && (typeof ttl !== 'number' || !Number.isInteger(ttl) || ttl < 1 || ttl > 60 * 24 * 30)) {
    add('settings.session_ttl_minutes', 'settings.session_ttl_minutes must be a whole number of minutes from 1 to 43200');
  }

  let trigger: TriggerConfig = partial?.trigger ?? { type: 'api' };
  if (input.trigger !== undefined || triggerFields.some((f) => input[f] !== undefined)) {
    const type = input.trigger === undefined ? (partial?.trigger.type ?? 'api') : input.trigger;
    trigger = { type: typeof type === 'string' ? type : 'api' };
    // A replace that names only some trigger fields keeps the others.
    if (input.trigger === undefined && partial) for (const field of triggerFields) if (partial.trigger[field] !== undefined) trigger[field] = partial.trigger[field];
    for (const field of triggerFields) if (input[field] !== undefined) trigger[field] = input[field];
    if (typeof type !== 'string' || !triggerTypes.includes(type)) add('trigger', `trigger must be one of ${triggerTypes.join(', ')}`);
    else await checkTrigger(db, workspaceId, kind, trigger, add);
  }

  if (input.steps !== undefined && input.graph !== undefined) add('steps', 'give either steps or graph, not both');
  let graph: Graph | null = partial?.graph ?? { nodes: [], edges: [] };
  let steps: unknown[] | null = partial?.steps ?? null;
  let named = new Map<string, TemplateLink>();
  const templateExists = await templateLookup(db, workspaceId);
  if (input.steps !== undefined) {
    if (!Array.isArray(input.steps)) add('steps', 'steps must be an array');
    else if (input.steps.length > 200) add('steps', 'steps may hold at most 200 steps');
    else {
      // A step may name an email template instead of giving its content: the content is copied in first.
      const resolved = await resolveStepTemplates(db, ctx.database.dialect, workspaceId, definitionId, input.steps);
      for (const [field, messages] of Object.entries(resolved.errors)) (errors[field] ??= []).push(...messages);
      if (Object.keys(resolved.errors).length === 0) {
        const compiled = compileSteps(resolved.steps, { defaultChannel: kind === 'sequence' ? 'email' : 'whatsapp', kind, templateExists, allowEmpty: true });
        if (compiled.problems.length > 0) throw refuse(compiled.problems, 'steps.');
        graph = compiled.graph;
        steps = resolved.steps;
        named = resolved.named;
      }
    }
  } else if (input.graph !== undefined) {
    graph = null;
    steps = null;
    const checked = validateGraph(input.graph, { kind, templateExists, allowEmpty: true });
    if (checked.problems.length > 0) throw refuse(checked.problems, 'graph.');
    graph = checked.graph;
  }
  if (Object.keys(errors).length > 0) {
    const first = Object.values(errors)[0]?.[0] ?? 'The definition is invalid';
    throw new AppError('validation_failed', first, { errors });
  }
  return { name, description, draft: { graph: editableEmail(graph ?? { nodes: [], edges: [] }), settings, trigger, steps }, named };
}

/**
 * Email content given as HTML is stored as blocks, converted by a real HTML parser, so
 * it can be edited block by block afterwards; what the blocks cannot express stays as
 * HTML inside a text block.
 */
function editableEmail(graph: Graph): Graph {
  return {
    ...graph,
    nodes: graph.nodes.map((node) => {
      if (node.type !== 'send_message' || node.channel !== 'email' || !node.content?.html || node.content.blocks) return node;
      const { html, ...rest } = node.content;
      return { ...node, content: { ...rest, blocks: htmlToBlocks(html) } };
    }),
  };
}

export const aiWritingMessage = 'Sequence created. AI is generating email content based on your brand. This typically takes 30-60 seconds.';

/** The AI writing state of a definition created from a goal. */
export interface Enrichment {
  status: 'pending' | 'completed' | 'failed';
  goal: string;
  emailCount: number;
  attempts: number;
  error: string | null;
  requestedAt: number;
  completedAt: number | null;
}

function checkGoal(ctx: Context, input: DefinitionInput): { goal: string; emailCount: number } {
  if (ctx.config.ai === null) {
    throw new AppError('business_rule', 'Writing content from a goal needs an AI endpoint, and none is configured on this server (set NUDGE_AI_BASE_URL); send steps instead', {
      errors: { goal: ['goal needs an AI endpoint, and none is configured (NUDGE_AI_BASE_URL)'] },
    });
  }
  const errors: FieldErrors = {};
  if (typeof input.goal !== 'string' || input.goal.trim().length === 0 || input.goal.length > 4000) errors.goal = ['goal must be a description of 1 to 4000 characters'];
  const count = input.emailCount ?? 5;
  if (typeof count !== 'number' || !Number.isInteger(count) || count < 1 || count > 10) errors.emailCount = ['emailCount must be a whole number from 1 to 10'];
  if (Object.keys(errors).length > 0) throw new AppError('validation_failed', Object.values(errors)[0]![0]!, { errors });
  return { goal: (input.goal as string).trim(), emailCount: count as number };
}

/** A body names its content one way: a goal the AI writes from, or steps (or a graph). */
function refuseGoalWithSteps(input: DefinitionInput): void {
  if (input.goal !== undefined && (input.steps !== undefined || input.graph !== undefined)) {
    const other = input.steps !== undefined ? 'steps' : 'graph';
    throw new AppError('validation_failed', `Send either goal (the emails are written for you) or ${other}, not both`, { errors: { goal: [`goal cannot be combined with ${other}`] } });
  }
}

export async function createDefinition(ctx: Context, workspaceId: string, kind: DefinitionKind, input: DefinitionInput) {
  refuseGoalWithSteps(input);
  const fromGoal = input.goal !== undefined;
  const goal = fromGoal ? checkGoal(ctx, input) : null;
  if (!fromGoal && input.emailCount !== undefined && input.goal === undefined) {
    throw invalid('emailCount', 'applies only with goal');
  }
  const now = ctx.clock.now();
  const id = newId(now);
  // The definition and its email steps' templates are written together, or not at all.
  const { row, links } = await ctx.database.db.transaction().execute(async (trx) => {
    const { name, description, draft, named } = await buildDraft(ctx, trx, workspaceId, kind, id, input, null);
    const enrichment: Enrichment | null = goal === null ? null : { status: 'pending', ...goal, attempts: 0, error: null, requestedAt: now, completedAt: null };
    const row: repo.DefinitionRow = {
      id,
      workspace_id: workspaceId,
      kind,
      name,
      description,
      status: 'draft' as const,
      draft: toJson(draft),
      draft_changed: 1,
      current_version_id: null,
      published_at: null,
      created_at: now,
      updated_at: now,
      deleted_at: null,
      trigger_type: 'api',
      trigger_key: null,
      stop_type: null,
      stop_key: null,
      enrollments_paused: 0,
      enrichment: enrichment === null ? null : toJson(enrichment),
      enrichment_due_at: enrichment === null ? null : now,
      ab_variant_id: null,
      ab_split_percent: null,
    };
    await repo.insertDefinition(trx, row);
    const links = await syncDefinitionTemplates(trx, workspaceId, { id, name }, draft.graph, named, now);
    return { row, links };
  });
  if (row.enrichment !== null) ctx.wake.sessions();
  return toResource(row, 0, links);
}

export async function replaceDefinition(ctx: Context, workspaceId: string, kind: DefinitionKind, id: string, input: DefinitionInput) {
  await requireDefinition(ctx, workspaceId, kind, id);
  refuseGoalWithSteps(input);
  // A new goal writes the emails again; the current draft stays until they are written.
  const goal = input.goal !== undefined ? checkGoal(ctx, input) : null;
  if (goal === null && input.emailCount !== undefined) throw invalid('emailCount', 'applies only with goal');
  const now = ctx.clock.now();
  // Read, checked and written under the row's lock, with the email templates of its steps:
  // an email template edited meanwhile cannot be lost under this draft, nor this draft under it.
  const { row, links, enrichment } = await ctx.database.db.transaction().execute(async (trx) => {
    const row = await repo.lockDefinition(trx, ctx.database.dialect, workspaceId, kind, id);
    if (!row) throw notFound(kind === 'sequence' ? 'Sequence' : 'Flow');
    const current = parseJson<Draft>(row.draft, { graph: { nodes: [], edges: [] }, settings: {}, trigger: { type: 'api' }, steps: null });
    if (goal !== null && parseJson<Enrichment | null>(row.enrichment, null)?.status === 'pending') {
      throw new AppError('business_rule', `The ${kind}'s emails are still being written from its goal; wait until enrichment.status is completed`);
    }
    const merged = { ...input, name: input.name ?? row.name };
    const { name, description, draft: built, named } = await buildDraft(ctx, trx, workspaceId, kind, id, merged, current);
    // The writer fills an empty draft only (steps given while it writes are the user's):
    // a new goal empties it. The published version, if any, runs on meanwhile.
    const draft = goal === null ? built : { ...built, graph: { nodes: [], edges: [] }, steps: null };
    const enrichment: Enrichment | null = goal === null ? null : { status: 'pending', ...goal, attempts: 0, error: null, requestedAt: now, completedAt: null };
    await repo.updateDefinition(trx, workspaceId, id, {
      name,
      description: description ?? row.description,
      draft: toJson(draft),
      draft_changed: 1,
      updated_at: now,
      ...(enrichment ? { enrichment: toJson(enrichment), enrichment_due_at: now } : {}),
    });
    const links = await syncDefinitionTemplates(trx, workspaceId, { id, name }, draft.graph, named, now);
    return { row: (await repo.findDefinition(trx, workspaceId, kind, id))!, links, enrichment };
  });
  if (enrichment !== null) ctx.wake.sessions();
  const counts = await repo.countSessions(ctx.database.db, [row.id]);
  return toResource(row, counts.get(row.id) ?? 0, links);
}

export async function requireDefinition(ctx: Context, workspaceId: string, kind: DefinitionKind, id: string): Promise<repo.DefinitionRow> {
  const row = await repo.findDefinition(ctx.database.db, workspaceId, kind, id);
  if (!row) throw notFound(kind === 'sequence' ? 'Sequence' : 'Flow');
  return row;
}

export async function getDefinition(ctx: Context, workspaceId: string, kind: DefinitionKind, id: string) {
  return withCount(ctx, await requireDefinition(ctx, workspaceId, kind, id));
}

async function withCount(ctx: Context, row: repo.DefinitionRow) {
  const counts = await repo.countSessions(ctx.database.db, [row.id]);
  const links = await templateIdsByDefinition(ctx.database.db, row.workspace_id, [row.id]);
  return toResource(row, counts.get(row.id) ?? 0, links.get(row.id));
}

export async function listDefinitions(ctx: Context, workspaceId: string, kind: DefinitionKind, options: { limit: number; cursor?: string; status?: string }) {
  const after = options.cursor ? decodeCursor(options.cursor) : undefined;
  const rows = await repo.listDefinitions(ctx.database.db, workspaceId, kind, { limit: options.limit + 1, after, status: options.status });
  const page = rows.slice(0, options.limit);
  const next = rows.length > options.limit ? encodeCursor(page[page.length - 1]!.id) : null;
  const counts = await repo.countSessions(ctx.database.db, page.map((r) => r.id));
  const links = await templateIdsByDefinition(ctx.database.db, workspaceId, page.map((r) => r.id));
  return { data: page.map((r) => toResource(r, counts.get(r.id) ?? 0, links.get(r.id))), next_cursor: next };
}

/**
 * Publishing freezes the draft as a new immutable version (unless nothing changed
 * since the last one) and activates the definition. New enrollments use the new
 * version; running sessions finish on the one they started on.
 */
export async function publishDefinition(ctx: Context, workspaceId: string, kind: DefinitionKind, id: string) {
  const db = ctx.database.db;
  const row = await requireDefinition(ctx, workspaceId, kind, id);
  if (row.status === 'archived') throw new AppError('business_rule', `This ${kind} is archived and cannot be published again`);
  const draft = parseJson<Draft>(row.draft, { graph: { nodes: [], edges: [] }, settings: {}, trigger: { type: 'api' }, steps: null });
  const checked = validateGraph(draft.graph, { kind, templateExists: await templateLookup(db, workspaceId), allowEmpty: true });
  if (checked.problems.length > 0) throw refuse(checked.problems, 'graph.');
  const enrichment = parseJson<Enrichment | null>(row.enrichment, null);
  if (enrichment?.status === 'pending') throw new AppError('business_rule', `The ${kind}'s emails are still being written from its goal; poll GET /api/v1/sequences/${id} until enrichment.status is completed`);
  if (draft.graph.nodes.length === 0) {
    throw new AppError('business_rule', `This ${kind} has no steps; add steps before enabling it`, { errors: { steps: ['at least one step is required to enable'] } });
  }
  const providers = new Set<string>();
  for (const node of draft.graph.nodes) {
    if (node.type === 'create_discount') {
      // No provider means Stripe: the reference page's own example names none and asks to connect Stripe first.
      const provider = typeof node.discount.provider === 'string' ? node.discount.provider : 'stripe';
      if (provider !== 'builtin') providers.add(provider);
    }
  }
  // A missing provider, or one whose credentials fail, would fail every discount step later.
  await requireWorkingIntegrations(ctx, workspaceId, [...providers]);
  const now = ctx.clock.now();
  const columns = triggerColumns(draft.trigger);
  await db.transaction().execute(async (trx) => {
    let versionId = row.current_version_id;
    if (row.draft_changed === 1 || versionId === null) {
      const number = (await repo.latestVersionNumber(trx, id)) + 1;
      versionId = newId(now);
      const body: VersionBody = { name: row.name, kind, graph: draft.graph, settings: draft.settings, trigger: draft.trigger };
      await repo.insertVersion(trx, { id: versionId, workspace_id: workspaceId, definition_id: id, version: number, body: toJson(body), created_at: now });
    }
    await repo.updateDefinition(trx, workspaceId, id, { status: 'active', current_version_id: versionId, published_at: now, draft_changed: 0, updated_at: now, ...columns });
    if (columns.trigger_type === 'inactivity') {
      // The scan starts from now: contacts already quiet before the rule existed are not swept up at once.
      const days = Number(draft.trigger.inactiveDays);
      const existing = await trx.selectFrom('trigger_scans').select('definition_id').where('definition_id', '=', id).executeTakeFirst();
      if (!existing) await trx.insertInto('trigger_scans').values({ definition_id: id, workspace_id: workspaceId, scanned_until: now - days * 86_400_000, updated_at: now }).execute();
    }
  });
  return withCount(ctx, (await repo.findDefinition(db, workspaceId, kind, id))!);
}

/** Stops new enrollments; running sessions go on to their end. */
export async function disableDefinition(ctx: Context, workspaceId: string, kind: DefinitionKind, id: string) {
  const row = await requireDefinition(ctx, workspaceId, kind, id);
  if (row.status === 'archived') throw new AppError('business_rule', `This ${kind} is archived`);
  await repo.updateDefinition(ctx.database.db, workspaceId, id, { status: 'paused', updated_at: ctx.clock.now() });
  return withCount(ctx, (await repo.findDefinition(ctx.database.db, workspaceId, kind, id))!);
}

/** Stops new enrollments (API, triggers, events) while the sequence stays active: running sessions go on. */
export async function pauseEnrollments(ctx: Context, workspaceId: string, kind: DefinitionKind, id: string) {
  const row = await requireDefinition(ctx, workspaceId, kind, id);
  if (row.status === 'archived') throw new AppError('business_rule', `This ${kind} is archived`);
  await repo.updateDefinition(ctx.database.db, workspaceId, id, { enrollments_paused: 1, updated_at: ctx.clock.now() });
  return withCount(ctx, (await repo.findDefinition(ctx.database.db, workspaceId, kind, id))!);
}

export async function resumeEnrollments(ctx: Context, workspaceId: string, kind: DefinitionKind, id: string) {
  const row = await requireDefinition(ctx, workspaceId, kind, id);
  if (row.status === 'archived') throw new AppError('business_rule', `This ${kind} is archived`);
  await repo.updateDefinition(ctx.database.db, workspaceId, id, { enrollments_paused: 0, updated_at: ctx.clock.now() });
  return withCount(ctx, (await repo.findDefinition(ctx.database.db, workspaceId, kind, id))!);
}

/** Archives: no new enrollments and it cannot be published again; running sessions go on to their end. */
export async function archiveDefinition(ctx: Context, workspaceId: string, kind: DefinitionKind, id: string) {
  await requireDefinition(ctx, workspaceId, kind, id);
  await repo.updateDefinition(ctx.database.db, workspaceId, id, { status: 'archived', updated_at: ctx.clock.now() });
  return withCount(ctx, (await repo.findDefinition(ctx.database.db, workspaceId, kind, id))!);
}

/** Deletes a definition: it disappears from the API and its running sessions stop. */
export async function deleteDefinition(ctx: Context, workspaceId: string, kind: DefinitionKind, id: string): Promise<void> {
  await requireDefinition(ctx, workspaceId, kind, id);
  const now = ctx.clock.now();
  await ctx.database.db.transaction().execute(async (trx) => {
    await repo.updateDefinition(trx, workspaceId, id, { deleted_at: now, status: 'archived', updated_at: now });
    // A test whose variant is gone would refuse every enrollment of its sequence A: it ends with it.
    await clearTestsUsingVariant(trx, workspaceId, id, now);
    // Its steps' email templates stay in the library, no longer tied to a step.
    await unlinkDefinitionTemplates(trx, workspaceId, id, now);
    await stopSessions(ctx, trx, { workspaceId, definitionId: id }, 'definition_deleted');
  });
}

export function statusForActions(status: string): string {
  return status === 'active' ? 'published' : status;
}

/**
 * The linear steps view, each email step with the `templateId` of its email template.
 * Steps kept as given compile to positional node ids (`step-<n>`); otherwise the view is
 * derived from the graph, node by node.
 */
function stepsView(draft: Draft, templateIds: ReadonlyMap<string, string>): object[] | null {
  const withTemplate = (step: unknown, nodeId: string): object => {
    const templateId = templateIds.get(nodeId);
    return templateId !== undefined && isPlainObject(step) ? { ...step, templateId } : (step as object);
  };
  if (draft.steps !== null) return draft.steps.map((step, i) => withTemplate(step, `step-${i + 1}`));
  return graphToStepNodes(draft.graph)?.map(({ step, nodeId }) => withTemplate(step, nodeId)) ?? null;
}

/** The resource shape (camelCase, as the sequences API documents). `templateIds`: node id → email template id. */
export function toResource(row: repo.DefinitionRow, sessionsCount = 0, templateIds: ReadonlyMap<string, string> = new Map()) {
  const draft = parseJson<Draft>(row.draft, { graph: { nodes: [], edges: [] }, settings: {}, trigger: { type: 'api' }, steps: null });
  const emailCount = draft.graph.nodes.filter((n) => n.type === 'send_message' && n.channel === 'email').length;
  const enrichment = parseJson<Enrichment | null>(row.enrichment, null);
  return {
    id: row.id,
    name: row.name,
    description: row.description,
    kind: row.kind,
    status: row.status,
    trigger: draft.trigger.type,
    triggerConfig: draft.trigger,
    settings: draft.settings,
    steps: stepsView(draft, templateIds),
    graph: draft.graph,
    emailTemplates: draft.graph.nodes.filter((n) => templateIds.has(n.id)).map((n) => ({ nodeId: n.id, templateId: templateIds.get(n.id)! })),
    emailCount: enrichment?.status === 'pending' ? enrichment.emailCount : emailCount,
    enrollmentMode: typeof draft.trigger.enrollmentMode === 'string' ? draft.trigger.enrollmentMode : 'unlimited',
    stopCondition: isPlainObject(draft.trigger.stopCondition) ? draft.trigger.stopCondition : null,
    enrollmentsPaused: row.enrollments_paused === 1,
    abTest: row.ab_variant_id === null || row.ab_split_percent === null ? null : { variantSequenceId: row.ab_variant_id, splitPercent: Number(row.ab_split_percent) },
    enrichment:
      enrichment === null
        ? null
        : { status: enrichment.status, goal: enrichment.goal, emailCount: enrichment.emailCount, error: enrichment.error, completedAt: isoTime(enrichment.completedAt) },
    hasUnpublishedChanges: row.draft_changed === 1 && row.current_version_id !== null,
    currentVersionId: row.current_version_id,
    sessionsCount,
    publishedAt: isoTime(row.published_at),
    createdAt: isoTime(row.created_at),
    updatedAt: isoTime(row.updated_at),
  };
}

export function invalidId(field: string): AppError {
  return invalid(field, 'must be a UUID');
}
