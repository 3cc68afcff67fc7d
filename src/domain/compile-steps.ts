import type { Channel, DefinitionKind, DefinitionNode, DefinitionProblem, Duration, Edge, Graph } from './definition.js';
import { resolveEntry } from './definition.js';
import { isPlainObject, type JsonObject } from './json.js';
import { collectGraphFindings, toErrorPath, type GraphFinding } from './validate-definition.js';

/**
 * A linear `steps` list (the create-sequence body of the reference page, and our own typed
 * steps) compiled into the same graph the engine runs. Each step becomes its node, preceded
 * by a `delay` node when the step has a non-zero `delay`; the nodes are chained by `next`
 * edges. Node ids come from positions (`step-1`, `step-1-delay`, `step-2`, …), so the same
 * list always gives the same ids and editing a step's text keeps them.
 *
 * The compiled graph goes through the same validation as a graph body, and every problem
 * is worded and located in terms of the steps: `steps[1]: subject uses unknown merge tag
 * {{contct.first_name}}` with path `1.subject` (relative to the steps array).
 *
 * @example
 * compileSteps([{ subject: 'Hi', html: '<p>Hi</p>' }, { subject: 'Tips', delay: { days: 1 }, html: '<p>…</p>' }], { defaultChannel: 'email' })
 * // graph: step-1 (email) → step-2-delay (1 day) → step-2 (email)
 */

export interface CompileStepsOptions {
  /** The channel of a message step that names none (`type: "send_message"` or a typeless step without email fields). */
  defaultChannel: Channel;
  /** Passed to validation; default `sequence` (steps are the sequences' form). */
  kind?: DefinitionKind;
  /** Passed to validation: send_message templates must exist. */
  templateExists?: (name: string, language?: string) => boolean;
  /** An empty list compiles to an empty graph (a draft); default true. */
  allowEmpty?: boolean;
}

export interface CompiledSteps {
  graph: Graph | null;
  problems: DefinitionProblem[];
}

/** One step of the linear view, as accepted by compileSteps and returned by graphToSteps. */
export interface LinearStep {
  type: string;
  [field: string]: unknown;
}

const messageTypes = ['send_message', 'email', 'whatsapp', 'sms'];
const stepTypes = [...messageTypes, 'create_discount', 'add_tag', 'remove_tag', 'update_contact', 'webhook', 'goal', 'exit', 'delay'];
const common = ['type', 'name', 'delay'];
const messageFields = [...common, 'channel', 'text', 'template', 'subject', 'previewText', 'preview_text', 'html', 'blocks', 'buttons', 'list', 'marketing', 'on_failure'];
const stepFields: Record<string, readonly string[]> = {
  create_discount: [...common, 'discount', 'on_failure'],
  add_tag: [...common, 'tag'],
  remove_tag: [...common, 'tag'],
  update_contact: [...common, 'set'],
  webhook: [...common, 'url', 'method', 'body', 'headers', 'save_as', 'on_failure'],
  goal: [...common, 'exit'],
  exit: [...common],
  delay: ['type', 'name', 'delay', 'until'],
};

/** Where each compiled node came from, to word its problems in terms of steps. */
interface Origin {
  step: number;
  /** Node field → step field. */
  field: (nodeField: string) => string;
  /** Node fields whose findings the step's own check already reported in its words. */
  suppress?: ReadonlySet<string>;
}

const emailHints = ['subject', 'previewText', 'preview_text', 'html', 'blocks'];

function stepDelay(value: unknown): { skip: boolean } {
  // An all-zero (or empty) delay means "right away": no node. Anything else, even malformed,
  // becomes a delay node so validation names what is wrong with it.
  if (!isPlainObject(value)) return { skip: false };
  return { skip: Object.values(value).every((v) => v === 0) };
}

export function compileSteps(steps: unknown[], options: CompileStepsOptions): CompiledSteps {
  const findings: Array<GraphFinding & { step?: number }> = [];
  const stepProblem = (step: number, field: string | undefined, detail: string, code: DefinitionProblem['code'] = 'invalid_node') =>
    findings.push({ code, detail, step, ...(field !== undefined ? { field } : {}) });
  const nodes: JsonObject[] = [];
  const origins = new Map<string, Origin>();
  const same = (f: string) => f;

  if (!Array.isArray(steps)) {
    return { graph: null, problems: [{ code: 'invalid_node', message: 'steps must be an array of steps' }] };
  }

  steps.forEach((step, i) => {
    const id = `step-${i + 1}`;
    if (!isPlainObject(step)) {
      stepProblem(i, undefined, `must be an object, got ${Array.isArray(step) ? 'an array' : JSON.stringify(step) ?? 'nothing'}`);
      return;
    }
    const declared = step.type;
    const inferred = declared === undefined ? (emailHints.some((k) => step[k] !== undefined) || options.defaultChannel === 'email' ? 'email' : 'send_message') : declared;
    if (typeof inferred !== 'string' || !stepTypes.includes(inferred)) {
      stepProblem(i, 'type', `${JSON.stringify(declared)} is not a step type (types: ${stepTypes.join(', ')})`, 'unknown_node_type');
      return;
    }
    const type = inferred;
    const allowed = messageTypes.includes(type) ? messageFields : stepFields[type]!;
    for (const key of Object.keys(step)) {
      if (!allowed.includes(key)) stepProblem(i, key, `is not a field of a ${declared === undefined ? 'email' : type} step (fields: ${allowed.join(', ')})`);
    }
    if (type !== 'delay' && step.delay !== undefined && !stepDelay(step.delay).skip) {
      const delayId = `${id}-delay`;
      nodes.push({ id: delayId, type: 'delay', duration: step.delay });
      origins.set(delayId, { step: i, field: (f) => f.replace(/^duration/, 'delay') });
    }
    const name = step.name !== undefined ? { name: step.name } : {};
    if (messageTypes.includes(type)) {
      const channel = type === 'send_message' ? (step.channel ?? (emailHints.some((k) => step[k] !== undefined) ? 'email' : options.defaultChannel)) : type;
      if (type !== 'send_message' && step.channel !== undefined && step.channel !== type) stepProblem(i, 'channel', `must be "${type}" (or absent) in a ${type} step`);
      const isSequenzyEmail = channel === 'email' && type !== 'send_message';
      const bodiless = isSequenzyEmail && step.template === undefined && step.blocks === undefined && step.html === undefined;
      if (bodiless) stepProblem(i, undefined, 'is an email step and needs blocks or html');
      const previewKey = step.previewText !== undefined ? 'previewText' : 'preview_text';
      const content: JsonObject = {};
      const contentKeys: Array<[string, string]> = [
        ['subject', 'subject'],
        ['preview_text', previewKey],
        ['text', 'text'],
        ['html', 'html'],
        ['blocks', 'blocks'],
        ['buttons', 'buttons'],
        ['list', 'list'],
      ];
      for (const [to, from] of contentKeys) if (step[from] !== undefined) content[to] = step[from];
      const node: JsonObject = { id, type: 'send_message', ...name, channel };
      if (step.template !== undefined) node.template = step.template;
      if (Object.keys(content).length > 0 || step.template === undefined) node.content = content;
      if (step.marketing !== undefined) node.marketing = step.marketing;
      if (step.on_failure !== undefined) node.on_failure = step.on_failure;
      nodes.push(node);
      const contentMap = new Map(contentKeys.map(([to, from]) => [`content.${to}`, from]));
      origins.set(id, {
        step: i,
        ...(bodiless ? { suppress: new Set(['content']) } : {}),
        field: (f) => {
          if (f === 'channel') return type === 'send_message' ? 'channel' : 'type';
          if (f === 'content') return '';
          const match = /^content\.([a-z_]+)(.*)$/.exec(f);
          if (match) return `${contentMap.get(`content.${match[1]}`) ?? match[1]}${match[2]}`;
          return f;
        },
      });
      return;
    }
    if (type === 'delay') {
      const node: JsonObject = { id, type: 'delay', ...name };
      if (step.delay !== undefined) node.duration = step.delay;
      if (step.until !== undefined) node.until = step.until;
      nodes.push(node);
      origins.set(id, { step: i, field: (f) => f.replace(/^duration/, 'delay') });
      return;
    }
    // The other step types carry the node's own fields under the same names.
    const node: JsonObject = { id, type, ...name };
    for (const key of stepFields[type]!) if (!common.includes(key) && step[key] !== undefined) node[key] = step[key];
    nodes.push(node);
    origins.set(id, { step: i, field: same });
  });

  const edges: Edge[] = [];
  for (let i = 1; i < nodes.length; i++) {
    const from = nodes[i - 1]!;
    // An exit node has no way out: whatever follows it is reported as unreachable.
    if (from.type !== 'exit') edges.push({ from: from.id as string, to: nodes[i]!.id as string });
  }
  // The entry is named: a list that starts with an exit step has no single root to infer.
  const candidate = nodes.length > 0 ? { entry: nodes[0]!.id as string, nodes, edges } : { nodes, edges };

  const validation = collectGraphFindings(candidate, {
    kind: options.kind ?? 'sequence',
    allowEmpty: options.allowEmpty ?? true,
    ...(options.templateExists ? { templateExists: options.templateExists } : {}),
  });
  // An unreachable node in a chain can only follow an exit; when there is no graph
  // (earlier steps failed), problems about the chain say nothing useful.
  for (const finding of validation.findings) {
    const origin = finding.node !== undefined ? origins.get(finding.node) : undefined;
    if (!origin) {
      findings.push(finding);
      continue;
    }
    if (finding.field !== undefined && origin.suppress?.has(finding.field)) continue;
    const field = finding.field !== undefined ? origin.field(finding.field) : undefined;
    const detail = finding.code === 'unreachable_node' ? 'is never reached: an exit step before it ends the sequence' : finding.detail;
    findings.push({ code: finding.code, detail, step: origin.step, node: finding.node, ...(field ? { field } : {}) });
  }

  const problems = findings.map((finding): DefinitionProblem => {
    if (finding.step === undefined) {
      const message = finding.code === 'no_entry_node' ? 'steps must hold at least one step' : finding.detail;
      return { code: finding.code, message, ...(finding.node ? { node: finding.node } : {}) };
    }
    const who = `steps[${finding.step}]`;
    const message = finding.field !== undefined ? `${who}: ${finding.field} ${finding.detail}` : `${who} ${finding.detail}`;
    const path = toErrorPath(`[${finding.step}]${finding.field !== undefined ? `.${finding.field}` : ''}`);
    return { code: finding.code, message, ...(finding.node !== undefined ? { node: finding.node } : {}), path };
  });
  return { graph: problems.length === 0 ? (validation.shaped as Graph) : null, problems };
}

function durationView(duration: Duration | undefined): Duration | undefined {
  if (!duration) return undefined;
  const view: Duration = {};
  for (const key of ['days', 'hours', 'minutes', 'seconds'] as const) if (duration[key]) view[key] = duration[key];
  return Object.keys(view).length > 0 ? view : undefined;
}

function stepOf(node: DefinitionNode): LinearStep | null {
  const name = node.name !== undefined ? { name: node.name } : {};
  switch (node.type) {
    case 'send_message': {
      const c = node.content ?? {};
      const step: LinearStep = { type: node.channel, ...name };
      if (node.template) step.template = node.template;
      if (node.channel === 'email') {
        if (c.subject !== undefined) step.subject = c.subject;
        if (c.preview_text !== undefined) step.previewText = c.preview_text;
        if (c.blocks !== undefined) step.blocks = c.blocks;
        if (c.html !== undefined) step.html = c.html;
        if (c.text !== undefined) step.text = c.text;
      } else {
        if (c.text !== undefined) step.text = c.text;
        if (c.buttons !== undefined) step.buttons = c.buttons;
        if (c.list !== undefined) step.list = c.list;
      }
      if (node.marketing !== undefined) step.marketing = node.marketing;
      if (node.on_failure !== undefined) step.on_failure = node.on_failure;
      return step;
    }
    case 'delay':
      return { type: 'delay', ...name, ...(node.duration ? { delay: durationView(node.duration) ?? {} } : {}), ...(node.until ? { until: node.until } : {}) };
    case 'create_discount':
      return { type: node.type, ...name, discount: node.discount, ...(node.on_failure !== undefined ? { on_failure: node.on_failure } : {}) };
    case 'add_tag':
    case 'remove_tag':
      return { type: node.type, ...name, tag: node.tag };
    case 'update_contact':
      return { type: node.type, ...name, set: node.set };
    case 'webhook': {
      const { id: _id, type: _type, name: _name, ...rest } = node;
      return { type: 'webhook', ...name, ...rest };
    }
    case 'goal':
      return { type: 'goal', ...name, ...(node.exit !== undefined ? { exit: node.exit } : {}) };
    case 'exit':
      return { type: 'exit', ...name };
    default:
      // Branching nodes (condition, split, wait_for_reply) have no linear form.
      return null;
  }
}

/**
 * The linear steps view of a graph (for GET responses), or null when the graph branches.
 * A duration delay right before an action becomes that step's `delay` — except a delay
 * node named `step-N`, which was a delay step of its own and stays one, so compiling the
 * view again gives back the same node ids.
 */
export function graphToSteps(graph: Graph): LinearStep[] | null {
  return graphToStepNodes(graph)?.map((s) => s.step) ?? null;
}

/** graphToSteps, with the id of the node each step shows (the action, not the delay before it). */
export function graphToStepNodes(graph: Graph): Array<{ step: LinearStep; nodeId: string }> | null {
  const entry = resolveEntry(graph);
  if (graph.nodes.length === 0) return [];
  if (entry === null) return null;
  const byId = new Map(graph.nodes.map((n) => [n.id, n] as const));
  const outgoing = new Map<string, Edge[]>();
  for (const edge of graph.edges) outgoing.set(edge.from, [...(outgoing.get(edge.from) ?? []), edge]);
  const chain: DefinitionNode[] = [];
  const seen = new Set<string>();
  for (let id: string | undefined = entry; id !== undefined; ) {
    const node = byId.get(id);
    if (!node || seen.has(id)) return null;
    seen.add(id);
    chain.push(node);
    const out: Edge[] = outgoing.get(id) ?? [];
    if (out.length > 1 || (out.length === 1 && (out[0]!.branch ?? 'next') !== 'next')) return null;
    id = out[0]?.to;
  }
  if (chain.length !== graph.nodes.length) return null;

  const steps: Array<{ step: LinearStep; nodeId: string }> = [];
  for (let i = 0; i < chain.length; i++) {
    const node = chain[i]!;
    const next = chain[i + 1];
    if (node.type === 'delay' && node.duration && !node.until && next && next.type !== 'delay' && !/^step-\d+$/.test(node.id)) {
      const step = stepOf(next);
      if (step === null) return null;
      const delay = durationView(node.duration);
      steps.push({ step: delay ? { ...step, delay } : step, nodeId: next.id });
      i += 1;
      continue;
    }
    const step = stepOf(node);
    if (step === null) return null;
    steps.push({ step, nodeId: node.id });
  }
  return steps;
}
