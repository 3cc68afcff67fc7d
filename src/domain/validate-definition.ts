import {
  channels,
  nodeTypes,
  type Channel,
  type DefinitionKind,
  type DefinitionProblem,
  type Graph,
  type NodeType,
} from './definition.js';
import { conditionOperators } from './conditions.js';
import { validateDiscountSpec } from './discount-spec.js';
import { isPlainObject, nestsDeeperThan, type JsonObject } from './json.js';
import { htmlNestsDeeperThan, maxHtmlDepth } from './html-to-blocks.js';
import { extractMergeTags, mergeTagProblem } from './merge-tags.js';
import { isTimeOfDay, isValidTimeZone } from './schedule.js';
import { refusedPortProblem } from './outbound-ports.js';

/**
 * Validation of a definition graph that arrives as untrusted JSON (API bodies, MCP tools,
 * the dashboard). It checks the shape of every node and edge, then the graph as a whole,
 * and names every problem it finds rather than stopping at the first, each with the node,
 * the field, and a path from the graph's root in the API's field-error style
 * (`nodes.2.content.text`, `edges.0.to`).
 *
 * The graph comes back (a deep copy, typed) only when there is no problem at all, so a
 * caller cannot run or publish a graph that failed; unknown fields are problems too, which
 * catches typos such as `dealy` that would otherwise be silently ignored.
 *
 * @example
 * const { graph, problems } = validateGraph(body.graph, { kind: 'flow', templateExists });
 * if (!graph) throw new AppError('validation_failed', problems[0]!.message, { extra: { problems } });
 */

export interface ValidateGraphOptions {
  kind: DefinitionKind;
  /** When given, send_message templates must exist (by name, and language when the node names one). */
  templateExists?: (name: string, language?: string) => boolean;
  /** Accept a graph with no nodes at all (a draft not yet written). */
  allowEmpty?: boolean;
  /**
   * Accept `{{webhook.<any name>.…}}` in messages: for an email checked on its own (an email
   * template), whose webhook results come from the graph it is later used in.
   */
  anyWebhookName?: boolean;
}

export interface GraphValidation {
  graph: Graph | null;
  problems: DefinitionProblem[];
}

export const definitionLimits = {
  nodes: 500,
  edges: 5000,
  idLength: 100,
  nameLength: 200,
  textLength: 4096,
  /** RFC 5322 caps a header line at 998 characters. */
  subjectLength: 998,
  /** Gmail clips messages over ~102 kB; anything far beyond that is a mistake, not an email. */
  htmlLength: 512_000,
  blocks: 500,
  /** Blocks are small flat objects; a block nested deeper than this is an attack or a bug, and would exhaust the stack when copied. */
  blockDepth: 16,
  webhookBodyLength: 65_536,
  urlLength: 2048,
  headers: 50,
  conditionRules: 50,
  conditionDepth: 5,
  splitBranches: 10,
  replyBranches: 20,
  keywords: 50,
  updateFields: 50,
  templateVariables: 100,
  /** Ten years: longer waits are typos (minutes given as days) rather than intent. */
  maxWaitMs: 3650 * 86_400_000,
} as const;

export const idPattern = /^[A-Za-z0-9_.:-]+$/;

/** Fields update_contact may set, besides `metadata.<key>`. */
export const contactUpdateFields: readonly string[] = ['first_name', 'last_name', 'name', 'email', 'timezone', 'language'];

const metadataKeyPattern = /^[A-Za-z0-9_-]{1,100}$/;
const headerNamePattern = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$/;
const languagePattern = /^[A-Za-z]{2,3}(?:[_-][A-Za-z0-9]{2,8}){0,3}$/;
const emailPattern = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const httpMethods = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;
const durationKeys = ['days', 'hours', 'minutes', 'seconds'] as const;
const reservedReplyBranches = new Set(['timeout', 'no_match']);

/**
 * One problem before it is worded: the node (id and position) it concerns, the field
 * within the node, and the detail. compileSteps words the same findings in terms of steps.
 */
export interface GraphFinding {
  code: DefinitionProblem['code'];
  detail: string;
  /** The node's id as given (possibly malformed), when the problem concerns a node. */
  node?: string;
  nodeIndex?: number;
  /** The field inside the node (`content.text`), or inside the graph when there is no node (`edges[2].to`). */
  field?: string;
  /** A path from the graph's root when it is not `nodes[i].<field>` (edge problems reported on their node). */
  path?: string;
}

export interface GraphFindings {
  /** The input, typed, when its shape is sound (even if the graph as a whole has problems). */
  shaped: Graph | null;
  findings: GraphFinding[];
}

type Report = (field: string | undefined, detail: string, code?: DefinitionProblem['code']) => void;

// ---------------------------------------------------------------- field readers

function keysCheck(value: JsonObject, allowed: readonly string[], prefix: string, report: Report, what: string): void {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) report(`${prefix}${key}`, `is not a field of ${what} (fields: ${allowed.join(', ')})`);
  }
}

function join(prefix: string, key: string): string {
  return prefix === '' ? key : `${prefix}.${key}`;
}

interface StringRule {
  required?: boolean;
  max: number;
  /** Minimum length after trimming; default 1 (no blank strings). */
  min?: number;
}

function readString(owner: JsonObject, key: string, field: string, rule: StringRule, report: Report): string | undefined {
  const value = owner[key];
  if (value === undefined) {
    if (rule.required) report(field, 'is required');
    return undefined;
  }
  if (typeof value !== 'string') {
    report(field, `must be a string, got ${describe(value)}`);
    return undefined;
  }
  if (value.trim().length < (rule.min ?? 1)) {
    report(field, 'must not be empty');
    return undefined;
  }
  if (value.length > rule.max) {
    report(field, `must be at most ${rule.max} characters (got ${value.length})`);
    return undefined;
  }
  return value;
}

function checkId(value: unknown, field: string, report: Report, required = true): string | undefined {
  if (value === undefined) {
    if (required) report(field, 'is required');
    return undefined;
  }
  if (typeof value !== 'string') {
    report(field, `must be a string, got ${describe(value)}`);
    return undefined;
  }
  if (value.length < 1 || value.length > definitionLimits.idLength || !idPattern.test(value)) {
    report(field, `must be 1–${definitionLimits.idLength} characters of letters, digits, "_", ".", ":" or "-" (got ${JSON.stringify(value.slice(0, 120))})`);
    return undefined;
  }
  return value;
}

function readBoolean(owner: JsonObject, key: string, field: string, report: Report): void {
  if (owner[key] !== undefined && typeof owner[key] !== 'boolean') report(field, `must be true or false, got ${describe(owner[key])}`);
}

function readEnum(owner: JsonObject, key: string, field: string, allowed: readonly string[], report: Report, required = false): string | undefined {
  const value = owner[key];
  if (value === undefined) {
    if (required) report(field, `is required (one of ${allowed.join(', ')})`);
    return undefined;
  }
  if (typeof value !== 'string' || !allowed.includes(value)) {
    report(field, `must be one of ${allowed.join(', ')}, got ${describe(value)}`);
    return undefined;
  }
  return value;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  return String(value);
}

/** A duration object; returns its total in ms, or null when malformed. */
function checkDuration(value: unknown, field: string, report: Report, positive: boolean): number | null {
  if (!isPlainObject(value)) {
    report(field, `must be an object like {"days": 1, "hours": 2, "minutes": 0, "seconds": 0}, got ${describe(value)}`);
    return null;
  }
  let ok = true;
  let total = 0;
  for (const key of Object.keys(value)) {
    if (!(durationKeys as readonly string[]).includes(key)) {
      report(join(field, key), `is not a duration field (fields: ${durationKeys.join(', ')})`);
      ok = false;
      continue;
    }
    const amount = value[key];
    if (typeof amount !== 'number' || !Number.isInteger(amount) || amount < 0) {
      report(join(field, key), `must be a non-negative integer, got ${describe(amount)}`);
      ok = false;
      continue;
    }
    total += amount * { days: 86_400_000, hours: 3_600_000, minutes: 60_000, seconds: 1000 }[key as (typeof durationKeys)[number]];
  }
  if (!ok) return null;
  if (positive && total <= 0) {
    report(field, 'must be longer than zero');
    return null;
  }
  if (total > definitionLimits.maxWaitMs) {
    report(field, 'must be at most 3650 days');
    return null;
  }
  return total;
}

function checkRegex(pattern: unknown, flags: unknown, patternField: string, flagsField: string, report: Report): void {
  if (typeof pattern !== 'string' || pattern.length === 0 || pattern.length > 1000) {
    report(patternField, 'must be a regular expression of 1–1000 characters');
    return;
  }
  if (flags !== undefined && (typeof flags !== 'string' || !/^[dgimsuyv]{0,8}$/.test(flags))) {
    report(flagsField, `must be regular-expression flags such as "i", got ${describe(flags)}`);
    return;
  }
  try {
    new RegExp(pattern, (flags as string | undefined) ?? 'i');
  } catch (error) {
    report(patternField, `is not a valid regular expression: ${(error as Error).message}`);
  }
}

// ---------------------------------------------------------------- nodes

interface NodeContext {
  kind: DefinitionKind;
  report: Report;
}

function checkSendMessage(node: JsonObject, { report }: NodeContext): void {
  keysCheck(node, ['id', 'type', 'name', 'channel', 'template', 'content', 'marketing', 'on_failure'], '', report, 'send_message');
  const channel = readEnum(node, 'channel', 'channel', channels, report, true) as Channel | undefined;
  readBoolean(node, 'marketing', 'marketing', report);
  readEnum(node, 'on_failure', 'on_failure', ['continue', 'stop'], report);
  const template = node.template;
  const content = node.content;
  if (template === undefined && content === undefined) report(undefined, 'needs either template or content');
  if (template !== undefined && content !== undefined) report(undefined, 'has both template and content; give one');
  if (template !== undefined) {
    if (!isPlainObject(template)) {
      report('template', `must be an object like {"name": "welcome", "language": "en"}, got ${describe(template)}`);
    } else {
      keysCheck(template, ['name', 'language', 'variables'], 'template.', report, 'template');
      readString(template, 'name', 'template.name', { required: true, max: definitionLimits.nameLength }, report);
      const language = readString(template, 'language', 'template.language', { max: 20 }, report);
      if (language !== undefined && !languagePattern.test(language)) report('template.language', `must be a language code such as "en" or "pt_BR", got ${describe(language)}`);
      const variables = template.variables;
      if (variables !== undefined) {
        if (!isPlainObject(variables)) {
          report('template.variables', `must be an object of placeholder → text, got ${describe(variables)}`);
        } else {
          const keys = Object.keys(variables);
          if (keys.length > definitionLimits.templateVariables) report('template.variables', `must have at most ${definitionLimits.templateVariables} entries`);
          for (const key of keys) {
            const field = `template.variables.${key}`;
            if (!/^[A-Za-z0-9_.-]{1,100}$/.test(key)) report(field, 'names a placeholder that must be 1–100 letters, digits, "_", "." or "-"');
            readString(variables, key, field, { max: definitionLimits.textLength, min: 0 }, report);
          }
        }
      }
    }
  }
  if (content === undefined) return;
  if (!isPlainObject(content)) {
    report('content', `must be an object, got ${describe(content)}`);
    return;
  }
  keysCheck(content, ['text', 'subject', 'preview_text', 'html', 'blocks', 'buttons', 'list'], 'content.', report, 'message content');
  const text = readString(content, 'text', 'content.text', { max: definitionLimits.textLength }, report);
  readString(content, 'subject', 'content.subject', { max: definitionLimits.subjectLength }, report);
  readString(content, 'preview_text', 'content.preview_text', { max: 1000 }, report);
  const html = readString(content, 'html', 'content.html', { max: definitionLimits.htmlLength }, report);
  if (html !== undefined && htmlNestsDeeperThan(html)) report('content.html', `nests elements more than ${maxHtmlDepth} levels deep`);
  checkBlocks(content.blocks, report);
  checkButtons(content.buttons, report);
  checkList(content.list, report);
  if (channel === 'email') {
    if (content.subject === undefined) report('content.subject', 'is required for an email');
    if (content.blocks === undefined && content.html === undefined && content.text === undefined) report('content', 'needs blocks, html or text for an email');
    for (const key of ['buttons', 'list']) if (content[key] !== undefined) report(`content.${key}`, 'is only for WhatsApp messages');
  } else if (channel !== undefined) {
    if (content.text === undefined && text === undefined) report('content.text', `is required for a ${channel === 'sms' ? 'SMS' : 'WhatsApp'} message`);
    for (const key of ['subject', 'preview_text', 'html', 'blocks']) if (content[key] !== undefined) report(`content.${key}`, 'is only for email');
    if (channel === 'sms') for (const key of ['buttons', 'list']) if (content[key] !== undefined) report(`content.${key}`, 'is only for WhatsApp messages');
    if (content.buttons !== undefined && content.list !== undefined) report('content', 'has both buttons and list; WhatsApp sends one or the other');
  }
}

function checkBlocks(blocks: unknown, report: Report): void {
  if (blocks === undefined) return;
  if (!Array.isArray(blocks)) {
    report('content.blocks', `must be an array of blocks, got ${describe(blocks)}`);
    return;
  }
  if (blocks.length === 0) report('content.blocks', 'must have at least one block');
  if (blocks.length > definitionLimits.blocks) {
    report('content.blocks', `must have at most ${definitionLimits.blocks} blocks`);
    return;
  }
  let size = 0;
  blocks.forEach((block, i) => {
    const field = `content.blocks[${i}]`;
    if (!isPlainObject(block)) {
      report(field, `must be an object with a type, got ${describe(block)}`);
      return;
    }
    if (typeof block.type !== 'string' || block.type.length === 0 || block.type.length > 50) report(`${field}.type`, 'must be a block type such as "heading" or "text"');
    if (block.id !== undefined && typeof block.id !== 'string') report(`${field}.id`, 'must be a string');
    if (nestsDeeperThan(block, definitionLimits.blockDepth)) {
      report(field, `nests objects or arrays more than ${definitionLimits.blockDepth} levels deep`);
      return;
    }
    // The renderer walks a block's HTML recursively (for the plain-text part) when the email is sent.
    for (const key of ['content', 'html']) {
      const text = block[key];
      if (typeof text === 'string' && text.includes('<') && htmlNestsDeeperThan(text)) report(`${field}.${key}`, `nests elements more than ${maxHtmlDepth} levels deep`);
    }
    size += JSON.stringify(block).length;
  });
  if (size > definitionLimits.htmlLength) report('content.blocks', `are too large (${size} characters of JSON; at most ${definitionLimits.htmlLength})`);
}

function checkButtons(buttons: unknown, report: Report): void {
  if (buttons === undefined) return;
  if (!Array.isArray(buttons) || buttons.length < 1 || buttons.length > 3) {
    report('content.buttons', 'must be an array of 1 to 3 reply buttons');
    return;
  }
  const seen = new Set<string>();
  buttons.forEach((button, i) => {
    const field = `content.buttons[${i}]`;
    if (!isPlainObject(button)) {
      report(field, `must be an object like {"id": "yes", "title": "Yes"}, got ${describe(button)}`);
      return;
    }
    keysCheck(button, ['id', 'title'], `${field}.`, report, 'a reply button');
    const id = readString(button, 'id', `${field}.id`, { required: true, max: 256 }, report);
    readString(button, 'title', `${field}.title`, { required: true, max: 20 }, report);
    if (id !== undefined && seen.has(id)) report(`${field}.id`, `repeats the button id "${id}"`);
    if (id !== undefined) seen.add(id);
  });
}

function checkList(list: unknown, report: Report): void {
  if (list === undefined) return;
  if (!isPlainObject(list)) {
    report('content.list', `must be an object like {"button": "Choose", "sections": [...]}, got ${describe(list)}`);
    return;
  }
  keysCheck(list, ['button', 'sections'], 'content.list.', report, 'a list');
  readString(list, 'button', 'content.list.button', { required: true, max: 20 }, report);
  const sections = list.sections;
  if (!Array.isArray(sections) || sections.length < 1 || sections.length > 10) {
    report('content.list.sections', 'must be an array of 1 to 10 sections');
    return;
  }
  let rows = 0;
  const ids = new Set<string>();
  sections.forEach((section, i) => {
    const field = `content.list.sections[${i}]`;
    if (!isPlainObject(section)) {
      report(field, `must be an object with rows, got ${describe(section)}`);
      return;
    }
    keysCheck(section, ['title', 'rows'], `${field}.`, report, 'a list section');
    readString(section, 'title', `${field}.title`, { max: 24 }, report);
    if (!Array.isArray(section.rows) || section.rows.length === 0) {
      report(`${field}.rows`, 'must be a non-empty array of rows');
      return;
    }
    section.rows.forEach((row, j) => {
      rows += 1;
      const rowField = `${field}.rows[${j}]`;
      if (!isPlainObject(row)) {
        report(rowField, `must be an object like {"id": "a", "title": "A"}, got ${describe(row)}`);
        return;
      }
      keysCheck(row, ['id', 'title', 'description'], `${rowField}.`, report, 'a list row');
      const id = readString(row, 'id', `${rowField}.id`, { required: true, max: 200 }, report);
      readString(row, 'title', `${rowField}.title`, { required: true, max: 24 }, report);
      readString(row, 'description', `${rowField}.description`, { max: 72 }, report);
      if (id !== undefined && ids.has(id)) report(`${rowField}.id`, `repeats the row id "${id}"`);
      if (id !== undefined) ids.add(id);
    });
  });
  if (rows > 10) report('content.list.sections', `have ${rows} rows; WhatsApp allows at most 10 in all`);
}

function checkDelay(node: JsonObject, { report }: NodeContext): void {
  keysCheck(node, ['id', 'type', 'name', 'duration', 'until'], '', report, 'delay');
  if (node.duration === undefined && node.until === undefined) report(undefined, 'needs duration or until');
  if (node.duration !== undefined && node.until !== undefined) report(undefined, 'has both duration and until; give one');
  if (node.duration !== undefined) checkDuration(node.duration, 'duration', report, true);
  if (node.until !== undefined) {
    const until = node.until;
    if (!isPlainObject(until)) {
      report('until', `must be an object like {"time": "09:00", "timezone": "Europe/Paris"}, got ${describe(until)}`);
      return;
    }
    keysCheck(until, ['time', 'timezone'], 'until.', report, 'until');
    const time = readString(until, 'time', 'until.time', { required: true, max: 5 }, report);
    if (time !== undefined && !isTimeOfDay(time)) report('until.time', `must be a 24-hour time HH:MM, got ${describe(time)}`);
    const zone = readString(until, 'timezone', 'until.timezone', { max: 100 }, report);
    if (zone !== undefined && !isValidTimeZone(zone)) report('until.timezone', `must be an IANA time zone such as "Europe/Paris", got ${describe(zone)}`);
  }
}

function checkWaitForReply(node: JsonObject, { kind, report }: NodeContext): void {
  keysCheck(node, ['id', 'type', 'name', 'timeout', 'branches'], '', report, 'wait_for_reply');
  if (node.timeout === undefined) {
    // A sequence may wait for a reply as long as it takes; a flow is a live conversation with a TTL.
    if (kind === 'flow') report('timeout', 'is required in a flow (how long to wait before taking the timeout branch)');
  } else {
    checkDuration(node.timeout, 'timeout', report, true);
  }
  const branches = node.branches;
  if (!Array.isArray(branches) || branches.length < 1 || branches.length > definitionLimits.replyBranches) {
    report('branches', `must be an array of 1 to ${definitionLimits.replyBranches} reply branches like {"id": "yes", "match": {"type": "keyword", "keywords": ["yes"]}}`);
    return;
  }
  const seen = new Set<string>();
  branches.forEach((branch, i) => {
    const field = `branches[${i}]`;
    if (!isPlainObject(branch)) {
      report(field, `must be an object with id and match, got ${describe(branch)}`);
      return;
    }
    keysCheck(branch, ['id', 'match'], `${field}.`, report, 'a reply branch');
    const id = checkId(branch.id, `${field}.id`, report);
    if (id !== undefined) {
      if (reservedReplyBranches.has(id)) report(`${field}.id`, `must not be "${id}", which names the built-in branch`);
      else if (seen.has(id)) report(`${field}.id`, `repeats the branch id "${id}"`);
      seen.add(id);
    }
    checkReplyMatch(branch.match, `${field}.match`, report);
  });
}

function checkReplyMatch(match: unknown, field: string, report: Report): void {
  if (!isPlainObject(match)) {
    report(field, `must be an object such as {"type": "any"}, got ${describe(match)}`);
    return;
  }
  const type = readEnum(match, 'type', `${field}.type`, ['button', 'keyword', 'regex', 'any'], report, true);
  switch (type) {
    case 'button':
      keysCheck(match, ['type', 'button_id'], `${field}.`, report, 'a button match');
      readString(match, 'button_id', `${field}.button_id`, { required: true, max: 256 }, report);
      break;
    case 'keyword': {
      keysCheck(match, ['type', 'keywords'], `${field}.`, report, 'a keyword match');
      const keywords = match.keywords;
      if (!Array.isArray(keywords) || keywords.length < 1 || keywords.length > definitionLimits.keywords) {
        report(`${field}.keywords`, `must be an array of 1 to ${definitionLimits.keywords} keywords`);
      } else {
        keywords.forEach((keyword, i) => {
          if (typeof keyword !== 'string' || keyword.trim() === '' || keyword.length > 100) report(`${field}.keywords[${i}]`, 'must be a non-empty string of at most 100 characters');
        });
      }
      break;
    }
    case 'regex':
      keysCheck(match, ['type', 'pattern', 'flags'], `${field}.`, report, 'a regex match');
      checkRegex(match.pattern, match.flags, `${field}.pattern`, `${field}.flags`, report);
      break;
    case 'any':
      keysCheck(match, ['type'], `${field}.`, report, 'an any match');
      break;
  }
}

function checkCondition(node: JsonObject, { report }: NodeContext, webhookNames: ReadonlySet<string>): void {
  keysCheck(node, ['id', 'type', 'name', 'condition'], '', report, 'condition');
  if (node.condition === undefined) {
    report('condition', 'is required, like {"match": "all", "rules": [{"field": "contact.metadata.plan", "op": "eq", "value": "pro"}]}');
    return;
  }
  let rules = 0;
  const group = (value: unknown, field: string, depth: number): void => {
    if (!isPlainObject(value)) {
      report(field, `must be an object with rules, got ${describe(value)}`);
      return;
    }
    keysCheck(value, ['match', 'rules'], `${field}.`, report, 'a condition group');
    readEnum(value, 'match', `${field}.match`, ['all', 'any'], report);
    if (!Array.isArray(value.rules) || value.rules.length === 0) {
      report(`${field}.rules`, 'must be a non-empty array of rules');
      return;
    }
    value.rules.forEach((rule, i) => {
      const ruleField = `${field}.rules[${i}]`;
      rules += 1;
      if (rules === definitionLimits.conditionRules + 1) report('condition', `has more than ${definitionLimits.conditionRules} rules`);
      if (isPlainObject(rule) && rule.rules !== undefined) {
        if (depth >= definitionLimits.conditionDepth) report(ruleField, `nests groups deeper than ${definitionLimits.conditionDepth} levels`);
        else group(rule, ruleField, depth + 1);
      } else {
        checkRule(rule, ruleField, report, webhookNames);
      }
    });
  };
  group(node.condition, 'condition', 1);
}

function isScalar(value: unknown): boolean {
  return value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean';
}

function checkRule(rule: unknown, field: string, report: Report, webhookNames: ReadonlySet<string>): void {
  if (!isPlainObject(rule)) {
    report(field, `must be a rule like {"field": "contact.first_name", "op": "exists"}, got ${describe(rule)}`);
    return;
  }
  keysCheck(rule, ['field', 'op', 'value'], `${field}.`, report, 'a condition rule');
  const op = readEnum(rule, 'op', `${field}.op`, conditionOperators, report, true);
  if (op === undefined) return;
  if (op === 'has_tag' || op === 'not_has_tag') {
    if (rule.field !== undefined) report(`${field}.field`, `must be absent for ${op} (the tag goes in value)`);
    readString(rule, 'value', `${field}.value`, { required: true, max: 100 }, report);
    return;
  }
  const path = readString(rule, 'field', `${field}.field`, { required: true, max: 300 }, report);
  if (path !== undefined && path !== 'last_message.status') {
    const problem = mergeTagProblem(path, { webhookNames });
    if (problem !== null) report(`${field}.field`, `is not a known field: "${path}" ${problem.startsWith('is ') ? problem : `(${problem})`}`);
  }
  const value = rule.value;
  switch (op) {
    case 'exists':
    case 'not_exists':
      if (value !== undefined) report(`${field}.value`, `must be absent for ${op}`);
      break;
    case 'in':
      if (!Array.isArray(value) || value.length < 1 || value.length > 100 || !value.every(isScalar)) report(`${field}.value`, 'must be an array of 1 to 100 strings or numbers for in');
      break;
    case 'matches':
      if (isPlainObject(value)) checkRegex(value.pattern, value.flags, `${field}.value.pattern`, `${field}.value.flags`, report);
      else if (typeof value === 'string') checkRegex(value, undefined, `${field}.value`, `${field}.value`, report);
      else report(`${field}.value`, 'must be a regular expression (a string, or {"pattern": "…", "flags": "i"})');
      break;
    case 'gt':
    case 'gte':
    case 'lt':
    case 'lte':
      if (typeof value !== 'number' && typeof value !== 'string') report(`${field}.value`, `must be a number (or a date string) for ${op}`);
      break;
    default:
      if (value === undefined || !isScalar(value)) report(`${field}.value`, `must be a string, number, boolean or null for ${op}`);
      else if (typeof value === 'string' && value.length > definitionLimits.textLength) report(`${field}.value`, `must be at most ${definitionLimits.textLength} characters`);
  }
}

function checkSplit(node: JsonObject, { report }: NodeContext): void {
  keysCheck(node, ['id', 'type', 'name', 'branches'], '', report, 'split');
  const branches = node.branches;
  if (!Array.isArray(branches) || branches.length < 2 || branches.length > definitionLimits.splitBranches) {
    report('branches', `must be an array of 2 to ${definitionLimits.splitBranches} branches like {"id": "a", "percent": 50}`);
    return;
  }
  const seen = new Set<string>();
  let total = 0;
  let sound = true;
  branches.forEach((branch, i) => {
    const field = `branches[${i}]`;
    if (!isPlainObject(branch)) {
      report(field, `must be an object with id and percent, got ${describe(branch)}`);
      sound = false;
      return;
    }
    keysCheck(branch, ['id', 'percent', 'label'], `${field}.`, report, 'a split branch');
    const id = checkId(branch.id, `${field}.id`, report);
    if (id !== undefined && seen.has(id)) report(`${field}.id`, `repeats the branch id "${id}"`);
    if (id !== undefined) seen.add(id);
    readString(branch, 'label', `${field}.label`, { max: definitionLimits.nameLength }, report);
    const percent = branch.percent;
    if (typeof percent !== 'number' || !Number.isInteger(percent) || percent < 0 || percent > 100) {
      report(`${field}.percent`, `must be an integer from 0 to 100, got ${describe(percent)}`);
      sound = false;
    } else {
      total += percent;
    }
  });
  if (sound && total !== 100) report('branches', `percents must add up to 100 (they add up to ${total})`);
}

function checkTag(node: JsonObject, { report }: NodeContext): void {
  keysCheck(node, ['id', 'type', 'name', 'tag'], '', report, String(node.type));
  readString(node, 'tag', 'tag', { required: true, max: 100 }, report);
}

function checkUpdateContact(node: JsonObject, { report }: NodeContext): void {
  keysCheck(node, ['id', 'type', 'name', 'set'], '', report, 'update_contact');
  const set = node.set;
  if (!isPlainObject(set) || Object.keys(set).length === 0) {
    report('set', `must be an object of field → value with at least one field, like {"metadata.plan": "pro"}, got ${describe(set)}`);
    return;
  }
  const keys = Object.keys(set);
  if (keys.length > definitionLimits.updateFields) report('set', `must have at most ${definitionLimits.updateFields} fields`);
  for (const key of keys) {
    const field = `set.${key}`;
    const metadataKey = key.startsWith('metadata.') ? key.slice('metadata.'.length) : null;
    if (metadataKey !== null ? !metadataKeyPattern.test(metadataKey) : !contactUpdateFields.includes(key)) {
      report(field, `is not a contact field that can be set (${contactUpdateFields.join(', ')}, or metadata.<key>)`);
      continue;
    }
    const value = set[key];
    if (value === null) continue;
    if (typeof value !== 'string') {
      report(field, `must be a string or null, got ${describe(value)}`);
      continue;
    }
    if (value.length > definitionLimits.textLength) {
      report(field, `must be at most ${definitionLimits.textLength} characters`);
      continue;
    }
    // Literal values can be checked now; templated ones only when rendered.
    if (value.includes('{{') || value === '') continue;
    if (key === 'timezone' && !isValidTimeZone(value)) report(field, `must be an IANA time zone such as "Europe/Paris", got ${describe(value)}`);
    if (key === 'email' && !emailPattern.test(value)) report(field, `must be an email address, got ${describe(value)}`);
    if (key === 'language' && !languagePattern.test(value)) report(field, `must be a language code such as "en" or "pt-BR", got ${describe(value)}`);
  }
}

function checkWebhook(node: JsonObject, { report }: NodeContext): void {
  keysCheck(node, ['id', 'type', 'name', 'url', 'method', 'headers', 'body', 'save_as', 'on_failure'], '', report, 'webhook');
  const url = readString(node, 'url', 'url', { required: true, max: definitionLimits.urlLength }, report);
  if (url !== undefined) {
    // The scheme must be written out: a URL that is entirely a merge tag could become anything.
    let parsed: URL | null = null;
    try {
      parsed = new URL(url.replace(/\{\{[^{}]*\}\}/g, 'x'));
    } catch {
      parsed = null;
    }
    if (!/^https?:\/\//i.test(url) || parsed === null || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) {
      report('url', `must be an http:// or https:// URL, got ${describe(url)}`);
    } else {
      const port = refusedPortProblem(parsed);
      if (port !== null) report('url', port);
    }
  }
  const method = readEnum(node, 'method', 'method', httpMethods, report);
  readEnum(node, 'on_failure', 'on_failure', ['continue', 'stop'], report);
  checkId(node.save_as, 'save_as', report, false);
  readString(node, 'body', 'body', { max: definitionLimits.webhookBodyLength, min: 0 }, report);
  if (method === 'GET' && node.body !== undefined) report('body', 'must be absent for a GET request');
  const headers = node.headers;
  if (headers === undefined) return;
  if (!isPlainObject(headers)) {
    report('headers', `must be an object of header name → value, got ${describe(headers)}`);
    return;
  }
  const names = Object.keys(headers);
  if (names.length > definitionLimits.headers) report('headers', `must have at most ${definitionLimits.headers} headers`);
  for (const name of names) {
    const field = `headers.${name}`;
    if (!headerNamePattern.test(name)) report(field, 'is not a valid header name');
    const value = headers[name];
    if (typeof value !== 'string' || value.length > definitionLimits.textLength || /[\r\n\0]/.test(value)) {
      report(field, `must be a single-line string of at most ${definitionLimits.textLength} characters`);
    }
  }
}

function checkGoal(node: JsonObject, { report }: NodeContext): void {
  keysCheck(node, ['id', 'type', 'name', 'exit'], '', report, 'goal');
  readBoolean(node, 'exit', 'exit', report);
}

function checkExit(node: JsonObject, { report }: NodeContext): void {
  keysCheck(node, ['id', 'type', 'name'], '', report, 'exit');
}

function checkDiscount(node: JsonObject, { report }: NodeContext): void {
  keysCheck(node, ['id', 'type', 'name', 'discount', 'on_failure'], '', report, 'create_discount');
  readEnum(node, 'on_failure', 'on_failure', ['continue', 'stop'], report);
  // One set of rules for saving and for sending (domain/discount-spec.ts); each problem
  // reads "discount.<field> <what is wrong>".
  for (const problem of validateDiscountSpec(node.discount)) {
    const match = /^(discount(?:\.[A-Za-z]+)?) (.*)$/s.exec(problem);
    report(match ? match[1]! : 'discount', match ? match[2]! : problem);
  }
}

// ---------------------------------------------------------------- merge tags

/** Every templated string of a node, by field: what the renderer will see. */
export function templatedStrings(node: JsonObject): Array<[field: string, text: string]> {
  const out: Array<[string, string]> = [];
  const add = (field: string, value: unknown) => {
    if (typeof value === 'string' && value.includes('{{')) out.push([field, value]);
  };
  switch (node.type) {
    case 'send_message': {
      const content = isPlainObject(node.content) ? node.content : {};
      for (const key of ['text', 'subject', 'preview_text', 'html']) add(`content.${key}`, content[key]);
      if (Array.isArray(content.blocks)) content.blocks.forEach((block, i) => collectBlockStrings(block, `content.blocks[${i}]`, add, 0));
      if (Array.isArray(content.buttons)) content.buttons.forEach((b, i) => add(`content.buttons[${i}].title`, isPlainObject(b) ? b.title : undefined));
      const template = isPlainObject(node.template) ? node.template : {};
      if (isPlainObject(template.variables)) for (const [key, value] of Object.entries(template.variables)) add(`template.variables.${key}`, value);
      break;
    }
    case 'update_contact':
      if (isPlainObject(node.set)) for (const [key, value] of Object.entries(node.set)) add(`set.${key}`, value);
      break;
    case 'webhook':
      add('url', node.url);
      add('body', node.body);
      if (isPlainObject(node.headers)) for (const [key, value] of Object.entries(node.headers)) add(`headers.${key}`, value);
      break;
  }
  return out;
}

function collectBlockStrings(value: unknown, field: string, add: (field: string, value: unknown) => void, depth: number): void {
  if (depth > 20) return;
  if (typeof value === 'string') add(field, value);
  else if (Array.isArray(value)) value.forEach((item, i) => collectBlockStrings(item, `${field}[${i}]`, add, depth + 1));
  else if (isPlainObject(value)) {
    for (const [key, item] of Object.entries(value)) if (key !== 'id' && key !== 'type') collectBlockStrings(item, `${field}.${key}`, add, depth + 1);
  }
}

// ---------------------------------------------------------------- the graph

const nodeCheckers: Record<NodeType, (node: JsonObject, context: NodeContext, webhookNames: ReadonlySet<string>) => void> = {
  send_message: checkSendMessage,
  delay: checkDelay,
  wait_for_reply: checkWaitForReply,
  condition: checkCondition,
  split: checkSplit,
  add_tag: checkTag,
  remove_tag: checkTag,
  update_contact: checkUpdateContact,
  webhook: checkWebhook,
  goal: checkGoal,
  exit: checkExit,
  create_discount: checkDiscount,
};

/** The branches a node may leave by (see the table in definition.ts); null for an unknown type. */
export function nodeBranches(node: JsonObject): string[] | null {
  const ids = (list: unknown) => (Array.isArray(list) ? list.flatMap((b) => (isPlainObject(b) && typeof b.id === 'string' ? [b.id] : [])) : []);
  switch (node.type) {
    case 'wait_for_reply':
      return [...ids(node.branches), 'timeout', 'no_match'];
    case 'condition':
      return ['true', 'false'];
    case 'split':
      return ids(node.branches);
    case 'webhook':
    case 'create_discount':
      return ['next', 'failure'];
    case 'exit':
      return [];
    default:
      return (nodeTypes as readonly unknown[]).includes(node.type) ? ['next'] : null;
  }
}

/** Nodes where a session stops: a loop through one of them cannot spin within one run. */
function breaksLoops(node: JsonObject): boolean {
  // A goal that exits (the default) ends the session, so it cannot be part of a spinning loop either.
  return node.type === 'delay' || node.type === 'wait_for_reply' || (node.type === 'goal' && node.exit !== false);
}

/**
 * The findings behind validateGraph, before they are worded; compileSteps words the same
 * findings in terms of the steps they came from.
 */
export function collectGraphFindings(input: unknown, options: ValidateGraphOptions): GraphFindings {
  const findings: GraphFinding[] = [];
  const graphReport = (field: string | undefined, detail: string, code: DefinitionProblem['code'] = 'invalid_node') =>
    findings.push({ code, detail, ...(field !== undefined ? { field } : {}) });
  if (!isPlainObject(input)) {
    graphReport(undefined, `the graph must be an object with nodes and edges, got ${describe(input)}`);
    return { shaped: null, findings };
  }
  keysCheck(input, ['entry', 'nodes', 'edges'], '', graphReport, 'a graph');
  const rawNodes = input.nodes;
  const rawEdges = input.edges ?? [];
  if (!Array.isArray(rawNodes)) {
    graphReport('nodes', `must be an array of nodes, got ${describe(rawNodes)}`);
    return { shaped: null, findings };
  }
  if (rawNodes.length > definitionLimits.nodes) {
    graphReport('nodes', `must have at most ${definitionLimits.nodes} nodes (got ${rawNodes.length})`);
    return { shaped: null, findings };
  }
  if (!Array.isArray(rawEdges)) {
    graphReport('edges', `must be an array of edges like {"from": "a", "to": "b"}, got ${describe(rawEdges)}`);
    return { shaped: null, findings };
  }
  if (rawEdges.length > definitionLimits.edges) {
    graphReport('edges', `must have at most ${definitionLimits.edges} edges (got ${rawEdges.length})`);
    return { shaped: null, findings };
  }
  let shapeSound = true;

  // Node ids first: the webhook names and the id map are needed by the node checks and graph checks.
  const byId = new Map<string, { node: JsonObject; index: number }>();
  const webhookNames = new Set<string>();
  rawNodes.forEach((node, index) => {
    if (!isPlainObject(node) || typeof node.id !== 'string') return;
    if (!byId.has(node.id)) byId.set(node.id, { node, index });
    if (node.type === 'webhook') webhookNames.add(typeof node.save_as === 'string' ? node.save_as : node.id);
  });

  rawNodes.forEach((node, index) => {
    const label = isPlainObject(node) && typeof node.id === 'string' && node.id !== '' ? node.id : undefined;
    const report: Report = (field, detail, code = 'invalid_node') => {
      findings.push({ code, detail, nodeIndex: index, ...(label !== undefined ? { node: label } : {}), ...(field !== undefined ? { field } : {}) });
      if (code === 'invalid_node' || code === 'unknown_node_type') shapeSound = false;
    };
    if (!isPlainObject(node)) {
      report(undefined, `must be an object with id and type, got ${describe(node)}`);
      return;
    }
    checkId(node.id, 'id', report);
    if (label !== undefined && byId.get(label)?.index !== index) {
      report('id', `is already used by nodes[${byId.get(label)!.index}]`, 'duplicate_node_id');
      shapeSound = false;
    }
    readString(node, 'name', 'name', { max: definitionLimits.nameLength, min: 0 }, report);
    if (typeof node.type !== 'string' || !(nodeTypes as readonly string[]).includes(node.type)) {
      report('type', `${node.type === undefined ? 'is required' : `${describe(node.type)} is not a node type`} (types: ${nodeTypes.join(', ')})`, 'unknown_node_type');
      return;
    }
    nodeCheckers[node.type as NodeType](node, { kind: options.kind, report }, webhookNames);
    if (node.type === 'send_message' && options.templateExists && isPlainObject(node.template) && typeof node.template.name === 'string') {
      const { name, language } = node.template;
      const lang = typeof language === 'string' ? language : undefined;
      if (!options.templateExists(name, lang)) {
        report('template.name', `"${name}"${lang !== undefined ? ` (language "${lang}")` : ''} is not a known template`, 'unknown_template');
      }
    }
    for (const [field, text] of templatedStrings(node)) {
      const reported = new Set<string>();
      for (const tag of extractMergeTags(text)) {
        if (reported.has(tag.path)) continue;
        const problem = mergeTagProblem(tag.path, options.anyWebhookName ? {} : { webhookNames });
        if (problem === null) continue;
        reported.add(tag.path);
        const generic = problem === 'is not a known merge tag';
        report(field, `uses unknown merge tag {{${tag.path}}}${generic ? '' : ` (${problem})`}`, 'unknown_merge_tag');
      }
    }
  });

  // Edges.
  interface EdgeShape {
    from: string;
    to: string;
    branch: string;
    index: number;
  }
  const edges: EdgeShape[] = [];
  rawEdges.forEach((edge, index) => {
    const field = `edges[${index}]`;
    const report: Report = (f, detail, code = 'invalid_node') => {
      findings.push({ code, detail, field: f ?? field });
      if (code === 'invalid_node') shapeSound = false;
    };
    if (!isPlainObject(edge)) {
      report(field, `must be an object like {"from": "a", "to": "b", "branch": "next"}, got ${describe(edge)}`);
      return;
    }
    keysCheck(edge, ['from', 'to', 'branch'], `${field}.`, report, 'an edge');
    const from = checkId(edge.from, `${field}.from`, report);
    const to = checkId(edge.to, `${field}.to`, report);
    const branch = edge.branch === undefined ? 'next' : checkId(edge.branch, `${field}.branch`, report);
    if (from === undefined || to === undefined || branch === undefined) return;
    edges.push({ from, to, branch, index });
  });

  const nodeFinding = (id: string, code: DefinitionProblem['code'], detail: string, path?: string): GraphFinding => {
    const at = byId.get(id);
    return { code, detail, node: id, ...(at ? { nodeIndex: at.index } : {}), ...(path !== undefined ? { path } : {}) };
  };

  const seenBranch = new Map<string, number>();
  const usable: EdgeShape[] = [];
  for (const edge of edges) {
    const source = byId.get(edge.from);
    let ok = true;
    if (!source) {
      findings.push({ code: 'dangling_edge', detail: `comes from "${edge.from}", which is not a node`, field: `edges[${edge.index}].from` });
      ok = false;
    }
    if (!byId.has(edge.to)) {
      findings.push({ code: 'dangling_edge', detail: `goes to "${edge.to}", which is not a node`, field: `edges[${edge.index}].to` });
      ok = false;
    }
    if (source) {
      const allowed = nodeBranches(source.node);
      if (allowed !== null && !allowed.includes(edge.branch)) {
        const list = allowed.length === 0 ? 'an exit node has no way out' : `its branches: ${allowed.join(', ')}`;
        findings.push(nodeFinding(edge.from, 'unknown_branch', `has edges[${edge.index}] leaving by unknown branch "${edge.branch}" (${list})`, `edges[${edge.index}].branch`));
        ok = false;
      }
      const key = `${edge.from}\u0000${edge.branch}`;
      const earlier = seenBranch.get(key);
      if (earlier !== undefined) {
        findings.push(nodeFinding(edge.from, 'duplicate_edge', `has two edges for branch "${edge.branch}" (edges[${earlier}] and edges[${edge.index}])`, `edges[${edge.index}]`));
        ok = false;
      } else {
        seenBranch.set(key, edge.index);
      }
    }
    if (ok) usable.push(edge);
  }

  // Entry: explicit, or the one node nothing points to (as resolveEntry does at run time).
  let entry: string | null = null;
  if (input.entry !== undefined) {
    const id = checkId(input.entry, 'entry', graphReport);
    if (id !== undefined) {
      if (byId.has(id)) entry = id;
      else findings.push({ code: 'unknown_entry_node', detail: `"${id}" is not a node`, field: 'entry' });
    }
  } else if (rawNodes.length === 0) {
    if (!options.allowEmpty) findings.push({ code: 'no_entry_node', detail: 'the graph has no nodes, so it has no entry node' });
  } else {
    const targets = new Set(edges.map((e) => e.to));
    const roots = [...byId.keys()].filter((id) => !targets.has(id));
    // With no readable node id at all, the shape problems already say everything.
    if (roots.length === 1) entry = roots[0]!;
    else if (roots.length === 0 && byId.size > 0) findings.push({ code: 'no_entry_node', detail: 'every node has an incoming edge, so there is no entry node; set entry', path: 'entry' });
    else if (roots.length > 1) findings.push({ code: 'no_entry_node', detail: `${roots.length} nodes have no incoming edge (${roots.slice(0, 10).map((r) => `"${r}"`).join(', ')}); set entry to the one that starts`, path: 'entry' });
  }

  const adjacency = (list: EdgeShape[]) => {
    const map = new Map<string, string[]>();
    for (const edge of list) {
      if (!byId.has(edge.from) || !byId.has(edge.to)) continue;
      map.set(edge.from, [...(map.get(edge.from) ?? []), edge.to]);
    }
    return map;
  };
  // Reachability follows every edge between real nodes, even one with a wrong branch, so a
  // mistyped branch is reported once rather than again as every node behind it being unreachable.
  const linked = adjacency(edges);
  // Loops are what would run: only the edges the engine would actually follow.
  const outgoing = adjacency(usable);

  if (entry !== null) {
    const reached = new Set<string>([entry]);
    const queue = [entry];
    while (queue.length > 0) {
      for (const next of linked.get(queue.pop()!) ?? []) {
        if (!reached.has(next)) {
          reached.add(next);
          queue.push(next);
        }
      }
    }
    for (const id of byId.keys()) if (!reached.has(id)) findings.push(nodeFinding(id, 'unreachable_node', `is never reached from the entry node "${entry}"`));
  }

  // Loops: remove the nodes where a session stops; any cycle left would spin without end.
  for (const loop of cyclesWithoutWait(byId, outgoing)) {
    const first = loop[0]!;
    findings.push(nodeFinding(first, 'loop_without_wait', `is in a loop with no delay or wait_for_reply (${loop.map((id) => `"${id}"`).join(', ')}); add a wait to the loop`));
  }

  // structuredClone recurses: input nested without bound must not reach it (every deep part was reported above).
  if (shapeSound && nestsDeeperThan(input, 64)) {
    if (findings.length === 0) graphReport(undefined, 'the graph nests objects or arrays more than 64 levels deep');
    return { shaped: null, findings };
  }
  const shaped = shapeSound ? (structuredClone({ ...input, edges: rawEdges }) as unknown as Graph) : null;
  return { shaped, findings };
}

/** Strongly connected components (Tarjan, iterative) of the graph without waits, that contain a cycle. */
function cyclesWithoutWait(byId: Map<string, { node: JsonObject; index: number }>, outgoing: Map<string, string[]>): string[][] {
  const live = (id: string) => {
    const at = byId.get(id);
    return at !== undefined && !breaksLoops(at.node);
  };
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const result: string[][] = [];
  let counter = 0;
  for (const start of byId.keys()) {
    if (!live(start) || index.has(start)) continue;
    const work: Array<{ id: string; next: number }> = [{ id: start, next: 0 }];
    index.set(start, counter);
    low.set(start, counter++);
    stack.push(start);
    onStack.add(start);
    while (work.length > 0) {
      const frame = work[work.length - 1]!;
      const targets = (outgoing.get(frame.id) ?? []).filter(live);
      if (frame.next < targets.length) {
        const target = targets[frame.next++]!;
        if (!index.has(target)) {
          index.set(target, counter);
          low.set(target, counter++);
          stack.push(target);
          onStack.add(target);
          work.push({ id: target, next: 0 });
        } else if (onStack.has(target)) {
          low.set(frame.id, Math.min(low.get(frame.id)!, index.get(target)!));
        }
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent) low.set(parent.id, Math.min(low.get(parent.id)!, low.get(frame.id)!));
      if (low.get(frame.id) === index.get(frame.id)) {
        const component: string[] = [];
        let member: string;
        do {
          member = stack.pop()!;
          onStack.delete(member);
          component.push(member);
        } while (member !== frame.id);
        const selfLoop = component.length === 1 && (outgoing.get(frame.id) ?? []).includes(frame.id);
        if (component.length > 1 || selfLoop) result.push(component.sort((a, b) => byId.get(a)!.index - byId.get(b)!.index));
      }
    }
  }
  return result.sort((a, b) => byId.get(a[0]!)!.index - byId.get(b[0]!)!.index);
}

/** `nodes[2].content.blocks[0]` → `nodes.2.content.blocks.0`: the API's field-error keys. */
export function toErrorPath(field: string): string {
  return field.replace(/\[(\d+)\]/g, '.$1').replace(/^\./, '');
}

/** Words a finding the default way: `node "welcome": content.text uses unknown merge tag {{x}}`. */
export function formatFinding(finding: GraphFinding): DefinitionProblem {
  const who = finding.node !== undefined ? `node "${finding.node}"` : finding.nodeIndex !== undefined ? `nodes[${finding.nodeIndex}]` : undefined;
  const message =
    who !== undefined
      ? `${who}${finding.field !== undefined ? `: ${finding.field} ${finding.detail}` : ` ${finding.detail}`}`
      : finding.field !== undefined
        ? `${finding.field} ${finding.detail}`
        : finding.detail;
  const path = finding.path ?? (finding.nodeIndex !== undefined ? `nodes[${finding.nodeIndex}]${finding.field !== undefined ? `.${finding.field}` : ''}` : finding.field);
  return {
    code: finding.code,
    message,
    ...(finding.node !== undefined ? { node: finding.node } : {}),
    ...(path !== undefined ? { path: toErrorPath(path) } : {}),
  };
}

/**
 * Checks a definition graph's shape and structure and names every problem. `graph` is the
 * typed copy of the input when there are no problems, and null otherwise.
 */
export function validateGraph(graph: unknown, options: ValidateGraphOptions): GraphValidation {
  const { shaped, findings } = collectGraphFindings(graph, options);
  const problems = findings.map(formatFinding);
  return { graph: problems.length === 0 ? shaped : null, problems };
}
