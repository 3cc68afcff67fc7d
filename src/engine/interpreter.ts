import { chooseSplitBranch } from '../domain/split.js';
import { evaluateCondition } from '../domain/conditions.js';
import { renderTemplate, type MergeScope } from '../domain/merge-tags.js';
import { isValidTimeZone, nextTimeOfDay } from '../domain/schedule.js';
import {
  durationMs,
  nextNode,
  type Channel,
  type CompiledGraph,
  type DefinitionNode,
  type ReplyMatch,
  type SendMessageNode,
  type WaitForReplyNode,
  type WebhookNode,
} from '../domain/definition.js';
import { renderEmail } from '../domain/email-render.js';
import { cloneJson } from '../domain/json.js';
import { newDiscountCode } from '../domain/discount-code.js';
import type { DiscountSpec } from '../domain/discount-spec.js';
import { isInsideServiceWindow, needsServiceWindow, outsideWindowCode, outsideWindowMessage } from '../domain/service-window.js';
import type { RenderedContent } from '../channels/channel.js';

/**
 * The interpreter: runs one session from its current node until it reaches a wait
 * (delay, wait_for_reply, an outgoing call) or the end, and returns everything that
 * run changes as data. It does no I/O; the scheduler writes the result in one
 * transaction, so a crash before commit simply runs the same nodes again, and the
 * message keys (session, node, visit) make that re-run harmless.
 */

export interface InboundReply {
  message_id: string;
  text: string | null;
  button_id: string | null;
  at: number;
}

export interface WebhookResult {
  ok: boolean;
  status: number;
  body: unknown;
  error?: string;
}

export interface SessionState {
  /** Times each node was entered: the visit number in message keys. */
  visits: Record<string, number>;
  /** The wait the session is in, if any. */
  wait?: { node: string; visit: number; until: number | null; reply?: InboundReply | null } | null;
  /** Results of webhook nodes by save_as name, usable in later conditions and merge tags. */
  webhook?: Record<string, WebhookResult>;
  /** Webhook calls already made, by `node:visit`, so a wake after the call continues past it. */
  calls?: Record<string, WebhookResult>;
  /** The latest discount the session created: the `{{discount.*}}` merge tags. */
  discount?: Record<string, unknown>;
  /** Discount steps in progress, by `node:visit`: the code chosen, the attempts, and the result once known. */
  discount_runs?: Record<string, DiscountRun>;
  last_message_id?: string | null;
  goal_reached_at?: number | null;
  reply?: InboundReply | null;
}

/**
 * One discount step run. The code and `at` are chosen once, before the first provider
 * call, and committed with it: every retry (after a failure, a lost answer or a crash)
 * asks for the same code with the same parameters, which is what lets the providers'
 * idempotency keys and code look-ups recognise it.
 */
export interface DiscountRun {
  code: string;
  /** Epoch ms of the first attempt: expiries are computed from it. */
  at: number;
  /** Attempts whose failure was retryable, so far. */
  attempts: number;
  last_error?: { code: string; message: string } | null;
  /** Set by the worker once the attempt settled; the step consumes it on its next run. */
  result?: DiscountStepResult;
}

export type DiscountStepResult =
  | { ok: true; discount: { id: string; code: string; percentOff: number | null; amountOff: number | null; currency: string | null; expiresAt: string | null; provider: string } }
  | { ok: false; code: string; message: string };

/** A discount to create outside the transaction before the session can go on. */
export interface DiscountCall {
  node_id: string;
  visit: number;
  /** stripe | shopify | builtin */
  provider: string;
  spec: DiscountSpec;
  code: string;
  at: number;
  /** The attempt about to be made, from 1. */
  attempt: number;
  /** session:node:visit: stable for the step run, so a retry is recognised as the same request. */
  idempotency_key: string;
  customer_email: string | null;
}

/**
 * How long a discount call may take before the step is tried again: the Stripe and
 * Shopify clients make up to seven requests in a row, each with its own timeout.
 */
export const discountCallRequests = 8;

export interface ContactSnapshot {
  id: string;
  phone: string | null;
  email: string | null;
  name: string | null;
  first_name: string | null;
  last_name: string | null;
  timezone: string | null;
  language: string | null;
  metadata: Record<string, unknown>;
  whatsapp_opted_out_at: number | null;
  sms_opted_out_at: number | null;
  email_opted_out_at: number | null;
  /** The contact's last WhatsApp message: the 24-hour customer service window runs from it. */
  whatsapp_last_inbound_at?: number | null;
}

export interface SessionInput {
  id: string;
  workspace_id: string;
  definition_id: string;
  contact_id: string;
  kind: 'sequence' | 'flow';
  current_node: string | null;
  expires_at: number | null;
  created_at: number;
  steps_run: number;
  context: Record<string, unknown>;
  event: Record<string, unknown> | null;
  state: SessionState;
}

export interface QueuedMessage {
  node_id: string;
  visit: number;
  channel: Channel;
  recipient: string | null;
  kind: string;
  content: RenderedContent;
  marketing: boolean;
  on_failure: 'continue' | 'stop';
  /** Set when the message is recorded as already failed (no recipient, opted out…). */
  failed?: { code: string; message: string; status: 'failed' | 'skipped' };
}

export interface StepRecord {
  node_id: string;
  node_type: string;
  visit: number;
  outcome: string;
  detail: Record<string, unknown> | null;
}

export interface ContactChange {
  addTags: string[];
  removeTags: string[];
  set: Record<string, string | null>;
}

export interface AdvanceResult {
  status: 'running' | 'waiting' | 'completed' | 'stopped' | 'expired' | 'failed';
  current_node: string | null;
  wake_at: number | null;
  state: SessionState;
  end_reason: string | null;
  messages: QueuedMessage[];
  steps: StepRecord[];
  contact: ContactChange;
  /** A webhook call to make outside the transaction before the session can go on. */
  call: { node_id: string; visit: number; save_as: string; request: WebhookRequest } | null;
  /** A discount to create outside the transaction before the session can go on. */
  discount: DiscountCall | null;
  nodes_run: number;
}

export interface WebhookRequest {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: string | null;
  idempotency_key: string;
}

export interface AdvanceEnvironment {
  now: number;
  tags: ReadonlySet<string>;
  lastMessageStatus: string | null;
  /** The contact's time zone when it has none. */
  defaultTimezone: string;
  /** Base URL for links (unsubscribe). */
  unsubscribeUrl?: string;
  workspaceName?: string;
  /** How long to wait for a webhook call before trying it again. */
  callTimeoutMs: number;
  /**
   * Whether WhatsApp's 24-hour service window is enforced for this workspace (it has
   * real WhatsApp settings; the sandbox does not enforce it).
   */
  whatsappWindowApplies?: boolean;
}

const maxNodesPerAdvance = 1000;

export function contactScope(contact: ContactSnapshot): Record<string, unknown> {
  return {
    ...contact.metadata,
    id: contact.id,
    phone: contact.phone,
    email: contact.email,
    name: contact.name,
    first_name: contact.first_name,
    last_name: contact.last_name,
    timezone: contact.timezone,
    language: contact.language,
    metadata: contact.metadata,
    // The subscribers API speaks camelCase: {{contact.firstName}} works as well.
    firstName: contact.first_name,
    lastName: contact.last_name,
    attributes: contact.metadata,
    customAttributes: contact.metadata,
  };
}

export function advanceSession(
  graph: CompiledGraph,
  session: SessionInput,
  contact: ContactSnapshot,
  env: AdvanceEnvironment,
): AdvanceResult {
  const state: SessionState = cloneJson(session.state);
  state.visits ??= {};
  const tags = new Set([...env.tags].map((t) => t.toLowerCase()));
  const contactFields = contactScope(contact);
  const result: AdvanceResult = {
    status: 'running',
    current_node: session.current_node,
    wake_at: null,
    state,
    end_reason: null,
    messages: [],
    steps: [],
    contact: { addTags: [], removeTags: [], set: {} },
    call: null,
    discount: null,
    nodes_run: 0,
  };
  let lastMessageStatus = env.lastMessageStatus;

  const scope = (): MergeScope => ({
    contact: contactFields,
    context: session.context,
    event: session.event ?? {},
    discount: state.discount ?? {},
    webhook: state.webhook ?? {},
    reply: state.reply ? { text: state.reply.text, button_id: state.reply.button_id } : {},
    session: { id: session.id, started_at: new Date(session.created_at).toISOString() },
    workspace: { name: env.workspaceName ?? '' },
    unsubscribe_url: env.unsubscribeUrl ?? '',
    first_name: contact.first_name,
    last_name: contact.last_name,
    firstName: contact.first_name,
    lastName: contact.last_name,
    name: contact.name,
    email: contact.email,
    phone: contact.phone,
    last_message: { status: lastMessageStatus },
  });

  const end = (status: AdvanceResult['status'], reason: string): AdvanceResult => {
    result.status = status;
    result.end_reason = reason;
    result.current_node = null;
    result.wake_at = null;
    state.wait = null;
    return result;
  };

  if (session.expires_at !== null && env.now >= session.expires_at) {
    result.steps.push({ node_id: session.current_node ?? '', node_type: 'session', visit: 0, outcome: 'expired', detail: { expires_at: new Date(session.expires_at).toISOString() } });
    return end('expired', 'ttl_elapsed');
  }

  let nodeId: string | null = session.current_node;
  // Resuming a wait: the node was entered before; it must not count as a new visit.
  let resuming = state.wait?.node === nodeId;

  while (nodeId !== null) {
    if (result.nodes_run >= maxNodesPerAdvance) {
      result.steps.push({ node_id: nodeId, node_type: 'session', visit: 0, outcome: 'failed', detail: { reason: 'too many nodes in one run' } });
      return end('failed', 'runaway_loop');
    }
    const node: DefinitionNode | undefined = graph.nodes.get(nodeId);
    if (!node) return end('failed', `unknown node ${nodeId}`);
    let visit: number;
    if (resuming) {
      visit = state.visits[nodeId] ?? 1;
      resuming = false;
    } else {
      visit = (state.visits[nodeId] ?? 0) + 1;
      state.visits[nodeId] = visit;
    }
    result.current_node = nodeId;
    const step = (outcome: string, detail: Record<string, unknown> | null = null) =>
      result.steps.push({ node_id: node.id, node_type: node.type, visit, outcome, detail });

    let branch: string | null = 'next';
    switch (node.type) {
      case 'send_message': {
        result.nodes_run += 1;
        const message = buildMessage(node, visit, contact, scope(), env);
        result.messages.push(message);
        if (message.failed) {
          step(message.failed.status, { code: message.failed.code, reason: message.failed.message, channel: node.channel });
          lastMessageStatus = message.failed.status;
          if (message.failed.status === 'failed' && message.on_failure === 'stop') return end('stopped', `send_failed:${message.failed.code}`);
        } else {
          step('queued', { channel: node.channel, to: message.recipient });
          lastMessageStatus = 'queued';
        }
        break;
      }
      case 'delay': {
        const wait = state.wait?.node === node.id && state.wait.visit === visit ? state.wait : null;
        if (!wait) {
          result.nodes_run += 1;
          const until = node.until
            ? nextTimeOfDay(env.now, node.until.time, pickTimeZone(node.until.timezone, contact.timezone, env.defaultTimezone))
            : env.now + durationMs(node.duration);
          state.wait = { node: node.id, visit, until };
          step('waiting', { until: new Date(until).toISOString() });
          if (until > env.now) return pause(result, session, until, 'running');
          state.wait = null;
        } else if (wait.until !== null && env.now < wait.until) {
          return pause(result, session, wait.until, 'running');
        } else {
          state.wait = null;
        }
        break;
      }
      case 'wait_for_reply': {
        const wait = state.wait?.node === node.id && state.wait.visit === visit ? state.wait : null;
        if (!wait) {
          result.nodes_run += 1;
          // No timeout (allowed in sequences): wait for a reply however long it takes.
          const until = node.timeout ? env.now + durationMs(node.timeout) : null;
          state.wait = { node: node.id, visit, until, reply: null };
          state.reply = null;
          step('waiting_for_reply', { timeout_at: until === null ? null : new Date(until).toISOString() });
          return pause(result, session, until, 'waiting');
        }
        if (wait.reply) {
          const reply = wait.reply;
          state.reply = reply;
          const matched = matchReply(node, reply);
          if (matched !== null) {
            state.wait = null;
            branch = matched;
            step('replied', { branch, text: reply.text, button_id: reply.button_id });
          } else if (graph.next.has(`${node.id}\u0000no_match`)) {
            state.wait = null;
            branch = 'no_match';
            step('replied', { branch, text: reply.text, button_id: reply.button_id });
          } else {
            // A reply that fits no branch: keep waiting for one that does.
            wait.reply = null;
            step('reply_ignored', { text: reply.text, button_id: reply.button_id });
            return pause(result, session, wait.until, 'waiting');
          }
        } else if (wait.until !== null && env.now >= wait.until) {
          state.wait = null;
          branch = 'timeout';
          step('timed_out', { branch });
        } else {
          return pause(result, session, wait.until, 'waiting');
        }
        break;
      }
      case 'condition': {
        result.nodes_run += 1;
        const verdict = evaluateCondition(node.condition, { scope: scope(), tags, lastMessageStatus });
        branch = verdict.result ? 'true' : 'false';
        step(branch, { why: verdict.explanation });
        break;
      }
      case 'split': {
        result.nodes_run += 1;
        branch = chooseSplitBranch(node.branches, `${session.definition_id}:${node.id}:${session.contact_id}`);
        step(branch, { why: 'assigned by a stable hash of the contact' });
        break;
      }
      case 'add_tag':
      case 'remove_tag': {
        result.nodes_run += 1;
        const tag = node.tag.trim();
        if (node.type === 'add_tag') {
          tags.add(tag.toLowerCase());
          result.contact.addTags.push(tag);
        } else {
          tags.delete(tag.toLowerCase());
          result.contact.removeTags.push(tag);
        }
        step('done', { tag });
        break;
      }
      case 'update_contact': {
        result.nodes_run += 1;
        const applied: Record<string, string | null> = {};
        for (const [field, template] of Object.entries(node.set)) {
          const value = template === null ? null : renderTemplate(template, scope());
          applied[field] = value;
          result.contact.set[field] = value;
          if (field.startsWith('metadata.')) {
            contact.metadata = { ...contact.metadata, [field.slice(9)]: value };
            contactFields.metadata = contact.metadata;
            contactFields[field.slice(9)] = value;
          } else {
            contactFields[field] = value;
          }
        }
        step('done', { set: applied });
        break;
      }
      case 'webhook': {
        const key = `${node.id}:${visit}`;
        const done = state.calls?.[key];
        if (!done) {
          const pending = state.wait?.node === node.id && state.wait.visit === visit ? state.wait : null;
          if (pending && pending.until !== null && env.now < pending.until) return pause(result, session, pending.until, 'running');
          // First call, or the result never came back (a crash mid-call): call again with the
          // same idempotency key, so a receiver that honours it sees one request.
          if (!pending) result.nodes_run += 1;
          const request = buildWebhookRequest(node, scope(), `${session.id}:${key}`);
          result.call = { node_id: node.id, visit, save_as: node.save_as ?? node.id, request };
          const until = env.now + env.callTimeoutMs + 30_000;
          state.wait = { node: node.id, visit, until };
          step(pending ? 'calling_again' : 'calling', { method: request.method, url: request.url });
          return pause(result, session, until, 'running');
        }
        state.wait = null;
        state.webhook = { ...(state.webhook ?? {}), [node.save_as ?? node.id]: done };
        delete state.calls![key];
        step(done.ok ? 'succeeded' : 'failed', { status: done.status, error: done.error ?? null });
        if (!done.ok) {
          if (graph.next.has(`${node.id}\u0000failure`)) branch = 'failure';
          else if ((node.on_failure ?? 'continue') === 'stop') return end('stopped', 'webhook_failed');
        }
        break;
      }
      case 'goal': {
        result.nodes_run += 1;
        state.goal_reached_at = env.now;
        step('goal_reached', null);
        if (node.exit !== false) return end('completed', 'goal_reached');
        break;
      }
      case 'exit': {
        result.nodes_run += 1;
        step('exit', null);
        return end('completed', 'exit_node');
      }
      case 'create_discount': {
        const key = `${node.id}:${visit}`;
        const run = state.discount_runs?.[key];
        const spec = node.discount as DiscountSpec;
        const provider = typeof spec.provider === 'string' ? spec.provider : 'stripe';
        if (!run?.result) {
          const pending = state.wait?.node === node.id && state.wait.visit === visit ? state.wait : null;
          // Waiting for the call in flight, or for the backoff after a retryable failure.
          if (run && pending && pending.until !== null && env.now < pending.until) return pause(result, session, pending.until, 'running');
          // First attempt, a retry, or the answer never came back (a crash mid-call): the
          // same code and time again, so the provider sees the same request.
          if (!run) result.nodes_run += 1;
          const current: DiscountRun = run ?? { code: newDiscountCode(spec.codePrefix), at: env.now, attempts: 0 };
          state.discount_runs = { ...(state.discount_runs ?? {}), [key]: current };
          result.discount = {
            node_id: node.id,
            visit,
            provider,
            spec,
            code: current.code,
            at: current.at,
            attempt: current.attempts + 1,
            idempotency_key: `${session.id}:${key}`,
            customer_email: contact.email,
          };
          const until = env.now + discountCallRequests * env.callTimeoutMs + 30_000;
          state.wait = { node: node.id, visit, until };
          step(run ? 'creating_again' : 'creating', { provider, code: current.code, attempt: current.attempts + 1, ...(run?.last_error ? { last_error: run.last_error } : {}) });
          return pause(result, session, until, 'running');
        }
        state.wait = null;
        const { [key]: _done, ...rest } = state.discount_runs!;
        if (Object.keys(rest).length > 0) state.discount_runs = rest;
        else delete state.discount_runs;
        const outcome = run.result;
        if (outcome.ok) {
          const { id, ...tags } = outcome.discount;
          state.discount = tags;
          step('created', { provider, code: tags.code, discount_id: id, attempts: run.attempts + 1 });
        } else {
          step('failed', { provider, code: outcome.code, reason: outcome.message, attempts: run.attempts + 1 });
          if (graph.next.has(`${node.id}\u0000failure`)) branch = 'failure';
          // Stop by default: the emails after this step would offer a code that does not exist.
          else if ((node.on_failure ?? 'stop') === 'stop') return end('stopped', `discount_failed:${outcome.code}`);
        }
        break;
      }
    }
    nodeId = branch === null ? null : nextNode(graph, node.id, branch);
  }
  return end('completed', 'end_of_graph');
}

/** The node's zone, else the contact's, else the default; a zone that is not valid IANA is skipped. */
function pickTimeZone(...zones: Array<string | null | undefined>): string {
  for (const zone of zones) if (zone && isValidTimeZone(zone)) return zone;
  return 'UTC';
}

function pause(result: AdvanceResult, session: SessionInput, until: number | null, status: 'running' | 'waiting'): AdvanceResult {
  result.status = status;
  // A flow never outlives its TTL: it wakes at the TTL to expire even while waiting.
  let wake = until;
  if (session.expires_at !== null && (wake === null || session.expires_at < wake)) wake = session.expires_at;
  result.wake_at = wake;
  return result;
}

function matchReply(node: WaitForReplyNode, reply: InboundReply): string | null {
  const text = (reply.text ?? '').trim();
  const lower = text.toLowerCase();
  for (const branch of node.branches) {
    if (matches(branch.match, reply, text, lower)) return branch.id;
  }
  return null;
}

function matches(match: ReplyMatch, reply: InboundReply, text: string, lower: string): boolean {
  switch (match.type) {
    case 'button':
      return reply.button_id === match.button_id;
    case 'keyword':
      return match.keywords.some((k) => {
        const keyword = k.trim().toLowerCase();
        return lower === keyword || lower.split(/\s+/).includes(keyword);
      });
    case 'regex':
      try {
        return new RegExp(match.pattern, match.flags ?? 'i').test(text);
      } catch {
        return false;
      }
    case 'any':
      return text.length > 0 || reply.button_id !== null;
  }
}

function isOptedOut(contact: ContactSnapshot, channel: Channel): boolean {
  if (channel === 'whatsapp') return contact.whatsapp_opted_out_at !== null;
  if (channel === 'sms') return contact.sms_opted_out_at !== null;
  return contact.email_opted_out_at !== null;
}

function buildMessage(node: SendMessageNode, visit: number, contact: ContactSnapshot, scope: MergeScope, env: AdvanceEnvironment): QueuedMessage {
  const recipient = node.channel === 'email' ? contact.email : contact.phone;
  const marketing = node.marketing ?? node.channel === 'email';
  const base = { node_id: node.id, visit, channel: node.channel, recipient, marketing, on_failure: node.on_failure ?? 'continue' } as const;
  const content = renderContent(node, scope);
  if (!recipient) {
    return {
      ...base,
      kind: content.kind,
      content,
      failed: { code: 'no_recipient', message: `The contact has no ${node.channel === 'email' ? 'email address' : 'phone number'}`, status: 'failed' },
    };
  }
  // SMS providers refuse every message to a number that opted out; other channels only marketing.
  if (isOptedOut(contact, node.channel) && (marketing || node.channel === 'sms')) {
    return { ...base, kind: content.kind, content, failed: { code: 'opted_out', message: `The contact opted out of ${node.channel} messages`, status: 'skipped' } };
  }
  // Meta refuses free-form messages outside the 24-hour window (131047); refuse them
  // first, so the node's failure policy applies without a provider round trip.
  if (node.channel === 'whatsapp' && env.whatsappWindowApplies && needsServiceWindow(content) && !isInsideServiceWindow(contact.whatsapp_last_inbound_at, env.now)) {
    return { ...base, kind: content.kind, content, failed: { code: outsideWindowCode, message: outsideWindowMessage, status: 'failed' } };
  }
  return { ...base, kind: content.kind, content };
}

export function renderContent(node: SendMessageNode, scope: MergeScope): RenderedContent {
  const c = node.content ?? {};
  if (node.template) {
    // Variables use the keys templates declare: "1", "2"… for the body, "header_1" for the
    // header, "button_<index>" for a URL button's suffix.
    const filled = Object.entries(node.template.variables ?? {}).map(([key, value]) => [key, renderTemplate(value, scope)] as const);
    const numbered = (prefix: string) =>
      filled
        .map(([key, value]) => [prefix === '' ? key : key.slice(prefix.length), value, key.startsWith(prefix)] as const)
        .filter(([n, , matches]) => matches && /^\d+$/.test(n))
        .sort((a, b) => Number(a[0]) - Number(b[0]));
    const body = numbered('').map(([, value]) => value);
    const header = numbered('header_').map(([, value]) => value);
    const buttons = numbered('button_').map(([index, value]) => ({ index: Number(index), sub_type: 'url' as const, parameter: value }));
    const contactLanguage = (scope.contact as { language?: unknown } | undefined)?.language;
    return {
      kind: 'template',
      name: node.template.name,
      language: node.template.language ?? (typeof contactLanguage === 'string' && contactLanguage !== '' ? contactLanguage : 'en'),
      components: { body, ...(header.length > 0 ? { header } : {}), ...(buttons.length > 0 ? { buttons } : {}) },
    };
  }
  if (node.channel === 'email') {
    const subject = renderTemplate(c.subject ?? '', scope);
    const rendered = renderEmail({ blocks: c.blocks, html: c.html, text: c.text, previewText: c.preview_text }, scope);
    return {
      kind: 'email',
      subject,
      html: rendered.html,
      text: rendered.text,
      ...(c.preview_text ? { previewText: renderTemplate(c.preview_text, scope) } : {}),
      ...(Object.keys(rendered.headers).length > 0 ? { headers: rendered.headers } : {}),
    };
  }
  const text = renderTemplate(c.text ?? '', scope);
  if (node.channel === 'whatsapp' && c.buttons && c.buttons.length > 0) {
    return { kind: 'buttons', text, buttons: c.buttons.map((b) => ({ id: b.id, title: renderTemplate(b.title, scope) })) };
  }
  if (node.channel === 'whatsapp' && c.list) {
    return { kind: 'list', text, button: c.list.button, sections: c.list.sections };
  }
  return { kind: 'text', text };
}

function buildWebhookRequest(node: WebhookNode, scope: MergeScope, idempotencyKey: string): WebhookRequest {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(node.headers ?? {})) headers[name] = renderTemplate(value, scope);
  const body = node.body === undefined ? null : renderTemplate(node.body, scope, { escape: 'json' });
  if (body !== null && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
  headers['idempotency-key'] = idempotencyKey;
  return { url: renderTemplate(node.url, scope), method: node.method ?? (body === null ? 'GET' : 'POST'), headers, body, idempotency_key: idempotencyKey };
}
