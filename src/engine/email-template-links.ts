import type { Graph } from '../domain/definition.js';
import { defaultTemplateName, emailNodesOf, planTemplateSync, readBlocks, type EmailContent, type TemplateLink } from '../domain/email-template.js';
import type { FieldErrors } from '../domain/errors.js';
import { isUuid, newId } from '../domain/ids.js';
import { isPlainObject, parseJson, toJson, type JsonObject } from '../domain/json.js';
import type { Db, Dialect } from '../store/database.js';
import * as templates from '../store/email-template-repository.js';
import type { EmailTemplateRow } from '../store/email-template-repository.js';

/**
 * The link between a definition's email steps and their email templates, written in the
 * transaction that writes the definition's draft (create, PUT, the AI writer), so a draft
 * and its templates never disagree. The editing side (a template edited, the step
 * changes) is in email-template-service.ts.
 */

export function templateContent(row: Pick<EmailTemplateRow, 'subject' | 'preview_text' | 'blocks'>): EmailContent {
  return { subject: row.subject, previewText: row.preview_text, blocks: readBlocks(parseJson<unknown>(row.blocks, [])) };
}

function toLink(row: EmailTemplateRow): TemplateLink {
  return { id: row.id, definitionId: row.definition_id, nodeId: row.node_id, content: templateContent(row) };
}

/** What a step's `templateId` resolved to: the step with the template's content, keyed by the node id the step compiles to. */
export interface ResolvedSteps {
  steps: unknown[];
  /** Node id (`step-<n>`) → the template the step named. */
  named: Map<string, TemplateLink>;
  errors: FieldErrors;
}

const emailFields = ['blocks', 'html', 'text'];

/**
 * Replaces each step's `templateId` with the template's content: its blocks unless the
 * step gives blocks, html or text of its own, its subject and preview text unless the
 * step gives them. An id that is not one of the workspace's email templates, or on a
 * step that is not an email, is named as `steps.<i>.templateId`.
 *
 * Templates the definition may take over (library templates, and its own) are locked
 * until the transaction ends, so a concurrent edit of one cannot slip between the copy
 * and the link.
 */
export async function resolveStepTemplates(db: Db, dialect: Dialect, workspaceId: string, definitionId: string, steps: unknown[]): Promise<ResolvedSteps> {
  const errors: FieldErrors = {};
  const wanted = new Map<number, string>();
  steps.forEach((step, i) => {
    if (!isPlainObject(step) || step.templateId === undefined) return;
    const field = `steps.${i}.templateId`;
    const type = step.type;
    const email = type === undefined || type === 'email' || (type === 'send_message' && (step.channel === undefined || step.channel === 'email'));
    if (!email) errors[field] = [`steps[${i}]: templateId applies to email steps only`];
    else if (typeof step.templateId !== 'string' || !isUuid(step.templateId)) errors[field] = [`steps[${i}]: templateId must be the id (a UUID) of one of this workspace's email templates`];
    else wanted.set(i, step.templateId.toLowerCase());
  });
  if (wanted.size === 0 && Object.keys(errors).length === 0) return { steps, named: new Map(), errors };

  const ids = [...new Set(wanted.values())];
  const found = new Map((await templates.findEmailTemplates(db, workspaceId, ids)).map((row) => [row.id, row] as const));
  const claimable = [...found.values()].filter((row) => row.definition_id === null || row.definition_id === definitionId).map((row) => row.id);
  // Read again under the lock: a row read before it may have changed since.
  for (const row of await templates.lockEmailTemplates(db, dialect, workspaceId, claimable)) found.set(row.id, row);

  const named = new Map<string, TemplateLink>();
  const resolved = steps.map((step, i) => {
    const id = wanted.get(i);
    if (id === undefined || !isPlainObject(step)) return step;
    const row = found.get(id);
    if (!row) {
      errors[`steps.${i}.templateId`] = [`steps[${i}]: templateId ${JSON.stringify(step.templateId)} is not an email template of this workspace`];
      return step;
    }
    named.set(`step-${i + 1}`, toLink(row));
    const { templateId: _templateId, ...rest } = step;
    const out: JsonObject = { ...rest };
    if (out.subject === undefined) out.subject = row.subject;
    if (out.previewText === undefined && out.preview_text === undefined && row.preview_text !== null) out.previewText = row.preview_text;
    if (!emailFields.some((f) => out[f] !== undefined)) out.blocks = templateContent(row).blocks;
    return out;
  });
  return { steps: resolved, named, errors };
}

/**
 * Gives every email node of the definition's new draft its template (see
 * planTemplateSync for which one), creates the missing ones and unlinks the ones no node
 * keeps. Call it inside the transaction that writes the draft, with the definition row
 * locked. Returns node id → template id.
 */
export async function syncDefinitionTemplates(
  db: Db,
  workspaceId: string,
  definition: { id: string; name: string },
  graph: Graph,
  named: ReadonlyMap<string, TemplateLink>,
  now: number,
): Promise<Map<string, string>> {
  const nodes = emailNodesOf(graph);
  const linked = (await templates.listDefinitionTemplates(db, workspaceId, definition.id)).map(toLink);
  if (nodes.length === 0 && linked.length === 0) return new Map();
  const plan = planTemplateSync(definition.id, nodes, linked, named);
  // Off their old steps first: the unique (definition_id, node_id) index must hold after every statement, also when two steps swap templates.
  const moving = plan.assign.filter((a) => a.relink).map((a) => a.id);
  await templates.unlinkEmailTemplates(db, workspaceId, [...plan.unlink, ...moving], now);
  const links = new Map<string, string>();
  for (const a of plan.assign) {
    links.set(a.nodeId, a.id);
    if (!a.relink && !a.changed) continue;
    await templates.updateEmailTemplate(db, workspaceId, a.id, {
      definition_id: definition.id,
      node_id: a.nodeId,
      subject: a.content.subject,
      preview_text: a.content.previewText,
      blocks: toJson(a.content.blocks),
      updated_at: now,
    });
  }
  const rows = plan.create.map((c) => ({
    id: newId(now),
    workspace_id: workspaceId,
    name: defaultTemplateName(definition.name, c.position),
    subject: c.content.subject,
    preview_text: c.content.previewText,
    blocks: toJson(c.content.blocks),
    definition_id: definition.id,
    node_id: c.nodeId,
    created_at: now,
    updated_at: now,
  }));
  await templates.insertEmailTemplates(db, rows);
  for (const row of rows) links.set(row.node_id, row.id);
  return links;
}

/** Node id → template id per definition, for the definitions' resource views. */
export async function templateIdsByDefinition(db: Db, workspaceId: string, definitionIds: readonly string[]): Promise<Map<string, Map<string, string>>> {
  const out = new Map<string, Map<string, string>>();
  for (const link of await templates.templateLinks(db, workspaceId, definitionIds)) {
    let links = out.get(link.definition_id);
    if (!links) out.set(link.definition_id, (links = new Map()));
    links.set(link.node_id, link.id);
  }
  return out;
}
