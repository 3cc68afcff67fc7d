import type { ConditionGroup, ConditionOperator, ConditionRule } from './definition.js';
import { resolvePath, type MergeScope } from './merge-tags.js';

/**
 * Evaluates a condition node's rules against a session's data. Fields are dotted paths
 * resolved like merge tags (`contact.metadata.plan`, `context.order_id`, `event.city`,
 * `webhook.check.status`, `reply.text`); `last_message.status` comes from the input.
 * Numbers compare numerically when both sides are numeric (`"42"` counts); text compares
 * case-insensitively. The explanation is kept in the session history, so it says what was
 * compared and what the value was.
 *
 * @example
 * evaluateCondition({ rules: [{ field: 'contact.metadata.plan', op: 'eq', value: 'pro' }] },
 *   { scope: { contact: { metadata: { plan: 'Pro' } } }, tags: new Set() })
 * // { result: true, explanation: 'contact.metadata.plan eq "pro" → true' }
 */
export interface ConditionInput {
  scope: MergeScope;
  /** The contact's tags, lowercased. */
  tags: ReadonlySet<string>;
  lastMessageStatus?: string | null;
}

export interface ConditionVerdict {
  result: boolean;
  explanation: string;
}

export const conditionOperators: readonly ConditionOperator[] = [
  'eq',
  'neq',
  'contains',
  'not_contains',
  'starts_with',
  'exists',
  'not_exists',
  'gt',
  'gte',
  'lt',
  'lte',
  'in',
  'matches',
  'has_tag',
  'not_has_tag',
];

export function isConditionGroup(value: ConditionRule | ConditionGroup): value is ConditionGroup {
  return Array.isArray((value as ConditionGroup).rules);
}

export function evaluateCondition(group: ConditionGroup, input: ConditionInput): ConditionVerdict {
  return evaluateGroup(group, input, 0);
}

const maxDepth = 20;

function evaluateGroup(group: ConditionGroup, input: ConditionInput, depth: number): ConditionVerdict {
  if (depth > maxDepth) return { result: false, explanation: 'conditions nested too deeply → false' };
  const any = group.match === 'any';
  const verdicts: ConditionVerdict[] = [];
  for (const rule of group.rules) {
    const verdict = isConditionGroup(rule) ? wrap(evaluateGroup(rule, input, depth + 1)) : evaluateRule(rule, input);
    // Short-circuit: the deciding rule alone explains the outcome.
    if (verdict.result === any) return verdict;
    verdicts.push(verdict);
  }
  if (verdicts.length === 0) return { result: !any, explanation: any ? 'no rules (any) → false' : 'no rules (all) → true' };
  if (verdicts.length === 1) return verdicts[0]!;
  return { result: !any, explanation: verdicts.map((v) => v.explanation).join(any ? ' or ' : ' and ') };
}

function wrap(verdict: ConditionVerdict): ConditionVerdict {
  return /\s(and|or)\s/.test(verdict.explanation) ? { result: verdict.result, explanation: `(${verdict.explanation})` } : verdict;
}

function isMissing(value: unknown): boolean {
  return value === undefined || value === null || value === '';
}

/** A finite number, or a string that is exactly one (`"42"`, `"-1.5"`); otherwise null. */
function toNumber(value: unknown): number | null {
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (typeof value === 'string' && /^\s*-?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*$/i.test(value)) return Number(value);
  return null;
}

/** An ISO 8601 date or date-time string as ms; otherwise null. */
function toTime(value: unknown): number | null {
  if (typeof value !== 'string' || !/^\d{4}-\d{2}-\d{2}/.test(value)) return null;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? ms : null;
}

function toText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (value === null || value === undefined) return '';
  return JSON.stringify(value) ?? '';
}

function same(actual: unknown, expected: unknown): boolean {
  if (isMissing(expected)) return isMissing(actual);
  if (isMissing(actual)) return false;
  const a = toNumber(actual);
  const b = toNumber(expected);
  if (a !== null && b !== null) return a === b;
  return toText(actual).toLowerCase() === toText(expected).toLowerCase();
}

function contains(actual: unknown, expected: unknown): boolean {
  if (isMissing(actual)) return false;
  if (Array.isArray(actual)) return actual.some((item) => same(item, expected));
  return toText(actual).toLowerCase().includes(toText(expected).toLowerCase());
}

function compare(actual: unknown, expected: unknown): number | null {
  const a = toNumber(actual);
  const b = toNumber(expected);
  if (a !== null && b !== null) return a - b;
  const ta = toTime(actual);
  const tb = toTime(expected);
  if (ta !== null && tb !== null) return ta - tb;
  return null;
}

const regexCache = new Map<string, RegExp | null>();

/** `value` is a pattern string (case-insensitive, like reply matching) or `{ pattern, flags }`. */
function regexFor(value: unknown): RegExp | null {
  const pattern = typeof value === 'string' ? value : typeof value === 'object' && value !== null ? (value as { pattern?: unknown }).pattern : undefined;
  const flags = typeof value === 'object' && value !== null && typeof (value as { flags?: unknown }).flags === 'string' ? (value as { flags: string }).flags : 'i';
  if (typeof pattern !== 'string') return null;
  const key = `${flags}/${pattern}`;
  if (regexCache.has(key)) return regexCache.get(key)!;
  let regex: RegExp | null;
  try {
    // `g` and `y` make test() stateful between calls; they mean nothing for a yes/no match.
    regex = new RegExp(pattern, flags.replace(/[gy]/g, ''));
  } catch {
    regex = null;
  }
  if (regexCache.size >= 500) regexCache.clear();
  regexCache.set(key, regex);
  return regex;
}

function show(value: unknown): string {
  if (value === undefined) return 'missing';
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}…` : text;
}

function resolveField(field: string, input: ConditionInput): unknown {
  if (field === 'last_message.status' && input.lastMessageStatus !== undefined) return input.lastMessageStatus;
  return resolvePath(input.scope, field);
}

function evaluateRule(rule: ConditionRule, input: ConditionInput): ConditionVerdict {
  const op = rule.op;
  if (op === 'has_tag' || op === 'not_has_tag') {
    const tag = toText(rule.value).trim().toLowerCase();
    const has = input.tags.has(tag);
    const result = op === 'has_tag' ? has : !has;
    return { result, explanation: `${op} ${show(tag)} → ${result}` };
  }
  const field = rule.field ?? '';
  const actual = field === '' ? undefined : resolveField(field, input);
  let result: boolean;
  let note = '';
  switch (op) {
    case 'eq':
      result = same(actual, rule.value);
      break;
    case 'neq':
      result = !same(actual, rule.value);
      break;
    case 'contains':
      result = contains(actual, rule.value);
      break;
    case 'not_contains':
      result = !contains(actual, rule.value);
      break;
    case 'starts_with':
      result = !isMissing(actual) && toText(actual).toLowerCase().startsWith(toText(rule.value).toLowerCase());
      break;
    case 'exists':
      result = !isMissing(actual);
      break;
    case 'not_exists':
      result = isMissing(actual);
      break;
    case 'gt':
    case 'gte':
    case 'lt':
    case 'lte': {
      const difference = isMissing(actual) ? null : compare(actual, rule.value);
      if (difference === null) {
        result = false;
        note = isMissing(actual) ? '' : 'not comparable';
      } else {
        result = op === 'gt' ? difference > 0 : op === 'gte' ? difference >= 0 : op === 'lt' ? difference < 0 : difference <= 0;
      }
      break;
    }
    case 'in': {
      const options = Array.isArray(rule.value) ? rule.value : [rule.value];
      result = Array.isArray(actual) ? actual.some((a) => options.some((o) => same(a, o))) : !isMissing(actual) && options.some((o) => same(actual, o));
      break;
    }
    case 'matches': {
      const regex = regexFor(rule.value);
      if (regex === null) note = 'invalid pattern';
      result = regex !== null && !isMissing(actual) && regex.test(toText(actual));
      break;
    }
    default:
      return { result: false, explanation: `${field} ${String(op)}: unknown operator → false` };
  }
  const subject = field === '' ? '(no field)' : field;
  const expected = op === 'exists' || op === 'not_exists' ? '' : ` ${show(rule.value)}`;
  // The actual value is what a reader of the history needs to see why a rule did not hold.
  const showActual = !result || op === 'neq' || op === 'not_contains' || op === 'not_exists';
  const details = [showActual ? `was ${show(actual)}` : '', note].filter((d) => d !== '');
  return { result, explanation: `${subject} ${op}${expected} → ${result}${details.length > 0 ? ` (${details.join('; ')})` : ''}` };
}
