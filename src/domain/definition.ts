/**
 * Sequences and flows are graphs of nodes with one entry node. Nodes hold what they
 * do; edges hold where the session goes next. An edge's `branch` names which way out
 * of its node it is:
 *
 * | node type        | branches                                                       |
 * |------------------|----------------------------------------------------------------|
 * | send_message, delay, add_tag, remove_tag, update_contact, goal | `next` (default) |
 * | webhook, create_discount | `next` (default), `failure` (optional: taken when the call fails) |
 * | wait_for_reply   | each reply branch's `id`, `timeout`, and `no_match` (optional)  |
 * | condition        | `true`, `false`                                                |
 * | split            | each split branch's `id`                                       |
 * | exit             | none                                                           |
 *
 * A node with no edge for the branch it takes ends the session (completed).
 */
export type Channel = 'whatsapp' | 'sms' | 'email';
export const channels: readonly Channel[] = ['whatsapp', 'sms', 'email'];

export type DefinitionKind = 'sequence' | 'flow';

export interface Duration {
  days?: number;
  hours?: number;
  minutes?: number;
  seconds?: number;
}

export interface ReplyButton {
  id: string;
  title: string;
}

export interface ListRow {
  id: string;
  title: string;
  description?: string;
}

export interface ListSection {
  title?: string;
  rows: ListRow[];
}

/** An email content block (issue: channels). Kept loose here; the email renderer owns the details. */
export interface EmailBlock {
  id?: string;
  type: string;
  [key: string]: unknown;
}

export interface MessageContent {
  /** WhatsApp and SMS text, or the email's plain text. Merge tags allowed. */
  text?: string;
  /** Email subject. */
  subject?: string;
  preview_text?: string;
  /** Email HTML (converted to blocks when stored). */
  html?: string;
  blocks?: EmailBlock[];
  /** WhatsApp interactive reply buttons (at most 3, titles at most 20 characters). */
  buttons?: ReplyButton[];
  /** WhatsApp interactive list. */
  list?: { button: string; sections: ListSection[] };
}

export interface TemplateRef {
  name: string;
  language?: string;
  /** Placeholder values by position ("1", "2", …) or name; merge tags allowed. */
  variables?: Record<string, string>;
}

export type FailurePolicy = 'continue' | 'stop';

export interface SendMessageNode {
  id: string;
  type: 'send_message';
  name?: string;
  channel: Channel;
  template?: TemplateRef;
  content?: MessageContent;
  /** Marketing messages are never sent to a contact who opted out. Default: true for email, false otherwise. */
  marketing?: boolean;
  on_failure?: FailurePolicy;
}

export interface DelayNode {
  id: string;
  type: 'delay';
  name?: string;
  duration?: Duration;
  /** Wait until the next time of day (HH:MM, 24 h) in the contact's time zone (or `timezone`). */
  until?: { time: string; timezone?: string };
}

export type ReplyMatch =
  | { type: 'button'; button_id: string }
  | { type: 'keyword'; keywords: string[] }
  | { type: 'regex'; pattern: string; flags?: string }
  | { type: 'any' };

export interface WaitForReplyNode {
  id: string;
  type: 'wait_for_reply';
  name?: string;
  /**
   * How long to wait before taking the `timeout` branch. Required in flows (validation
   * enforces it); a sequence may leave it out to wait for a reply indefinitely.
   */
  timeout?: Duration;
  branches: Array<{ id: string; match: ReplyMatch }>;
}

export type ConditionOperator =
  | 'eq'
  | 'neq'
  | 'contains'
  | 'not_contains'
  | 'starts_with'
  | 'exists'
  | 'not_exists'
  | 'gt'
  | 'gte'
  | 'lt'
  | 'lte'
  | 'in'
  | 'matches'
  | 'has_tag'
  | 'not_has_tag';

/**
 * `field` is a dotted path: `contact.first_name`, `contact.metadata.plan`, `context.order_id`,
 * `event.city`, `webhook.<save_as>.status`, `webhook.<save_as>.body.x`, `last_message.status`,
 * `reply.text`. `has_tag` / `not_has_tag` take the tag in `value` and no field.
 */
export interface ConditionRule {
  field?: string;
  op: ConditionOperator;
  value?: unknown;
}

export interface ConditionGroup {
  /** `all` (default) or `any` of the rules must hold. */
  match?: 'all' | 'any';
  rules: Array<ConditionRule | ConditionGroup>;
}

export interface ConditionNode {
  id: string;
  type: 'condition';
  name?: string;
  condition: ConditionGroup;
}

export interface SplitNode {
  id: string;
  type: 'split';
  name?: string;
  /** Percentages summing to 100; the same contact always takes the same branch. */
  branches: Array<{ id: string; percent: number; label?: string }>;
}

export interface TagNode {
  id: string;
  type: 'add_tag' | 'remove_tag';
  name?: string;
  tag: string;
}

export interface UpdateContactNode {
  id: string;
  type: 'update_contact';
  name?: string;
  /** Field → value (merge tags allowed). Fields: first_name, last_name, name, email, timezone, language, metadata.<key>. */
  set: Record<string, string | null>;
}

export interface WebhookNode {
  id: string;
  type: 'webhook';
  name?: string;
  url: string;
  method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  headers?: Record<string, string>;
  /** A templated body (merge tags rendered, JSON-escaped inside JSON strings). */
  body?: string;
  /** Where the response goes: `{{webhook.<save_as>.status}}`, `{{webhook.<save_as>.body.x}}`. Default: the node id. */
  save_as?: string;
  on_failure?: FailurePolicy;
}

export interface GoalNode {
  id: string;
  type: 'goal';
  name?: string;
  /** Ends the session as completed once the goal is reached (default true). */
  exit?: boolean;
}

export interface ExitNode {
  id: string;
  type: 'exit';
  name?: string;
}

export interface CreateDiscountNode {
  id: string;
  type: 'create_discount';
  name?: string;
  /** A DiscountSpec (domain/discount-spec.ts); `provider` absent means Stripe. */
  discount: Record<string, unknown>;
  /**
   * When no code could be made, and the graph has no `failure` edge: `stop` (the default:
   * the emails after it would offer a code that does not exist) or `continue`.
   */
  on_failure?: FailurePolicy;
}

export type DefinitionNode =
  | SendMessageNode
  | DelayNode
  | WaitForReplyNode
  | ConditionNode
  | SplitNode
  | TagNode
  | UpdateContactNode
  | WebhookNode
  | GoalNode
  | ExitNode
  | CreateDiscountNode;

export type NodeType = DefinitionNode['type'];

export const nodeTypes: readonly NodeType[] = [
  'send_message',
  'delay',
  'wait_for_reply',
  'condition',
  'split',
  'add_tag',
  'remove_tag',
  'update_contact',
  'webhook',
  'goal',
  'exit',
  'create_discount',
];

export interface Edge {
  from: string;
  to: string;
  /** Which way out of `from` (see the table above); absent means `next`. */
  branch?: string;
}

export interface Graph {
  /** The entry node's id. When absent, the one node without incoming edges. */
  entry?: string;
  nodes: DefinitionNode[];
  edges: Edge[];
}

export interface DefinitionSettings {
  /** Flows: the session expires this many minutes after it started (default 30). */
  session_ttl_minutes?: number;
  [key: string]: unknown;
}

/** A problem found by validation: which node (if any), a code and a message naming it. */
export interface DefinitionProblem {
  code:
    | 'no_entry_node'
    | 'unknown_entry_node'
    | 'duplicate_node_id'
    | 'unknown_node_type'
    | 'invalid_node'
    | 'dangling_edge'
    | 'unknown_branch'
    | 'duplicate_edge'
    | 'unreachable_node'
    | 'loop_without_wait'
    | 'unknown_template'
    | 'unknown_merge_tag'
    | 'node_not_allowed';
  message: string;
  node?: string;
  path?: string;
}

/** A graph ready to run: nodes by id and the next node per (node, branch). */
export interface CompiledGraph {
  entry: string | null;
  nodes: Map<string, DefinitionNode>;
  /** `${from}\u0000${branch}` → to */
  next: Map<string, string>;
}

export function compileGraph(graph: Graph): CompiledGraph {
  const nodes = new Map(graph.nodes.map((n) => [n.id, n] as const));
  const next = new Map<string, string>();
  for (const edge of graph.edges) next.set(`${edge.from}\u0000${edge.branch ?? 'next'}`, edge.to);
  return { entry: resolveEntry(graph), nodes, next };
}

export function nextNode(graph: CompiledGraph, from: string, branch = 'next'): string | null {
  return graph.next.get(`${from}\u0000${branch}`) ?? null;
}

/** The explicit entry, or the single node nothing points to; null when there is none. */
export function resolveEntry(graph: Graph): string | null {
  if (graph.entry !== undefined) return graph.entry;
  if (graph.nodes.length === 0) return null;
  const targets = new Set(graph.edges.map((e) => e.to));
  const roots = graph.nodes.filter((n) => !targets.has(n.id));
  return roots.length === 1 ? roots[0]!.id : null;
}

export function durationMs(duration: Duration | undefined): number {
  if (!duration) return 0;
  return (
    ((duration.days ?? 0) * 86_400 + (duration.hours ?? 0) * 3_600 + (duration.minutes ?? 0) * 60 + (duration.seconds ?? 0)) * 1000
  );
}
