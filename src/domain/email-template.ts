import type { DefinitionKind, DefinitionNode, EmailBlock, Graph, SendMessageNode } from './definition.js';
import type { FieldErrors } from './errors.js';
import { htmlToBlocks } from './html-to-blocks.js';
import { isPlainObject, type JsonObject } from './json.js';
import { escapeHtml } from './merge-tags.js';
import { collectGraphFindings, definitionLimits, toErrorPath } from './validate-definition.js';

/**
 * Email templates: the editable copy of an email — subject, preview text and blocks —
 * that every email step of a sequence or flow gets, and that can also stand alone in the
 * workspace's library. These are not the WhatsApp message templates of
 * `message-template.ts` (Meta categories and review): an email template needs no review
 * and is edited freely.
 *
 * A template linked to a step (definition id + node id) holds the same content as that
 * step's node in the definition's draft; the services keep the two equal in one
 * transaction, whichever side is written. Published versions are frozen copies of the
 * draft and never change.
 */

export interface EmailContent {
  subject: string;
  previewText: string | null;
  blocks: EmailBlock[];
}

export const emailTemplateLimits = {
  /** Generated names are "<definition name (≤ 200)> – Email <n>". */
  name: 250,
  subject: definitionLimits.subjectLength,
  previewText: 1000,
  html: definitionLimits.htmlLength,
} as const;

/** The name a step's template gets when it is created: `Welcome Sequence – Email 2`. */
export function defaultTemplateName(definitionName: string, position: number): string {
  const suffix = ` \u2013 Email ${position}`;
  return `${definitionName.slice(0, emailTemplateLimits.name - suffix.length)}${suffix}`;
}

/** Plain-text email content as blocks: one paragraph block per blank-line-separated paragraph. */
export function textToBlocks(text: string): EmailBlock[] {
  return text
    .split(/\n{2,}/)
    .map((p) => p.trim())
    .filter((p) => p !== '')
    .map((p, i) => ({ id: `text-${i + 1}`, type: 'text', content: `<p>${escapeHtml(p).replace(/\n/g, '<br />')}</p>`, variant: 'paragraph' }));
}

export function isEmailNode(node: DefinitionNode): node is SendMessageNode & { content: NonNullable<SendMessageNode['content']> } {
  return node.type === 'send_message' && node.channel === 'email' && node.content !== undefined;
}

/** What the template of an email node holds; null for a node that is not an email with content. */
export function emailContentOfNode(node: DefinitionNode): EmailContent | null {
  if (!isEmailNode(node)) return null;
  const c = node.content;
  const blocks = c.blocks && c.blocks.length > 0 ? c.blocks : c.html ? htmlToBlocks(c.html) : textToBlocks(c.text ?? '');
  return { subject: c.subject ?? '', previewText: c.preview_text ?? null, blocks };
}

/** The email nodes of a graph that get templates, in the graph's order, with their content. */
export function emailNodesOf(graph: Graph): Array<{ nodeId: string; content: EmailContent }> {
  const out: Array<{ nodeId: string; content: EmailContent }> = [];
  for (const node of graph.nodes) {
    if (!isPlainObject(node)) continue;
    const content = emailContentOfNode(node);
    if (content !== null) out.push({ nodeId: node.id, content });
  }
  return out;
}

/**
 * The node with the template's content: subject, preview text and blocks. HTML and plain
 * text go: blocks now say what the email shows, and a stale copy beside them would only
 * mislead the next reader.
 */
export function nodeWithContent(node: SendMessageNode, content: EmailContent): SendMessageNode {
  const { html: _html, text: _text, subject: _subject, preview_text: _preview, blocks: _blocks, ...rest } = node.content ?? {};
  return { ...node, content: { ...rest, subject: content.subject, ...(content.previewText !== null ? { preview_text: content.previewText } : {}), blocks: content.blocks } };
}

/** A linear step (as stored in a draft's `steps`) with the template's content, the same way. */
export function stepWithContent(step: JsonObject, content: EmailContent): JsonObject {
  const { html: _html, text: _text, subject: _subject, previewText: _preview, preview_text: _preview2, blocks: _blocks, templateId: _templateId, ...rest } = step;
  return { ...rest, subject: content.subject, ...(content.previewText !== null ? { previewText: content.previewText } : {}), blocks: content.blocks };
}

export function sameContent(a: EmailContent, b: EmailContent): boolean {
  return a.subject === b.subject && a.previewText === b.previewText && JSON.stringify(a.blocks) === JSON.stringify(b.blocks);
}

/** Where the content was given: `blocks` as blocks, or `html` converted to them. */
export type BlocksSource = 'blocks' | 'html';

/**
 * Checks an email's content with the same rules a definition's email node is saved
 * under (subject required, block shapes, known merge tags), and names each problem by
 * the template's own fields: `subject`, `previewText`, `blocks.0.type` (or `html` when
 * the blocks came from HTML).
 *
 * With `within`, the content is checked as that node of that graph, so merge tags that
 * depend on the graph (`{{webhook.<save_as>.…}}`) are judged against it; without, as a
 * lone email, and any webhook name is accepted since the graph it will join is unknown.
 *
 * @example
 * checkEmailContent({ subject: '', previewText: null, blocks: [] }, 'blocks')
 * // { subject: ['subject is required: 1 to 998 characters'], blocks: ['blocks must have at least one block'] }
 */
export function checkEmailContent(content: EmailContent, source: BlocksSource, within?: { graph: Graph; nodeId: string; kind: DefinitionKind }): FieldErrors {
  const errors: FieldErrors = {};
  const add = (field: string, message: string) => (errors[field] ??= []).push(message);
  if (typeof content.subject !== 'string' || content.subject.trim() === '' || content.subject.length > emailTemplateLimits.subject) {
    add('subject', `subject is required: 1 to ${emailTemplateLimits.subject} characters`);
  }
  if (content.previewText !== null && (typeof content.previewText !== 'string' || content.previewText.length > emailTemplateLimits.previewText)) {
    add('previewText', `previewText must be text of at most ${emailTemplateLimits.previewText} characters, or null`);
  }
  if (source === 'html' && Array.isArray(content.blocks) && content.blocks.length === 0) {
    add('html', 'html has nothing an email can show (no text, link, image or divider)');
    return errors;
  }

  const judged = new Set(Object.keys(errors));
  const nodeId = within?.nodeId ?? 'email';
  const original = within?.graph.nodes.find((n) => n.id === nodeId);
  const base: SendMessageNode = original?.type === 'send_message' ? original : { id: nodeId, type: 'send_message', channel: 'email' };
  const node = nodeWithContent(base, content);
  const graph: Graph = within ? { ...within.graph, nodes: within.graph.nodes.map((n) => (n.id === nodeId ? node : n)) } : { entry: nodeId, nodes: [node], edges: [] };
  const { findings } = collectGraphFindings(graph, { kind: within?.kind ?? 'sequence', allowEmpty: true, ...(within ? {} : { anyWebhookName: true }) });
  for (const finding of findings) {
    if (finding.node !== nodeId) continue;
    const field = templateField(finding.field, source);
    // A field judged above in the template's own words is not judged twice.
    if (!judged.has(toErrorPath(field))) add(toErrorPath(field), `${field} ${finding.detail}`);
  }
  return errors;
}

/** A node field (`content.blocks[2].content`) as the template field it came from. */
function templateField(nodeField: string | undefined, source: BlocksSource): string {
  if (nodeField === undefined || nodeField === 'content') return source;
  if (nodeField === 'content.subject') return 'subject';
  if (nodeField === 'content.preview_text') return 'previewText';
  if (nodeField.startsWith('content.blocks')) return source === 'html' ? 'html' : nodeField.slice('content.'.length);
  return nodeField.replace(/^content\./, '');
}

/** A template as the sync sees it. */
export interface TemplateLink {
  id: string;
  definitionId: string | null;
  nodeId: string | null;
  content: EmailContent;
}

/** What to do to the templates when a definition's draft is written. */
export interface TemplateSyncPlan {
  /** Existing templates that become (or stay) a node's template, with the node's content. */
  assign: Array<{ id: string; nodeId: string; content: EmailContent; relink: boolean; changed: boolean }>;
  /** New templates, one per node that has none; `position` counts email nodes from 1 (for the name). */
  create: Array<{ nodeId: string; content: EmailContent; position: number }>;
  /** The definition's templates no node keeps: unlinked, and kept in the library. */
  unlink: string[];
}

/**
 * Decides which template each email node of a definition's new draft gets:
 *
 * 1. a template the step named with `templateId`, when it is in the library (unlinked)
 *    or already one of this definition's (so reordering steps moves their templates
 *    along), and no earlier step took it;
 * 2. else the template already linked to the same node id;
 * 3. else a new one.
 *
 * A named template linked to another definition's step stays there: the step got a copy
 * of its content, and a new template of its own. Templates of this definition that no
 * node keeps are unlinked.
 *
 * @example
 * planTemplateSync('d1', [{ nodeId: 'step-1', content }], [{ id: 't1', definitionId: 'd1', nodeId: 'step-2', content }], new Map())
 * // { assign: [], create: [{ nodeId: 'step-1', content, position: 1 }], unlink: ['t1'] }
 */
export function planTemplateSync(
  definitionId: string,
  nodes: ReadonlyArray<{ nodeId: string; content: EmailContent }>,
  linked: readonly TemplateLink[],
  named: ReadonlyMap<string, TemplateLink>,
): TemplateSyncPlan {
  const owner = new Map<string, TemplateLink>();
  const used = new Set<string>();
  for (const { nodeId } of nodes) {
    const template = named.get(nodeId);
    if (!template || used.has(template.id)) continue;
    if (template.definitionId !== null && template.definitionId !== definitionId) continue;
    owner.set(nodeId, template);
    used.add(template.id);
  }
  const byNode = new Map(linked.filter((t) => t.nodeId !== null).map((t) => [t.nodeId!, t] as const));
  for (const { nodeId } of nodes) {
    if (owner.has(nodeId)) continue;
    const template = byNode.get(nodeId);
    if (template && !used.has(template.id)) {
      owner.set(nodeId, template);
      used.add(template.id);
    }
  }
  const plan: TemplateSyncPlan = { assign: [], create: [], unlink: [] };
  nodes.forEach(({ nodeId, content }, i) => {
    const template = owner.get(nodeId);
    if (!template) {
      plan.create.push({ nodeId, content, position: i + 1 });
      return;
    }
    const relink = template.definitionId !== definitionId || template.nodeId !== nodeId;
    plan.assign.push({ id: template.id, nodeId, content, relink, changed: !sameContent(template.content, content) });
  });
  plan.unlink = linked.filter((t) => !used.has(t.id)).map((t) => t.id);
  return plan;
}

/** Reads a stored blocks column; anything but an array of objects reads as no blocks. */
export function readBlocks(value: unknown): EmailBlock[] {
  return Array.isArray(value) ? (value.filter((b) => isPlainObject(b) && typeof b.type === 'string') as EmailBlock[]) : [];
}
