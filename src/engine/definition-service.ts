import { isoTime } from '../domain/clock.js';
import { decodeCursor, encodeCursor } from '../domain/cursor.js';
import { compileSteps, graphToSteps } from '../domain/compile-steps.js';
import type { DefinitionKind, DefinitionProblem, DefinitionSettings, Graph } from '../domain/definition.js';
import { AppError, invalid, notFound, type FieldErrors } from '../domain/errors.js';
import { newId } from '../domain/ids.js';
import { isPlainObject, parseJson, toJson } from '../domain/json.js';
import { htmlToBlocks } from '../domain/html-to-blocks.js';
import { validateGraph } from '../domain/validate-definition.js';
import type { Db } from '../store/database.js';
import * as repo from '../store/definition-repository.js';
import type { Context } from './context.js';
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

/** Reads and checks a create or replace body into a draft; every problem is named. */
async function buildDraft(ctx: Context, workspaceId: string, kind: DefinitionKind, input: DefinitionInput, partial: Draft | null): Promise<{ name: string; description: string | null; draft: Draft }> {
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
    const type = input.trigger === undefined ? 'api' : input.trigger;
    if (typeof type !== 'string' || !triggerTypes.includes(type)) add('trigger', `trigger must be one of ${triggerTypes.join(', ')}`);
    trigger = { type: typeof type === 'string' ? type : 'api' };
    for (const field of triggerFields) if (input[field] !== undefined) trigger[field] = input[field];
  }

  if (input.steps !== undefined && input.graph !== undefined) add('steps', 'give either steps or graph, not both');
  let graph: Graph | null = partial?.graph ?? { nodes: [], edges: [] };
  let steps: unknown[] | null = partial?.steps ?? null;
  const templateExists = await templateLookup(ctx.database.db, workspaceId);
  if (input.steps !== undefined) {
    if (!Array.isArray(input.steps)) add('steps', 'steps must be an array');
    else if (input.steps.length > 200) add('steps', 'steps may hold at most 200 steps');
    else {
      const compiled = compileSteps(input.steps, { defaultChannel: kind === 'sequence' ? 'email' : 'whatsapp', kind, templateExists, allowEmpty: true });
      if (compiled.problems.length > 0) throw refuse(compiled.problems, 'steps.');
      graph = compiled.graph;
      steps = input.steps;
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
  return { name, description, draft: { graph: editableEmail(graph ?? { nodes: [], edges: [] }), settings, trigger, steps } };
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

export async function createDefinition(ctx: Context, workspaceId: string, kind: DefinitionKind, input: DefinitionInput) {
  if (input.goal !== undefined && input.steps === undefined && input.graph === undefined) {
    throw new AppError('business_rule', 'Writing content from a goal needs an AI endpoint, and none is configured on this server; send steps instead', {
      errors: { goal: ['goal needs an AI endpoint, and none is configured'] },
    });
  }
  const { name, description, draft } = await buildDraft(ctx, workspaceId, kind, input, null);
  const now = ctx.clock.now();
  const row = {
    id: newId(now),
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
  };
  await repo.insertDefinition(ctx.database.db, row);
  return toResource(row);
}

export async function replaceDefinition(ctx: Context, workspaceId: string, kind: DefinitionKind, id: string, input: DefinitionInput) {
  const row = await requireDefinition(ctx, workspaceId, kind, id);
  const current = parseJson<Draft>(row.draft, { graph: { nodes: [], edges: [] }, settings: {}, trigger: { type: 'api' }, steps: null });
  const merged = { ...input, name: input.name ?? row.name };
  const { name, description, draft } = await buildDraft(ctx, workspaceId, kind, merged, current);
  const now = ctx.clock.now();
  await repo.updateDefinition(ctx.database.db, workspaceId, id, { name, description: description ?? row.description, draft: toJson(draft), draft_changed: 1, updated_at: now });
  return withCount(ctx, (await repo.findDefinition(ctx.database.db, workspaceId, kind, id))!);
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
  return toResource(row, counts.get(row.id) ?? 0);
}

export async function listDefinitions(ctx: Context, workspaceId: string, kind: DefinitionKind, options: { limit: number; cursor?: string; status?: string }) {
  const after = options.cursor ? decodeCursor(options.cursor) : undefined;
  const rows = await repo.listDefinitions(ctx.database.db, workspaceId, kind, { limit: options.limit + 1, after, status: options.status });
  const page = rows.slice(0, options.limit);
  const next = rows.length > options.limit ? encodeCursor(page[page.length - 1]!.id) : null;
  const counts = await repo.countSessions(ctx.database.db, page.map((r) => r.id));
  return { data: page.map((r) => toResource(r, counts.get(r.id) ?? 0)), next_cursor: next };
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
  const providers = new Set<string>();
  for (const node of draft.graph.nodes) {
    if (node.type === 'create_discount') {
      const provider = typeof node.discount.provider === 'string' ? node.discount.provider : 'stripe';
      if (provider !== 'builtin') providers.add(provider);
    }
  }
  if (providers.size > 0) {
    const names = [...providers].join(', ');
    throw new AppError('provider_not_connected', `The discount provider ${names} is not connected; connect it or use provider "builtin"`, {
      errors: { steps: [`discount provider ${names} is not connected`] },
    });
  }
  const now = ctx.clock.now();
  await db.transaction().execute(async (trx) => {
    let versionId = row.current_version_id;
    if (row.draft_changed === 1 || versionId === null) {
      const number = (await repo.latestVersionNumber(trx, id)) + 1;
      versionId = newId(now);
      const body: VersionBody = { name: row.name, kind, graph: draft.graph, settings: draft.settings, trigger: draft.trigger };
      await repo.insertVersion(trx, { id: versionId, workspace_id: workspaceId, definition_id: id, version: number, body: toJson(body), created_at: now });
    }
    await repo.updateDefinition(trx, workspaceId, id, { status: 'active', current_version_id: versionId, published_at: now, draft_changed: 0, updated_at: now });
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
    await stopSessions(ctx, trx, { workspaceId, definitionId: id }, 'definition_deleted');
  });
}

export function statusForActions(status: string): string {
  return status === 'active' ? 'published' : status;
}

/** The resource shape (camelCase, as the sequences API documents). */
export function toResource(row: repo.DefinitionRow, sessionsCount = 0) {
  const draft = parseJson<Draft>(row.draft, { graph: { nodes: [], edges: [] }, settings: {}, trigger: { type: 'api' }, steps: null });
  const emailCount = draft.graph.nodes.filter((n) => n.type === 'send_message' && n.channel === 'email').length;
  return {
    id: row.id,
    name: row.name,
    description: row.description,
    kind: row.kind,
    status: row.status,
    trigger: draft.trigger.type,
    triggerConfig: draft.trigger,
    settings: draft.settings,
    steps: (draft.steps ?? graphToSteps(draft.graph)) as object[] | null,
    graph: draft.graph,
    emailCount,
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
