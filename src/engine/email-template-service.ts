import { isoTime } from '../domain/clock.js';
import { decodeCursor, encodeCursor } from '../domain/cursor.js';
import type { DefinitionNode, EmailBlock, SendMessageNode } from '../domain/definition.js';
import { checkEmailContent, emailTemplateLimits, nodeWithContent, sameContent, stepWithContent, type BlocksSource, type EmailContent } from '../domain/email-template.js';
import { AppError, invalid, invalidFields, notFound, type FieldErrors } from '../domain/errors.js';
import { htmlNestsDeeperThan, htmlToBlocks, maxHtmlDepth } from '../domain/html-to-blocks.js';
import { isUuid, newId } from '../domain/ids.js';
import { isPlainObject, parseJson, toJson } from '../domain/json.js';
import type { Db } from '../store/database.js';
import * as definitionsRepo from '../store/definition-repository.js';
import type { DefinitionRow } from '../store/definition-repository.js';
import * as repo from '../store/email-template-repository.js';
import type { EmailTemplateListRow, EmailTemplateRow } from '../store/email-template-repository.js';
import type { Context } from './context.js';
import type { Draft } from './definition-service.js';
import { templateContent } from './email-template-links.js';

/**
 * Email templates through the API: a library of editable emails (subject, preview text,
 * blocks), one per email step of every sequence and flow plus the standalone ones made
 * with POST.
 *
 * Editing a template that is a step's edits that step in the definition's draft, in the
 * same transaction, and marks the draft changed: the next publish (`enable`) freezes a
 * version that sends the edit. Published versions never change, so sessions already
 * running go on with the email of the version they started on.
 *
 * Deleting a template that is the email of a step of a definition that can still be
 * published (not archived) is refused: the step would lose its editable copy and get a
 * new one at the definition's next write, which is a surprise, not a deletion.
 */

export interface EmailTemplateView {
  id: string;
  name: string;
  subject: string;
  previewText: string | null;
  blocks: EmailBlock[];
  /** The sequence whose step this is; null for a flow's step or a library template. */
  sequenceId: string | null;
  /** The flow whose step this is. */
  flowId: string | null;
  /** The step's node id in the definition's graph (`step-2`). */
  nodeId: string | null;
  createdAt: string;
  updatedAt: string;
}

export function toView(row: EmailTemplateRow, kind: 'sequence' | 'flow' | null): EmailTemplateView {
  const content = templateContent(row);
  return {
    id: row.id,
    name: row.name,
    subject: content.subject,
    previewText: content.previewText,
    blocks: content.blocks,
    sequenceId: kind === 'sequence' ? row.definition_id : null,
    flowId: kind === 'flow' ? row.definition_id : null,
    nodeId: row.definition_id !== null ? row.node_id : null,
    createdAt: isoTime(row.created_at),
    updatedAt: isoTime(row.updated_at),
  };
}

const listView = (row: EmailTemplateListRow) => toView(row, row.definition_kind);

export interface EmailTemplateInput {
  name?: unknown;
  subject?: unknown;
  previewText?: unknown;
  blocks?: unknown;
  html?: unknown;
}

const inputFields = ['name', 'subject', 'previewText', 'blocks', 'html'];

/** The content fields of a body, merged over `current` (PUT) or standing alone (POST); every problem named. */
function readInput(input: EmailTemplateInput, current: { name: string; content: EmailContent } | null): { name: string; content: EmailContent; source: BlocksSource; errors: FieldErrors } {
  const errors: FieldErrors = {};
  const add = (field: string, message: string) => (errors[field] ??= []).push(message);
  if (!isPlainObject(input)) {
    add('body', 'the body must be an object');
    return { name: '', content: { subject: '', previewText: null, blocks: [] }, source: 'blocks', errors };
  }
  for (const key of Object.keys(input)) if (!inputFields.includes(key)) add(key, `${key} is not a field of an email template (fields: ${inputFields.join(', ')})`);
  if (current !== null && !inputFields.some((f) => input[f as keyof EmailTemplateInput] !== undefined)) add('body', `give at least one of ${inputFields.join(', ')}`);

  let subject = current?.content.subject ?? '';
  if (input.subject !== undefined) {
    if (typeof input.subject !== 'string') add('subject', 'subject must be text');
    else subject = input.subject;
  } else if (current === null) add('subject', `subject is required: 1 to ${emailTemplateLimits.subject} characters`);

  let previewText = current?.content.previewText ?? null;
  if (input.previewText !== undefined) {
    if (input.previewText !== null && typeof input.previewText !== 'string') add('previewText', 'previewText must be text, or null to remove it');
    else previewText = input.previewText === '' ? null : input.previewText;
  }

  let blocks = current?.content.blocks ?? [];
  let source: BlocksSource = 'blocks';
  if (input.blocks !== undefined && input.html !== undefined) add('html', 'give either blocks or html, not both');
  else if (input.html !== undefined) {
    source = 'html';
    if (typeof input.html !== 'string' || input.html.length > emailTemplateLimits.html) add('html', `html must be text of at most ${emailTemplateLimits.html} characters`);
    else if (htmlNestsDeeperThan(input.html)) add('html', `html nests elements more than ${maxHtmlDepth} levels deep`);
    // The same conversion a step's HTML gets: a real HTML parser, into the editor's blocks.
    else blocks = htmlToBlocks(input.html);
  } else if (input.blocks !== undefined) {
    if (!Array.isArray(input.blocks)) add('blocks', 'blocks must be an array of blocks such as {"type": "text", "content": "<p>Hi</p>"}');
    else blocks = input.blocks as EmailBlock[];
  } else if (current === null) add('blocks', 'give the email\u2019s content as blocks or as html');

  let name = current?.name ?? '';
  if (input.name !== undefined) {
    if (typeof input.name !== 'string' || input.name.trim() === '' || input.name.trim().length > emailTemplateLimits.name) add('name', `name must be 1 to ${emailTemplateLimits.name} characters`);
    else name = input.name.trim();
  } else if (current === null) {
    // Unnamed: called by its subject, as a mail client would show it.
    name = subject.trim().slice(0, emailTemplateLimits.name);
  }
  return { name, content: { subject, previewText, blocks }, source, errors };
}

function refuse(errors: FieldErrors): AppError {
  return invalidFields(errors);
}

function requireId(id: string): string {
  if (!isUuid(id)) throw notFound('Email template');
  return id.toLowerCase();
}

export async function createEmailTemplate(ctx: Context, workspaceId: string, input: EmailTemplateInput): Promise<EmailTemplateView> {
  const read = readInput(input, null);
  if (Object.keys(read.errors).length > 0) throw refuse(read.errors);
  const errors = checkEmailContent(read.content, read.source);
  if (Object.keys(errors).length > 0) throw refuse(errors);
  const now = ctx.clock.now();
  const row: EmailTemplateRow = {
    id: newId(now),
    workspace_id: workspaceId,
    name: read.name,
    subject: read.content.subject,
    preview_text: read.content.previewText,
    blocks: toJson(read.content.blocks),
    definition_id: null,
    node_id: null,
    created_at: now,
    updated_at: now,
  };
  await repo.insertEmailTemplates(ctx.database.db, [row]);
  return toView(row, null);
}

export async function getEmailTemplate(ctx: Context, workspaceId: string, id: string): Promise<EmailTemplateView> {
  const row = await repo.findEmailTemplate(ctx.database.db, workspaceId, requireId(id));
  if (!row) throw notFound('Email template');
  return listView(row);
}

export interface ListEmailTemplatesQuery {
  limit?: number;
  cursor?: string;
  sequenceId?: string;
}

/** Oldest first, a page at a time; `sequenceId` (a sequence's or a flow's id) keeps that definition's steps' templates. */
export async function listEmailTemplates(ctx: Context, workspaceId: string, query: ListEmailTemplatesQuery): Promise<{ data: EmailTemplateView[]; nextCursor: string | null }> {
  const limit = query.limit ?? 50;
  if (query.sequenceId !== undefined && !isUuid(query.sequenceId)) throw invalid('sequenceId', 'must be a UUID');
  const rows = await repo.listEmailTemplates(ctx.database.db, workspaceId, {
    limit: limit + 1,
    ...(query.cursor !== undefined ? { after: decodeCursor(query.cursor) } : {}),
    ...(query.sequenceId !== undefined ? { definitionId: query.sequenceId.toLowerCase() } : {}),
  });
  const page = rows.slice(0, limit);
  return { data: page.map(listView), nextCursor: rows.length > limit ? encodeCursor(page[page.length - 1]!.id) : null };
}

const retry = Symbol('retry');

/**
 * Runs `work` in a transaction holding the template's lock and, when it is a step's,
 * its definition's lock first — the order every writer of a draft and its templates
 * takes (definition, then templates), so none can deadlock another. The definition is
 * found from a read before the locks; when the template moved to another definition
 * in between, the transaction is given up and tried again.
 */
async function withLockedTemplate<T>(ctx: Context, workspaceId: string, id: string, work: (trx: Db, template: EmailTemplateRow, definition: DefinitionRow | null) => Promise<T>): Promise<T> {
  const { db, dialect } = ctx.database;
  for (let attempt = 0; attempt < 5; attempt++) {
    const outcome = await db.transaction().execute(async (trx) => {
      const seen = await repo.findEmailTemplate(trx, workspaceId, id);
      if (!seen) throw notFound('Email template');
      const definition = seen.definition_id !== null ? ((await definitionsRepo.lockDefinition(trx, dialect, workspaceId, null, seen.definition_id)) ?? null) : null;
      const [template] = await repo.lockEmailTemplates(trx, dialect, workspaceId, [id]);
      if (!template) throw notFound('Email template');
      if (template.definition_id !== seen.definition_id) return retry;
      return work(trx, template, definition);
    });
    if (outcome !== retry) return outcome as T;
  }
  throw new AppError('conflict', 'The email template was moved between sequences while it was being changed; try again');
}

const emptyDraft: Draft = { graph: { nodes: [], edges: [] }, settings: {}, trigger: { type: 'api' }, steps: null };

export interface UpdatedEmailTemplate {
  template: EmailTemplateView;
  /** The definition whose draft changed with it, if any. */
  draftChanged: { kind: 'sequence' | 'flow'; id: string } | null;
}

/**
 * Edits a template. When it is a step's, the step's node in the draft (and the step in
 * the draft's `steps`) gets the new content in the same transaction, checked as part of
 * that draft, and the draft is marked changed. Only the name changing leaves the draft
 * alone.
 */
export async function updateEmailTemplate(ctx: Context, workspaceId: string, id: string, input: EmailTemplateInput): Promise<UpdatedEmailTemplate> {
  const templateId = requireId(id);
  return withLockedTemplate(ctx, workspaceId, templateId, async (trx, template, definition) => {
    const current = { name: template.name, content: templateContent(template) };
    const read = readInput(input, current);
    if (Object.keys(read.errors).length > 0) throw refuse(read.errors);
    const now = ctx.clock.now();
    const draft = definition ? parseJson<Draft>(definition.draft, emptyDraft) : null;
    const node = draft && template.node_id !== null ? draft.graph.nodes.find((n): n is SendMessageNode => n.id === template.node_id && n.type === 'send_message') : undefined;
    const errors = checkEmailContent(read.content, read.source, definition && node ? { graph: draft!.graph, nodeId: node.id, kind: definition.kind } : undefined);
    if (Object.keys(errors).length > 0) throw refuse(errors);

    const contentChanged = !sameContent(current.content, read.content);
    // A link to a step its definition no longer has (or to a deleted definition) is dropped rather than kept pointing nowhere.
    const unlink = template.definition_id !== null && (definition === null || node === undefined);
    await repo.updateEmailTemplate(trx, workspaceId, templateId, {
      name: read.name,
      subject: read.content.subject,
      preview_text: read.content.previewText,
      blocks: toJson(read.content.blocks),
      updated_at: now,
      ...(unlink ? { definition_id: null, node_id: null } : {}),
    });
    let draftChanged: UpdatedEmailTemplate['draftChanged'] = null;
    if (definition && draft && node && contentChanged) {
      await definitionsRepo.updateDefinition(trx, workspaceId, definition.id, { draft: toJson(withStepContent(draft, node.id, read.content)), draft_changed: 1, updated_at: now });
      draftChanged = { kind: definition.kind, id: definition.id };
    }
    const saved = (await repo.findEmailTemplate(trx, workspaceId, templateId))!;
    return { template: listView(saved), draftChanged };
  });
}

/** The draft with one email node's content replaced, in its graph and in its linear steps (where `step-<n>` is the n-th step). */
function withStepContent(draft: Draft, nodeId: string, content: EmailContent): Draft {
  const nodes = draft.graph.nodes.map((n): DefinitionNode => (n.id === nodeId && n.type === 'send_message' ? nodeWithContent(n, content) : n));
  const position = /^step-(\d+)$/.exec(nodeId);
  let steps = draft.steps;
  if (steps !== null && position) {
    const index = Number(position[1]) - 1;
    steps = steps.map((step, i) => (i === index && isPlainObject(step) ? stepWithContent(step, content) : step));
  }
  return { ...draft, graph: { ...draft.graph, nodes }, steps };
}

/** Deletes a library template, or a step's whose definition is archived; refuses (422) while the step's definition can still be published. */
export async function deleteEmailTemplate(ctx: Context, workspaceId: string, id: string): Promise<void> {
  const templateId = requireId(id);
  await withLockedTemplate(ctx, workspaceId, templateId, async (trx, template, definition) => {
    if (definition !== null && definition.status !== 'archived') {
      const what = definition.kind === 'sequence' ? 'sequence' : 'flow';
      throw new AppError(
        'business_rule',
        `This email template is the email of step ${template.node_id} of the ${what} "${definition.name}"; remove that step from the ${what} (PUT /api/v1/${what}s/${definition.id}) or archive the ${what} first`,
        { extra: { [`${what}Id`]: definition.id, nodeId: template.node_id } },
      );
    }
    await repo.deleteEmailTemplate(trx, workspaceId, templateId);
  });
}
