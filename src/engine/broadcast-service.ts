import type { RenderedContent } from '../channels/channel.js';
import {
  checkBroadcastVariables,
  editableStatuses,
  parseAudience,
  parseScheduledAt,
  type Audience,
  type BroadcastStatus,
  broadcastStatuses,
} from '../domain/broadcast.js';
import { isoTime } from '../domain/clock.js';
import { contactFieldsOf, tagKey } from '../domain/contact.js';
import { decodeCursor, encodeCursor } from '../domain/cursor.js';
import { AppError, invalid, invalidFields, notFound, toError, type FieldErrors } from '../domain/errors.js';
import { isUuid, newId } from '../domain/ids.js';
import { parseJson, toJson } from '../domain/json.js';
import { renderTemplate, type MergeScope } from '../domain/merge-tags.js';
import { placeholdersOf } from '../domain/message-template.js';
import * as repo from '../store/broadcast-repository.js';
import type { AudienceSource, BroadcastCounts, BroadcastRow } from '../store/broadcast-repository.js';
import type { Db, Tx } from '../store/database.js';
import * as contactsRepo from '../store/engine-contact-repository.js';
import * as messagesRepo from '../store/message-repository.js';
import type { NewMessageRow } from '../store/message-repository.js';
import { findTagByKey } from '../store/tag-repository.js';
import * as templates from '../store/template-repository.js';
import type { TemplateRow } from '../store/template-repository.js';
import { findWorkspace } from '../store/workspace-repository.js';
import type { ChannelRegistry } from './channel-registry.js';
import type { Context } from './context.js';
import { contactScope } from './interpreter.js';
import { outcomeOf } from './send-outcome.js';
import { componentsOf, pickLanguage, sendableLanguages, templateContent, workspaceLanguage } from './template-service.js';

/**
 * Broadcasts: one approved WhatsApp template sent once to a tag, a list, a segment or
 * listed contacts, now or at `scheduled_at`.
 *
 * Lifecycle: `draft` (saved, not going out) → `scheduled` (due at its time) →
 * `sending` (a worker is queueing its messages) → `completed` (every contact of the
 * audience has its message queued, or was skipped), or `failed` (the template stopped
 * being sendable, the audience disappeared), or `cancelled`. Until sending starts
 * every field may change; afterwards only cancelling.
 *
 * The worker queues the audience a chunk at a time (`queueBroadcastChunk`): each
 * chunk's messages and the cursor past its last contact commit in one transaction,
 * and each message carries the dedupe key `broadcast:<id>:<contact>`, so a crash
 * resumes exactly after the last committed chunk and no contact is ever queued twice.
 * The dispatcher sends the queued messages under the provider's rate limit, like any
 * other; counts come from the messages, so status callbacks move them with no extra
 * bookkeeping.
 *
 * Consent: a contact who opted out of WhatsApp is skipped, whatever the template's
 * category. A direct utility template may still reach such a contact (it answers
 * something that contact did), but a broadcast is one message to many that none of
 * them asked for, which an opt-out is exactly meant to stop.
 */

export interface BroadcastView {
  id: string;
  name: string;
  status: string;
  template_id: string;
  template_name: string | null;
  language: string | null;
  variables: Record<string, string>;
  audience: Audience;
  scheduled_at: string | null;
  started_at: string | null;
  completed_at: string | null;
  /** Contacts a message was addressed to so far (the skipped ones aside; see `counts` for what became of them). */
  recipients: number;
  /** Contacts of the audience left out: opted out of WhatsApp, or without a phone. */
  skipped: number;
  counts: BroadcastCounts;
  error: string | null;
  created_at: string;
  updated_at: string;
}

export interface BroadcastInput {
  name?: unknown;
  template_id?: unknown;
  language?: unknown;
  variables?: unknown;
  audience?: unknown;
  scheduled_at?: unknown;
}

function audienceOf(row: BroadcastRow): Audience {
  return parseJson<Audience>(row.audience, { type: 'contacts', contact_ids: [] });
}

function toView(row: BroadcastRow, templateName: string | null, counts: BroadcastCounts): BroadcastView {
  return {
    id: row.id,
    name: row.name,
    status: row.status,
    template_id: row.template_id,
    template_name: templateName,
    language: row.language,
    variables: parseJson<Record<string, string>>(row.variables, {}),
    audience: audienceOf(row),
    scheduled_at: isoTime(row.scheduled_at),
    started_at: isoTime(row.started_at),
    completed_at: isoTime(row.completed_at),
    recipients: row.recipients,
    skipped: row.skipped,
    counts,
    error: row.error,
    created_at: isoTime(row.created_at),
    updated_at: isoTime(row.updated_at),
  };
}

async function templateNames(db: Db, workspaceId: string, ids: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const id of new Set(ids)) {
    const row = await templates.findTemplate(db, workspaceId, id);
    if (row) out.set(id, row.name);
  }
  return out;
}

async function views(db: Db, workspaceId: string, rows: BroadcastRow[]): Promise<BroadcastView[]> {
  const names = await templateNames(db, workspaceId, rows.map((r) => r.template_id));
  const counts = await repo.countBroadcastMessages(db, workspaceId, rows.map((r) => r.id));
  return rows.map((r) => toView(r, names.get(r.template_id) ?? null, counts.get(r.id) ?? { ...repo.noCounts }));
}

async function requireBroadcast(db: Db, workspaceId: string, id: string): Promise<BroadcastRow> {
  const row = isUuid(id) ? await repo.findBroadcast(db, workspaceId, id.toLowerCase()) : undefined;
  if (!row) throw notFound('Broadcast');
  return row;
}

function checkName(value: unknown): string {
  if (typeof value !== 'string' || value.trim() === '' || value.trim().length > 200) throw invalid('name', 'must be a text of 1 to 200 characters');
  return value.trim();
}

/** Checks that the audience's tag, list, segment or contacts exist in the workspace. */
async function checkAudienceExists(db: Db, workspaceId: string, audience: Audience): Promise<void> {
  switch (audience.type) {
    case 'tag':
      if (!(await findTagByKey(db, workspaceId, tagKey(audience.tag)))) throw invalid('audience.tag', `names no tag in this workspace ("${audience.tag}")`);
      return;
    case 'segment':
      if (!(await repo.segmentExists(db, workspaceId, audience.segment_id))) throw invalid('audience.segment_id', 'names no segment in this workspace');
      return;
    case 'list':
      if (!(await repo.listExists(db, workspaceId, audience.list_id))) throw invalid('audience.list_id', 'names no list in this workspace');
      return;
    case 'contacts': {
      const found = await repo.existingContactIds(db, workspaceId, audience.contact_ids);
      const errors: FieldErrors = {};
      audience.contact_ids.forEach((id, i) => {
        if (!found.has(id)) errors[`audience.contact_ids.${i}`] = [`audience.contact_ids.${i} names no contact in this workspace`];
      });
      if (Object.keys(errors).length > 0) throw invalidFields(errors);
    }
  }
}

interface CheckedTemplate {
  row: TemplateRow;
  /** The language fixed by `language`, or null: each contact gets the best approved one. */
  language: string | null;
}

/**
 * The template must exist and be approved (in `language` when given), and the
 * variables must fill every placeholder of each language a recipient could get, and
 * nothing else.
 */
async function checkTemplate(db: Db, workspaceId: string, templateId: unknown, language: unknown, variables: Record<string, string>): Promise<CheckedTemplate> {
  if (typeof templateId !== 'string' || templateId === '') throw invalid('template_id', 'is required: the id of an approved template (see GET /api/v1/dropdowns/templates)');
  if (language !== undefined && language !== null && (typeof language !== 'string' || language.length > 20)) throw invalid('language', 'must be a language code such as en_US');
  const row = isUuid(templateId) ? await templates.findTemplate(db, workspaceId, templateId.toLowerCase()) : undefined;
  if (!row) throw invalid('template_id', 'names no template in this workspace');
  const { approved, chosen } = sendableLanguages(row, await templates.listTemplateLanguages(db, workspaceId, row.name), (language as string | null | undefined) ?? undefined);
  const candidates = chosen ? [chosen] : approved;
  const keys = new Set(candidates.flatMap((t) => placeholdersOf(componentsOf(t)).map((p) => p.key)));
  const unknown = Object.keys(variables).filter((k) => !keys.has(k));
  if (unknown.length > 0) {
    const expected = [...keys].join(', ') || 'none';
    throw invalidFields(Object.fromEntries(unknown.map((k) => [`variables.${k}`, [`variables.${k} is not a placeholder of "${row.name}" (its placeholders: ${expected})`]])));
  }
  for (const candidate of candidates) {
    const expected = placeholdersOf(componentsOf(candidate)).map((p) => p.key);
    const missing = expected.filter((k) => (variables[k] ?? '').trim() === '');
    if (missing.length > 0) {
      throw new AppError('template_variables_missing', `Template "${candidate.name}" (${candidate.language}) needs the variables ${missing.join(', ')}`, {
        errors: Object.fromEntries(missing.map((key) => [`variables.${key}`, [`variables.${key} is required`]])),
        extra: { expected_placeholders: expected, missing },
      });
    }
  }
  return { row, language: chosen ? chosen.language : null };
}

function checkVariables(value: unknown): Record<string, string> {
  const { variables, errors } = checkBroadcastVariables(value);
  if (!variables) throw invalidFields(errors);
  return variables;
}

function checkAudience(value: unknown): Audience {
  const { audience, errors } = parseAudience(value);
  if (!audience) throw invalidFields(errors);
  return audience;
}

function checkScheduledAt(value: unknown, now: number): number {
  const parsed = parseScheduledAt(value, now);
  if ('problem' in parsed) throw invalid('scheduled_at', parsed.problem);
  return parsed.at;
}

const knownFields = new Set(['name', 'template_id', 'language', 'variables', 'audience', 'scheduled_at']);

function checkKnownFields(input: object): void {
  const unknown = Object.keys(input).filter((k) => !knownFields.has(k));
  if (unknown.length > 0) throw invalidFields(Object.fromEntries(unknown.map((k) => [k, [`${k} is not a known field`]])));
}

/**
 * Creates a broadcast: a draft, or scheduled when `scheduled_at` is given. Every
 * reference is checked now (the template is approved and its placeholders are all
 * given; the tag, list, segment or contacts exist), each problem named by field, and
 * nothing is stored unless all pass.
 *
 * @example
 * await createBroadcast(ctx, workspaceId, { name: 'Spring sale', template_id, variables: { '1': '{{contact.first_name|there}}' }, audience: { tag: 'vip' }, scheduled_at: '2026-05-07T09:00:00Z' });
 */
export async function createBroadcast(ctx: Context, workspaceId: string, input: BroadcastInput): Promise<BroadcastView> {
  const db = ctx.database.db;
  checkKnownFields(input);
  const now = ctx.clock.now();
  const variables = checkVariables(input.variables);
  const template = await checkTemplate(db, workspaceId, input.template_id, input.language, variables);
  const audience = checkAudience(input.audience);
  await checkAudienceExists(db, workspaceId, audience);
  const scheduledAt = input.scheduled_at === undefined || input.scheduled_at === null ? null : checkScheduledAt(input.scheduled_at, now);
  const name = input.name === undefined ? template.row.name : checkName(input.name);
  const id = newId(now);
  await repo.insertBroadcast(db, {
    id,
    workspace_id: workspaceId,
    name,
    template_id: template.row.id,
    language: template.language,
    variables: toJson(variables),
    audience: toJson(audience),
    status: scheduledAt === null ? 'draft' : 'scheduled',
    scheduled_at: scheduledAt,
    due_at: scheduledAt,
    lease_until: null,
    cursor: null,
    error: null,
    started_at: null,
    completed_at: null,
    created_at: now,
    updated_at: now,
    deleted_at: null,
  });
  if (scheduledAt !== null) ctx.wake.broadcasts();
  return getBroadcast(ctx, workspaceId, id);
}

export async function getBroadcast(ctx: Context, workspaceId: string, id: string): Promise<BroadcastView> {
  const db = ctx.database.db;
  return (await views(db, workspaceId, [await requireBroadcast(db, workspaceId, id)]))[0]!;
}

/** Newest first, a page at a time: pass `next_cursor` back as `cursor` until it is null. */
export async function listBroadcasts(ctx: Context, workspaceId: string, query: { status?: string; cursor?: string; limit?: number }): Promise<{ data: BroadcastView[]; next_cursor: string | null }> {
  if (query.status !== undefined && !broadcastStatuses.includes(query.status as BroadcastStatus)) throw invalid('status', `must be one of ${broadcastStatuses.join(', ')}`);
  const limit = query.limit ?? 20;
  if (!Number.isInteger(limit) || limit < 1 || limit > 100) throw invalid('limit', 'must be a whole number from 1 to 100');
  const db = ctx.database.db;
  const rows = await repo.listBroadcasts(db, workspaceId, { status: query.status, before: query.cursor ? decodeCursor(query.cursor) : undefined, limit: limit + 1 });
  const page = rows.slice(0, limit);
  return { data: await views(db, workspaceId, page), next_cursor: rows.length > limit ? encodeCursor(page[page.length - 1]!.id) : null };
}

function notEditable(row: BroadcastRow): AppError {
  return new AppError('business_rule', `The broadcast is ${row.status}; it can only be changed while it is a draft or scheduled`, { extra: { status: row.status } });
}

/**
 * Changes a draft or scheduled broadcast; the result is checked as a whole, as on
 * creation. `scheduled_at` schedules it (or moves its time); `scheduled_at: null`
 * makes it a draft again. Once sending has started it is refused (422).
 */
export async function updateBroadcast(ctx: Context, workspaceId: string, id: string, input: BroadcastInput): Promise<BroadcastView> {
  const db = ctx.database.db;
  checkKnownFields(input);
  const row = await requireBroadcast(db, workspaceId, id);
  if (!editableStatuses.includes(row.status as BroadcastStatus)) throw notEditable(row);
  const now = ctx.clock.now();
  const variables = input.variables !== undefined ? checkVariables(input.variables) : parseJson<Record<string, string>>(row.variables, {});
  const templateChanged = input.template_id !== undefined || input.language !== undefined || input.variables !== undefined;
  const template = templateChanged
    ? await checkTemplate(db, workspaceId, input.template_id ?? row.template_id, input.language === undefined ? row.language : input.language, variables)
    : null;
  let audience: Audience | null = null;
  if (input.audience !== undefined) {
    audience = checkAudience(input.audience);
    await checkAudienceExists(db, workspaceId, audience);
  }
  const patch: repo.BroadcastPatch = { updated_at: now };
  if (input.name !== undefined) patch.name = checkName(input.name);
  if (template) Object.assign(patch, { template_id: template.row.id, language: template.language, variables: toJson(variables) });
  if (audience) patch.audience = toJson(audience);
  if (input.scheduled_at !== undefined) {
    const at = input.scheduled_at === null ? null : checkScheduledAt(input.scheduled_at, now);
    Object.assign(patch, { scheduled_at: at, due_at: at, status: at === null ? 'draft' : 'scheduled' });
  }
  if (!(await repo.updateBroadcastIf(db, workspaceId, row.id, editableStatuses, patch))) throw notEditable(await requireBroadcast(db, workspaceId, row.id));
  if (patch.due_at !== undefined && patch.due_at !== null) ctx.wake.broadcasts();
  return getBroadcast(ctx, workspaceId, row.id);
}

/** The template and audience are checked again before a broadcast is let go: either may have changed since it was saved. */
async function checkReadyToSend(db: Db, workspaceId: string, row: BroadcastRow): Promise<void> {
  await checkTemplate(db, workspaceId, row.template_id, row.language ?? undefined, parseJson<Record<string, string>>(row.variables, {}));
  const audience = audienceOf(row);
  await checkAudienceExists(db, workspaceId, audience);
  const source = await audienceSource(db, workspaceId, audience);
  if (source === null || (await repo.audiencePage(db, workspaceId, source, null, 1)).length === 0) {
    throw new AppError('business_rule', 'The audience has no contacts right now; nothing would be sent', { errors: { audience: ['audience has no contacts'] } });
  }
}

/** Sends a draft or scheduled broadcast now: it is `sending` at once and a worker starts queueing its messages. */
export async function sendBroadcast(ctx: Context, workspaceId: string, id: string): Promise<BroadcastView> {
  const db = ctx.database.db;
  const row = await requireBroadcast(db, workspaceId, id);
  if (!editableStatuses.includes(row.status as BroadcastStatus)) throw notEditable(row);
  await checkReadyToSend(db, workspaceId, row);
  const now = ctx.clock.now();
  const started = await repo.updateBroadcastIf(db, workspaceId, row.id, editableStatuses, { status: 'sending', due_at: now, started_at: now, updated_at: now });
  if (!started) throw notEditable(await requireBroadcast(db, workspaceId, row.id));
  ctx.wake.broadcasts();
  return getBroadcast(ctx, workspaceId, row.id);
}

/** Schedules a draft (or moves a scheduled broadcast) to `scheduled_at`. */
export async function scheduleBroadcast(ctx: Context, workspaceId: string, id: string, input: { scheduled_at?: unknown }): Promise<BroadcastView> {
  const db = ctx.database.db;
  const row = await requireBroadcast(db, workspaceId, id);
  if (!editableStatuses.includes(row.status as BroadcastStatus)) throw notEditable(row);
  if (input.scheduled_at === undefined || input.scheduled_at === null) throw invalid('scheduled_at', 'is required: an ISO 8601 date-time such as 2026-05-07T09:00:00Z');
  const now = ctx.clock.now();
  const at = checkScheduledAt(input.scheduled_at, now);
  await checkTemplate(db, workspaceId, row.template_id, row.language ?? undefined, parseJson<Record<string, string>>(row.variables, {}));
  const done = await repo.updateBroadcastIf(db, workspaceId, row.id, editableStatuses, { status: 'scheduled', scheduled_at: at, due_at: at, updated_at: now });
  if (!done) throw notEditable(await requireBroadcast(db, workspaceId, row.id));
  ctx.wake.broadcasts();
  return getBroadcast(ctx, workspaceId, row.id);
}

/**
 * Cancels a scheduled broadcast, or stops one that is sending: no further contact is
 * queued, and its messages still waiting in the queue are cancelled (those already
 * handed to the provider are not recalled). In one transaction with the status, which
 * on PostgreSQL waits for a chunk being queued to commit, so none slips past.
 */
export async function cancelBroadcast(ctx: Context, workspaceId: string, id: string): Promise<BroadcastView> {
  const db = ctx.database.db;
  const row = await requireBroadcast(db, workspaceId, id);
  const cancellable = ['scheduled', 'sending'];
  const now = ctx.clock.now();
  const cancelled = await db.transaction().execute(async (trx) => {
    if (!(await repo.updateBroadcastIf(trx, workspaceId, row.id, cancellable, { status: 'cancelled', due_at: null, lease_until: null, updated_at: now }))) return false;
    await repo.cancelQueuedForBroadcast(trx, row.id, now);
    return true;
  });
  if (!cancelled) {
    const current = await requireBroadcast(db, workspaceId, row.id);
    throw new AppError('business_rule', `The broadcast is ${current.status}; only a scheduled or sending broadcast can be cancelled${current.status === 'draft' ? ' (delete a draft instead)' : ''}`, {
      extra: { status: current.status },
    });
  }
  return getBroadcast(ctx, workspaceId, row.id);
}

/**
 * Deletes a broadcast that is not sending (a scheduled one will then not go out).
 * Its messages stay, as sent messages do. A broadcast that is sending must be
 * cancelled first: deleting it would hide a campaign still going out.
 */
export async function deleteBroadcast(ctx: Context, workspaceId: string, id: string): Promise<void> {
  const db = ctx.database.db;
  const row = await requireBroadcast(db, workspaceId, id);
  const now = ctx.clock.now();
  const deletable = broadcastStatuses.filter((s) => s !== 'sending');
  if (!(await repo.updateBroadcastIf(db, workspaceId, row.id, deletable, { deleted_at: now, due_at: null, updated_at: now }))) {
    throw new AppError('business_rule', 'The broadcast is sending; cancel it first, then delete it', { extra: { status: 'sending' } });
  }
}

/** The audience as the worker reads it, or null when its tag no longer exists. */
async function audienceSource(db: Db, workspaceId: string, audience: Audience): Promise<AudienceSource | null> {
  switch (audience.type) {
    case 'tag': {
      const tag = await findTagByKey(db, workspaceId, tagKey(audience.tag));
      return tag ? { type: 'tag', tagId: tag.id } : null;
    }
    case 'segment':
      return (await repo.segmentExists(db, workspaceId, audience.segment_id)) ? { type: 'segment', segmentId: audience.segment_id } : null;
    case 'list':
      return (await repo.listExists(db, workspaceId, audience.list_id)) ? { type: 'list', listId: audience.list_id } : null;
    case 'contacts':
      return { type: 'contacts', contactIds: [...audience.contact_ids].sort() };
  }
}

export interface ChunkOptions {
  /** Contacts queued per transaction. */
  chunkSize: number;
}

export type ChunkOutcome =
  | { kind: 'idle' }
  /** Contacts were queued (or the broadcast ended); more may be due at once. */
  | { kind: 'queued'; broadcastId: string; queued: number; skipped: number; done: boolean; dispatch: boolean }
  /** The previous chunk is still waiting to be sent: the broadcast comes back later. */
  | { kind: 'waiting'; broadcastId: string }
  | { kind: 'failed'; broadcastId: string; error: string };

/** How long a broadcast waits while its previous chunk is still in the queue. */
const waitForQueueMs = 1000;

function failBroadcast(trx: Tx, row: BroadcastRow, error: string, now: number): Promise<void> {
  return repo.saveBroadcast(trx, row.id, { status: 'failed', error, due_at: null, lease_until: null, updated_at: now });
}

/**
 * One step of the broadcast worker, in the caller's transaction: claims the broadcast
 * due longest, and queues the next `chunkSize` contacts of its audience after its
 * cursor, advancing the cursor in the same transaction. A contact who opted out of
 * WhatsApp, or has no phone, gets a `skipped` message row (so it is counted and never
 * looked at again); one whose variables render empty gets a `failed` one.
 *
 * On a channel sent inline (the sandbox) the messages are sent here, in the same
 * commit, as the scheduler does. Otherwise they are queued for the dispatcher, which
 * applies the provider's rate limit; and the next chunk is only queued once most of
 * the previous one has gone out, so a large broadcast never stands in front of the
 * replies flows are waiting to send.
 *
 * @example
 * await db.transaction().execute((trx) => queueBroadcastChunk(ctx, trx, ctx.channels, { chunkSize: 1000 }));
 */
export async function queueBroadcastChunk(ctx: Context, trx: Tx, channels: ChannelRegistry, options: ChunkOptions): Promise<ChunkOutcome> {
  const row = await repo.claimDueBroadcast(trx, ctx.database.dialect, ctx.clock.now());
  return row ? queueChunkOf(ctx, trx, channels, row, options) : { kind: 'idle' };
}

async function queueChunkOf(ctx: Context, trx: Tx, channels: ChannelRegistry, row: BroadcastRow, options: ChunkOptions): Promise<ChunkOutcome> {
  const now = ctx.clock.now();
  const workspaceId = row.workspace_id;
  const started = { status: 'sending', started_at: row.started_at ?? now };

  const template = await templates.findTemplate(trx, workspaceId, row.template_id);
  const approved = template ? (await templates.listTemplateLanguages(trx, workspaceId, template.name)).filter((t) => t.status === 'APPROVED') : [];
  const fixed = row.language ? pickLanguage(approved, [row.language]) : undefined;
  const templateProblem = !template
    ? 'The template was deleted'
    : approved.length === 0
      ? `Template "${template.name}" is no longer approved (status ${template.status})`
      : row.language && !fixed
        ? `Template "${template.name}" is no longer approved in ${row.language}`
        : null;
  if (templateProblem) {
    await failBroadcast(trx, row, templateProblem, now);
    return { kind: 'failed', broadcastId: row.id, error: templateProblem };
  }
  const source = await audienceSource(trx, workspaceId, audienceOf(row));
  if (!source) {
    const error = `The audience's ${audienceOf(row).type} no longer exists`;
    await failBroadcast(trx, row, error, now);
    return { kind: 'failed', broadcastId: row.id, error };
  }

  const provider = channels.providerFor(workspaceId, 'whatsapp');
  const adapter = channels.adapterFor(workspaceId, 'whatsapp', provider);
  if (!adapter.inline && row.recipients > 0 && (await repo.waitingAmongLatest(trx, row.id, options.chunkSize)) > options.chunkSize / 2) {
    await repo.saveBroadcast(trx, row.id, { ...started, due_at: now + waitForQueueMs, updated_at: now });
    return { kind: 'waiting', broadcastId: row.id };
  }

  const ids = await repo.audiencePage(trx, workspaceId, source, row.cursor, options.chunkSize);
  const contacts = await contactsRepo.loadContacts(trx, ids);
  const variables = parseJson<Record<string, string>>(row.variables, {});
  const workspace = await findWorkspace(trx, workspaceId);
  const fallbackLanguage = row.language ? null : await workspaceLanguage(trx, workspaceId);
  const messages: NewMessageRow[] = [];
  const sentCounts = new Map<string, { count: number; at: number }>();
  let queued = 0;
  let skipped = 0;
  let dispatch = false;
  for (const contactId of ids) {
    const contact = contacts.get(contactId);
    // A member whose contact is gone (or in another workspace) is passed over, not counted.
    if (!contact || contact.workspace_id !== workspaceId) continue;
    const id = newId(now);
    const chosen = fixed ?? pickLanguage(approved, [contact.language, fallbackLanguage]) ?? approved[0]!;
    const base = { id, workspace_id: workspaceId, contact_id: contact.id, dedupe_key: `broadcast:${row.id}:${contact.id}`, channel: 'whatsapp' as const, marketing: chosen.category === 'MARKETING' ? 1 : 0, now };
    const skip = !contact.phone ? { code: 'no_recipient', message: 'The contact has no phone number' } : contact.whatsapp_opted_out_at !== null ? { code: 'opted_out', message: 'The contact opted out of whatsapp messages' } : null;
    if (skip) {
      const content = { kind: 'template', name: chosen.name, language: chosen.language, components: {} };
      messages.push({
        ...messagesRepo.queuedOutboundRow({ ...base, provider: 'none', recipient: contact.phone, kind: 'template', content: toJson(content) }),
        broadcast_id: row.id,
        status: 'skipped',
        next_attempt_at: null,
        error_code: skip.code,
        error_message: skip.message,
      });
      skipped += 1;
      continue;
    }
    const scope: MergeScope = {
      contact: contactScope({ id: contact.id, ...contactFieldsOf(contact), whatsapp_opted_out_at: null, sms_opted_out_at: null, email_opted_out_at: null }),
      workspace: { name: workspace?.name ?? '' },
    };
    const rendered = Object.fromEntries(Object.entries(variables).map(([key, text]) => [key, renderTemplate(text, scope)]));
    let content: RenderedContent;
    try {
      content = templateContent(chosen, rendered);
    } catch (error) {
      // This contact's values cannot fill the template (say, {{contact.first_name}} with no name and no fallback).
      const problem = error instanceof AppError ? error : new AppError('internal', toError(error).message);
      messages.push({
        ...messagesRepo.queuedOutboundRow({ ...base, provider: 'none', recipient: contact.phone, kind: 'template', content: toJson({ kind: 'template', name: chosen.name, language: chosen.language, components: {} }) }),
        broadcast_id: row.id,
        status: 'failed',
        next_attempt_at: null,
        failed_at: now,
        error_code: problem.code,
        error_message: problem.message.slice(0, 1000),
      });
      queued += 1;
      continue;
    }
    const message: NewMessageRow = {
      ...messagesRepo.queuedOutboundRow({ ...base, provider, recipient: contact.phone, kind: content.kind, content: toJson(content) }),
      broadcast_id: row.id,
    };
    if (adapter.inline) {
      const sent = await adapter.send({ id, workspaceId, channel: 'whatsapp', to: contact.phone!, content });
      const outcome = outcomeOf({ id, attempts: 1 }, sent, now);
      Object.assign(message, outcome, { attempts: 1 });
      if (outcome.sent_at !== null) sentCounts.set(contact.id, { count: 1, at: now });
    }
    if (message.status === 'queued') dispatch = true;
    messages.push(message);
    queued += 1;
  }
  const bulk = { db: trx, raw: ctx.database.sqlite };
  await messagesRepo.insertMessages(bulk, messages);
  await messagesRepo.countMessagesOnContacts(bulk, sentCounts);
  const done = ids.length < options.chunkSize;
  await repo.saveBroadcast(trx, row.id, {
    ...started,
    cursor: ids.length > 0 ? ids[ids.length - 1]! : row.cursor,
    recipients: row.recipients + queued,
    skipped: row.skipped + skipped,
    due_at: done ? null : now,
    lease_until: null,
    ...(done ? { status: 'completed', completed_at: now } : {}),
    updated_at: now,
  });
  return { kind: 'queued', broadcastId: row.id, queued, skipped, done, dispatch };
}

/**
 * The broadcast worker's pass: up to `maxChunks` chunks, each its own transaction, so
 * several broadcasts due at once take turns a chunk at a time. A chunk that throws
 * (a bug, the database going away) is rolled back, logged, and its broadcast tried
 * again a minute later, so one broken broadcast cannot hold up the others. Returns
 * how many chunks did something.
 */
export async function runBroadcasts(ctx: Context, channels: ChannelRegistry, options: ChunkOptions & { maxChunks: number }): Promise<number> {
  const { db } = ctx.database;
  let worked = 0;
  let dispatch = false;
  await channels.refresh?.();
  for (let i = 0; i < options.maxChunks; i += 1) {
    let claimed: string | null = null;
    let outcome: ChunkOutcome;
    try {
      outcome = await db.transaction().execute(async (trx): Promise<ChunkOutcome> => {
        const row = await repo.claimDueBroadcast(trx, ctx.database.dialect, ctx.clock.now());
        if (!row) return { kind: 'idle' };
        claimed = row.id;
        return queueChunkOf(ctx, trx, channels, row, options);
      });
    } catch (error) {
      const id = claimed as string | null;
      if (id === null) throw error;
      ctx.log.error({ err: toError(error), broadcast_id: id }, 'queueing a broadcast chunk failed; it will be tried again in a minute');
      await repo.saveBroadcast(db, id, { due_at: ctx.clock.now() + 60_000, error: toError(error).message.slice(0, 500) });
      continue;
    }
    if (outcome.kind === 'idle') break;
    if (outcome.kind === 'failed') ctx.log.warn({ broadcast_id: outcome.broadcastId, error: outcome.error }, 'broadcast failed');
    if (outcome.kind === 'queued' && outcome.dispatch) dispatch = true;
    if (outcome.kind !== 'waiting') worked += 1;
  }
  if (dispatch) ctx.wake.messages();
  return worked;
}
