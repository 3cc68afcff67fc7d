import { contactLimits, tagKey } from './contact.js';
import type { FieldErrors } from './errors.js';
import { isPlainObject } from './json.js';

/**
 * Segments are saved audiences: a filter over contacts, written as untrusted JSON by the API,
 * the MCP tools and the dashboard. This module validates that JSON (naming every problem by
 * its path, like `filter.conditions[1].operator`), says which counts the caller must fetch
 * before evaluating (`segmentNeeds`), which changes can affect membership
 * (`segmentDependsOn`), and evaluates a filter against one contact's facts. No I/O.
 *
 * Text compares case-insensitively; gt/gte/lt/lte compare numbers (numeric strings count) or,
 * when both sides are ISO dates, instants. `not_equals`, `not_contains` and `not_in` hold
 * for a contact that lacks the field, so "plan is not pro" includes contacts with no plan.
 *
 * @example
 * const { filter, errors } = validateSegmentFilter(body.filter);
 * if (!filter) throw invalidFields(errors);
 * const counts = await fetchCounts(contactId, segmentNeeds(filter)); // Map by need.key
 * evaluateSegment(filter, { contact, tags, lists, counts }); // true when the contact is in
 */

export type SegmentMatch = 'all' | 'any';

export const attributeOperators = [
  'equals',
  'not_equals',
  'contains',
  'not_contains',
  'starts_with',
  'ends_with',
  'exists',
  'not_exists',
  'gt',
  'gte',
  'lt',
  'lte',
  'in',
  'not_in',
] as const;
export type AttributeOperator = (typeof attributeOperators)[number];

export const countOperators = ['gte', 'gt', 'eq', 'lte', 'lt'] as const;
export type CountOperator = (typeof countOperators)[number];

export const engagementMetrics = ['sent', 'delivered', 'read', 'replied', 'failed'] as const;
export type EngagementMetric = (typeof engagementMetrics)[number];

export const segmentChannels = ['whatsapp', 'sms', 'email'] as const;
export type SegmentChannel = (typeof segmentChannels)[number];

/** Contact fields a condition may name besides `attributes.<key>`. */
export const segmentContactFields = ['email', 'phone', 'firstName', 'lastName', 'name', 'timezone', 'language', 'source', 'createdAt'] as const;

export type SegmentScalar = string | number | boolean | null;

export interface AttributeCondition {
  type: 'attribute';
  field: string;
  operator: AttributeOperator;
  /** Absent for exists/not_exists; an array for in/not_in; a scalar otherwise. */
  value?: SegmentScalar | SegmentScalar[];
}

export interface TagCondition {
  type: 'tag';
  operator: 'has' | 'not_has';
  tag: string;
}

export interface ListCondition {
  type: 'list';
  operator: 'in' | 'not_in';
  listId: string;
}

export interface EventCondition {
  type: 'event';
  eventName: string;
  operator: CountOperator;
  count: number;
  /** Count only the last this-many days; all time when absent. */
  withinDays?: number;
}

export interface EngagementCondition {
  type: 'engagement';
  metric: EngagementMetric;
  /** Only messages on this channel; every channel when absent. */
  channel?: SegmentChannel;
  operator: CountOperator;
  count: number;
  withinDays?: number;
}

export type SegmentCondition = AttributeCondition | TagCondition | ListCondition | EventCondition | EngagementCondition;

export interface SegmentFilter {
  match: SegmentMatch;
  conditions: Array<SegmentCondition | SegmentFilter>;
}

/** A count the caller fetches before evaluating; `key` is how `SegmentFacts.counts` holds it. */
export interface SegmentNeed {
  key: string;
  kind: 'event' | 'engagement';
  eventName?: string;
  metric?: string;
  /** null: every channel. */
  channel?: string | null;
  /** null: all time. */
  withinDays: number | null;
}

export interface SegmentFacts {
  contact: {
    email: string | null;
    phone: string | null;
    firstName: string | null;
    lastName: string | null;
    name: string | null;
    timezone: string | null;
    language: string | null;
    source: string | null;
    /** Epoch ms. */
    createdAt: number;
    attributes: Record<string, unknown>;
  };
  /** Tag keys (`tagKey`, lower-cased). */
  tags: ReadonlySet<string>;
  lists: ReadonlySet<string>;
  /** By `SegmentNeed.key`; a missing key counts as 0. */
  counts: ReadonlyMap<string, number>;
}

export interface SegmentDependencies {
  /** Some condition reads a contact field or custom attribute. */
  attributes: boolean;
  /** Tag keys (lower-cased) the filter names. */
  tags: ReadonlySet<string>;
  lists: ReadonlySet<string>;
  events: ReadonlySet<string>;
  engagement: boolean;
  /** Some count is over the last N days, so membership can change with time alone. */
  timeWindows: boolean;
}

export const segmentFilterLimits = {
  /** The root group is depth 1. */
  depth: 5,
  /** Conditions in the whole filter, not counting groups. */
  conditions: 50,
  /** Groups in the whole filter, besides the root; empty groups cost nothing to write, so they are bounded too. */
  groups: 50,
  /** in / not_in items. */
  listValues: 500,
  valueLength: 1000,
  eventNameLength: 200,
  listIdLength: 100,
  attributeKeyLength: 100,
  attributePathSegments: 10,
  /** Ten years, like the longest wait a definition may hold. */
  withinDays: 3650,
} as const;

const attributeKeyPattern = /^[A-Za-z0-9_-]+$/;
const dateOperators: ReadonlySet<AttributeOperator> = new Set(['equals', 'not_equals', 'gt', 'gte', 'lt', 'lte', 'exists', 'not_exists']);
const orderOperators: ReadonlySet<AttributeOperator> = new Set(['gt', 'gte', 'lt', 'lte']);
// eslint-disable-next-line no-control-regex
const controlCharacters = /[\u0000-\u001f\u007f]/;

const allowedKeys: Record<SegmentCondition['type'], readonly string[]> = {
  attribute: ['type', 'field', 'operator', 'value'],
  tag: ['type', 'operator', 'tag'],
  list: ['type', 'operator', 'listId'],
  event: ['type', 'eventName', 'operator', 'count', 'withinDays'],
  engagement: ['type', 'metric', 'channel', 'operator', 'count', 'withinDays'],
};

interface Walk {
  errors: FieldErrors;
  conditions: number;
  groups: number;
}

/**
 * Validates an untrusted filter. Every problem is named by its path from `path`
 * (`filter.conditions[0].conditions[2].count`), unknown keys included, so a typo such as
 * `withinDay` is reported instead of silently meaning "all time". The filter comes back,
 * a typed copy holding only known keys, when there is no problem at all; otherwise null.
 *
 * @example
 * validateSegmentFilter({ match: 'all', conditions: [{ type: 'tag', operator: 'had', tag: 'vip' }] })
 * // { filter: null, errors: { 'filter.conditions[0].operator': ['must be one of has, not_has'] } }
 */
export function validateSegmentFilter(input: unknown, path = 'filter'): { filter: SegmentFilter | null; errors: FieldErrors } {
  const walk: Walk = { errors: {}, conditions: 0, groups: 0 };
  const filter = validateGroup(input, path, 1, walk);
  if (walk.conditions > segmentFilterLimits.conditions) {
    add(walk, `${path}.conditions`, `must hold at most ${segmentFilterLimits.conditions} conditions in all, nested groups included`);
  }
  if (walk.groups > segmentFilterLimits.groups) {
    add(walk, `${path}.conditions`, `must hold at most ${segmentFilterLimits.groups} nested groups in all`);
  }
  return Object.keys(walk.errors).length === 0 && filter !== null ? { filter, errors: {} } : { filter: null, errors: walk.errors };
}

function add(walk: Walk, path: string, message: string): void {
  (walk.errors[path] ??= []).push(message);
}

function oneOf(values: readonly string[]): string {
  return `must be one of ${values.join(', ')}`;
}

function includes<T extends string>(values: readonly T[], value: unknown): value is T {
  return typeof value === 'string' && (values as readonly string[]).includes(value);
}

function validateGroup(input: unknown, path: string, depth: number, walk: Walk): SegmentFilter | null {
  if (!isPlainObject(input)) {
    add(walk, path, 'must be an object with match and conditions');
    return null;
  }
  if (depth > segmentFilterLimits.depth) {
    // Nothing inside is checked: the group is rejected whole, and its contents would only add noise.
    add(walk, path, `nests groups more than ${segmentFilterLimits.depth} levels deep`);
    return null;
  }
  let ok = true;
  for (const key of Object.keys(input)) {
    if (key !== 'match' && key !== 'conditions') {
      add(walk, `${path}.${key}`, 'is not a known field of a group (match, conditions)');
      ok = false;
    }
  }
  const match = input.match;
  if (match === undefined) {
    add(walk, `${path}.match`, 'is required');
    ok = false;
  } else if (!includes(['all', 'any'] as const, match)) {
    add(walk, `${path}.match`, oneOf(['all', 'any']));
    ok = false;
  }
  const items = input.conditions;
  if (items === undefined) {
    add(walk, `${path}.conditions`, 'is required');
    return null;
  }
  if (!Array.isArray(items)) {
    add(walk, `${path}.conditions`, 'must be an array');
    return null;
  }
  const conditions: Array<SegmentCondition | SegmentFilter> = [];
  for (const [index, item] of items.entries()) {
    const itemPath = `${path}.conditions[${index}]`;
    // A huge array would otherwise produce one error per item; the total alone says enough.
    if (walk.conditions > segmentFilterLimits.conditions || walk.groups > segmentFilterLimits.groups) {
      countOnly(item, walk);
      ok = false;
      continue;
    }
    countOnly(item, walk);
    const child = isGroupShaped(item) ? validateGroup(item, itemPath, depth + 1, walk) : validateCondition(item, itemPath, walk);
    if (child === null) ok = false;
    else conditions.push(child);
  }
  return ok && includes(['all', 'any'] as const, match) ? { match, conditions } : null;
}

/** A group has match or conditions and no type; anything else is read as a condition. */
function isGroupShaped(item: unknown): boolean {
  return isPlainObject(item) && !('type' in item) && ('match' in item || 'conditions' in item);
}

function countOnly(item: unknown, walk: Walk): void {
  if (isGroupShaped(item)) walk.groups += 1;
  else walk.conditions += 1;
}

function validateCondition(input: unknown, path: string, walk: Walk): SegmentCondition | null {
  if (!isPlainObject(input)) {
    add(walk, path, 'must be a condition object (with a type) or a group (with match and conditions)');
    return null;
  }
  const type = input.type;
  if (type === undefined) {
    add(walk, `${path}.type`, 'is required');
    return null;
  }
  if (!includes(Object.keys(allowedKeys) as Array<SegmentCondition['type']>, type)) {
    add(walk, `${path}.type`, oneOf(Object.keys(allowedKeys)));
    return null;
  }
  const before = errorCount(walk);
  for (const key of Object.keys(input)) {
    if (!allowedKeys[type].includes(key)) add(walk, `${path}.${key}`, `is not a known field of a ${type} condition (${allowedKeys[type].join(', ')})`);
  }
  const condition = validateByType(type, input, path, walk);
  return errorCount(walk) === before ? condition : null;
}

function errorCount(walk: Walk): number {
  let count = 0;
  for (const messages of Object.values(walk.errors)) count += messages.length;
  return count;
}

function validateByType(type: SegmentCondition['type'], input: Record<string, unknown>, path: string, walk: Walk): SegmentCondition | null {
  switch (type) {
    case 'attribute':
      return validateAttribute(input, path, walk);
    case 'tag': {
      const operator = requireOneOf(input.operator, ['has', 'not_has'] as const, `${path}.operator`, walk);
      const tag = validateTag(input.tag, `${path}.tag`, walk);
      return operator && tag !== null ? { type, operator, tag } : null;
    }
    case 'list': {
      const operator = requireOneOf(input.operator, ['in', 'not_in'] as const, `${path}.operator`, walk);
      const listId = requireText(input.listId, `${path}.listId`, segmentFilterLimits.listIdLength, walk);
      return operator && listId !== null ? { type, operator, listId } : null;
    }
    case 'event': {
      const eventName = requireText(input.eventName, `${path}.eventName`, segmentFilterLimits.eventNameLength, walk);
      const operator = requireOneOf(input.operator, countOperators, `${path}.operator`, walk);
      const count = validateCount(input.count, `${path}.count`, walk);
      const withinDays = validateWithinDays(input.withinDays, `${path}.withinDays`, walk);
      if (eventName === null || !operator || count === null || withinDays === false) return null;
      return { type, eventName, operator, count, ...(withinDays === undefined ? {} : { withinDays }) };
    }
    case 'engagement': {
      const metric = requireOneOf(input.metric, engagementMetrics, `${path}.metric`, walk);
      let channel: SegmentChannel | undefined;
      let channelOk = true;
      // null is accepted as "every channel" because forms often send an unset select as null.
      if (input.channel !== undefined && input.channel !== null) {
        channel = requireOneOf(input.channel, segmentChannels, `${path}.channel`, walk);
        channelOk = channel !== undefined;
      }
      const operator = requireOneOf(input.operator, countOperators, `${path}.operator`, walk);
      const count = validateCount(input.count, `${path}.count`, walk);
      const withinDays = validateWithinDays(input.withinDays, `${path}.withinDays`, walk);
      if (!metric || !channelOk || !operator || count === null || withinDays === false) return null;
      return { type, metric, ...(channel === undefined ? {} : { channel }), operator, count, ...(withinDays === undefined ? {} : { withinDays }) };
    }
  }
}

function requireOneOf<T extends string>(value: unknown, values: readonly T[], path: string, walk: Walk): T | undefined {
  if (value === undefined) {
    add(walk, path, 'is required');
    return undefined;
  }
  if (!includes(values, value)) {
    add(walk, path, oneOf(values));
    return undefined;
  }
  return value;
}

function requireText(value: unknown, path: string, maxLength: number, walk: Walk): string | null {
  if (value === undefined || value === null) {
    add(walk, path, 'is required');
    return null;
  }
  if (typeof value !== 'string') {
    add(walk, path, 'must be a string');
    return null;
  }
  const text = value.trim();
  if (text === '') add(walk, path, 'must not be empty');
  else if (text.length > maxLength) add(walk, path, `must be at most ${maxLength} characters`);
  else if (controlCharacters.test(text)) add(walk, path, 'must not contain control characters');
  else return text;
  return null;
}

/** Tags follow the contact rules (`normalizeTagName`), so a segment can name any tag a contact can hold. */
function validateTag(value: unknown, path: string, walk: Walk): string | null {
  if (value === undefined || value === null) {
    add(walk, path, 'is required');
    return null;
  }
  if (typeof value !== 'string') {
    add(walk, path, 'must be a string');
    return null;
  }
  const name = value.normalize('NFC').replace(/\s+/g, ' ').trim();
  if (name === '') add(walk, path, 'must not be empty');
  else if (name.length > contactLimits.tag) add(walk, path, `must be at most ${contactLimits.tag} characters`);
  else if (name.includes(',')) add(walk, path, 'must not contain a comma');
  else return name;
  return null;
}

function validateCount(value: unknown, path: string, walk: Walk): number | null {
  if (value === undefined || value === null) {
    add(walk, path, 'is required');
    return null;
  }
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    add(walk, path, 'must be a whole number, 0 or more');
    return null;
  }
  return value;
}

/** undefined: all time; false: invalid. */
function validateWithinDays(value: unknown, path: string, walk: Walk): number | undefined | false {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > segmentFilterLimits.withinDays) {
    add(walk, path, `must be a whole number from 1 to ${segmentFilterLimits.withinDays}`);
    return false;
  }
  return value;
}

function validateField(value: unknown, path: string, walk: Walk): string | null {
  if (value === undefined || value === null) {
    add(walk, path, 'is required');
    return null;
  }
  if (typeof value !== 'string') {
    add(walk, path, 'must be a string');
    return null;
  }
  if (includes(segmentContactFields, value)) return value;
  if (value.startsWith('attributes.')) {
    const keys = value.slice('attributes.'.length).split('.');
    const good = keys.every((key) => key.length <= segmentFilterLimits.attributeKeyLength && attributeKeyPattern.test(key));
    if (good && keys.length <= segmentFilterLimits.attributePathSegments) return value;
  }
  add(
    walk,
    path,
    `must be one of ${segmentContactFields.join(', ')}, or attributes.<key> (keys of letters, digits, _ and -, joined by dots, at most ${segmentFilterLimits.attributePathSegments})`,
  );
  return null;
}

function isScalar(value: unknown): value is SegmentScalar {
  return value === null || typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value));
}

/** Checks one scalar value (or in/not_in item); returns a problem or null. */
function scalarProblem(value: unknown, field: string | null, operator: AttributeOperator): string | null {
  if (!isScalar(value)) return 'must be a string, number, boolean or null';
  if (typeof value === 'string' && value.length > segmentFilterLimits.valueLength) return `must be at most ${segmentFilterLimits.valueLength} characters`;
  if (field === 'createdAt' && parseIsoTime(value) === null) return 'must be an ISO 8601 date, like 2025-03-01 or 2025-03-01T10:00:00Z';
  if (orderOperators.has(operator) && toNumber(value) === null && parseIsoTime(value) === null) {
    return `must be a number or an ISO 8601 date to compare with ${operator}`;
  }
  return null;
}

function validateAttribute(input: Record<string, unknown>, path: string, walk: Walk): AttributeCondition | null {
  const field = validateField(input.field, `${path}.field`, walk);
  const operator = requireOneOf(input.operator, attributeOperators, `${path}.operator`, walk);
  if (!operator) return null;
  if (field === 'createdAt' && !dateOperators.has(operator)) {
    add(walk, `${path}.operator`, `must be one of ${[...dateOperators].join(', ')} for createdAt`);
    return null;
  }
  const value = input.value;
  const valuePath = `${path}.value`;
  if (operator === 'exists' || operator === 'not_exists') {
    if (value !== undefined) {
      add(walk, valuePath, `must be left out with ${operator}`);
      return null;
    }
    return field === null ? null : { type: 'attribute', field, operator };
  }
  if (value === undefined) {
    add(walk, valuePath, `is required with ${operator}`);
    return null;
  }
  if (operator === 'in' || operator === 'not_in') {
    if (!Array.isArray(value)) {
      add(walk, valuePath, `must be an array with ${operator}`);
      return null;
    }
    if (value.length === 0 || value.length > segmentFilterLimits.listValues) {
      add(walk, valuePath, `must hold 1 to ${segmentFilterLimits.listValues} values`);
      return null;
    }
    let ok = true;
    for (const [index, item] of value.entries()) {
      const problem = scalarProblem(item, field, operator);
      if (problem !== null) {
        add(walk, `${valuePath}[${index}]`, problem);
        ok = false;
      }
    }
    return ok && field !== null ? { type: 'attribute', field, operator, value: [...(value as SegmentScalar[])] } : null;
  }
  if (Array.isArray(value)) {
    add(walk, valuePath, `must be a single value with ${operator} (use in or not_in for a list)`);
    return null;
  }
  if ((operator === 'gt' || operator === 'gte' || operator === 'lt' || operator === 'lte') && (value === null || typeof value === 'boolean')) {
    add(walk, valuePath, `must be a number or an ISO 8601 date to compare with ${operator}`);
    return null;
  }
  const problem = scalarProblem(value, field, operator);
  if (problem !== null) {
    add(walk, valuePath, problem);
    return null;
  }
  return field === null ? null : { type: 'attribute', field, operator, value: value as SegmentScalar };
}

function isGroup(node: SegmentCondition | SegmentFilter): node is SegmentFilter {
  return !('type' in node);
}

function* conditionsOf(filter: SegmentFilter): Generator<SegmentCondition> {
  for (const node of filter.conditions) {
    if (isGroup(node)) yield* conditionsOf(node);
    else yield node;
  }
}

function needKey(condition: EventCondition | EngagementCondition): string {
  const days = condition.withinDays === undefined ? 'all' : String(condition.withinDays);
  // The event name sits between a fixed prefix and the last segment, so a ':' in it cannot collide.
  if (condition.type === 'event') return `event:${condition.eventName}:${days}`;
  return `engagement:${condition.metric}:${condition.channel ?? 'any'}:${days}`;
}

/**
 * The counts to fetch before `evaluateSegment`, one per distinct (event, window) or
 * (metric, channel, window), in the order the filter first names them. Keys are stable:
 * `event:order_placed:30`, `event:signup:all`, `engagement:read:email:all`,
 * `engagement:replied:any:7` (any = every channel).
 */
export function segmentNeeds(filter: SegmentFilter): SegmentNeed[] {
  const needs = new Map<string, SegmentNeed>();
  for (const condition of conditionsOf(filter)) {
    if (condition.type !== 'event' && condition.type !== 'engagement') continue;
    const key = needKey(condition);
    if (needs.has(key)) continue;
    const withinDays = condition.withinDays ?? null;
    needs.set(
      key,
      condition.type === 'event'
        ? { key, kind: 'event', eventName: condition.eventName, withinDays }
        : { key, kind: 'engagement', metric: condition.metric, channel: condition.channel ?? null, withinDays },
    );
  }
  return [...needs.values()];
}

/**
 * What can change a contact's membership, so a caller can skip re-evaluating segments a
 * change cannot affect: a tag added, a list joined, an event recorded, a message status.
 * `timeWindows` means membership can also change with time alone, as counts age out.
 */
export function segmentDependsOn(filter: SegmentFilter): SegmentDependencies {
  const tags = new Set<string>();
  const lists = new Set<string>();
  const events = new Set<string>();
  let attributes = false;
  let engagement = false;
  let timeWindows = false;
  for (const condition of conditionsOf(filter)) {
    switch (condition.type) {
      case 'attribute':
        attributes = true;
        break;
      case 'tag':
        tags.add(tagKey(condition.tag));
        break;
      case 'list':
        lists.add(condition.listId);
        break;
      case 'event':
        events.add(condition.eventName);
        if (condition.withinDays !== undefined) timeWindows = true;
        break;
      case 'engagement':
        engagement = true;
        if (condition.withinDays !== undefined) timeWindows = true;
        break;
    }
  }
  return { attributes, tags, lists, events, engagement, timeWindows };
}

/**
 * Whether a contact is in the segment. `facts.counts` must hold the counts `segmentNeeds`
 * lists (a missing one counts as 0). The filter must come from `validateSegmentFilter`.
 *
 * @example
 * evaluateSegment({ match: 'all', conditions: [{ type: 'tag', operator: 'has', tag: 'VIP' }] },
 *   { contact, tags: new Set(['vip']), lists: new Set(), counts: new Map() }) // true
 */
export function evaluateSegment(filter: SegmentFilter, facts: SegmentFacts): boolean {
  const matchAny = filter.match === 'any';
  for (const node of filter.conditions) {
    const result = isGroup(node) ? evaluateSegment(node, facts) : evaluateCondition(node, facts);
    if (result === matchAny) return matchAny;
  }
  return !matchAny;
}

function evaluateCondition(condition: SegmentCondition, facts: SegmentFacts): boolean {
  switch (condition.type) {
    case 'attribute':
      return evaluateAttribute(condition, facts);
    case 'tag': {
      const has = facts.tags.has(tagKey(condition.tag));
      return condition.operator === 'has' ? has : !has;
    }
    case 'list': {
      const member = facts.lists.has(condition.listId);
      return condition.operator === 'in' ? member : !member;
    }
    case 'event':
    case 'engagement':
      return compareCount(facts.counts.get(needKey(condition)) ?? 0, condition.operator, condition.count);
  }
}

function compareCount(actual: number, operator: CountOperator, expected: number): boolean {
  switch (operator) {
    case 'gte':
      return actual >= expected;
    case 'gt':
      return actual > expected;
    case 'eq':
      return actual === expected;
    case 'lte':
      return actual <= expected;
    case 'lt':
      return actual < expected;
  }
}

function resolveField(field: string, contact: SegmentFacts['contact']): unknown {
  if (!field.startsWith('attributes.')) {
    switch (field) {
      case 'email':
        return contact.email;
      case 'phone':
        return contact.phone;
      case 'firstName':
        return contact.firstName;
      case 'lastName':
        return contact.lastName;
      case 'name':
        return contact.name;
      case 'timezone':
        return contact.timezone;
      case 'language':
        return contact.language;
      case 'source':
        return contact.source;
      case 'createdAt':
        return contact.createdAt;
      default:
        return undefined;
    }
  }
  let current: unknown = contact.attributes;
  for (const key of field.slice('attributes.'.length).split('.')) {
    // Own properties only: `attributes.constructor` must not reach Object.prototype.
    if (!isPlainObject(current) || !Object.hasOwn(current, key)) return undefined;
    current = current[key];
  }
  return current;
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

const isoPattern = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:?\d{2})?)?$/i;

/**
 * An ISO 8601 date (`2025-03-01`) or date-time as epoch ms; otherwise null. A date or a
 * date-time without an offset is read as UTC: `Date.parse` would read the latter in the
 * server's zone, so the same segment would hold different contacts on different servers.
 */
function parseIsoTime(value: unknown): number | null {
  if (typeof value !== 'string') return null;
  const m = isoPattern.exec(value.trim());
  if (!m) return null;
  const [, y, mo, d, h = '0', mi = '0', s = '0', fraction = '', zone] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = Number(s);
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return null;
  const utc = Date.UTC(year, month - 1, day, hour, minute, second, Number(fraction.slice(0, 3).padEnd(3, '0')));
  // Date.UTC rolls 2025-02-30 over to March; a real date survives the round trip.
  if (new Date(utc).getUTCDate() !== day) return null;
  if (zone === undefined || zone.toUpperCase() === 'Z') return utc;
  const sign = zone.startsWith('-') ? -1 : 1;
  const digits = zone.slice(1).replace(':', '');
  const offsetMinutes = Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2));
  return utc - sign * offsetMinutes * 60_000;
}

function toText(value: unknown): string {
  if (typeof value === 'string') return value.toLowerCase();
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (value === null || value === undefined) return '';
  return (JSON.stringify(value) ?? '').toLowerCase();
}

function same(actual: unknown, expected: unknown): boolean {
  if (isMissing(expected)) return isMissing(actual);
  if (isMissing(actual)) return false;
  const a = toNumber(actual);
  const b = toNumber(expected);
  if (a !== null && b !== null) return a === b;
  return toText(actual) === toText(expected);
}

/** Array attributes (`["en", "pt"]`) match when any item does. */
function someItem(actual: unknown, test: (item: unknown) => boolean): boolean {
  if (isMissing(actual)) return false;
  return Array.isArray(actual) ? actual.some((item) => !isMissing(item) && test(item)) : test(actual);
}

function order(actual: unknown, expected: unknown): number | null {
  const a = toNumber(actual);
  const b = toNumber(expected);
  if (a !== null && b !== null) return a - b;
  const ta = parseIsoTime(actual);
  const tb = parseIsoTime(expected);
  if (ta !== null && tb !== null) return ta - tb;
  return null;
}

function evaluateAttribute(condition: AttributeCondition, facts: SegmentFacts): boolean {
  const { operator, value } = condition;
  if (condition.field === 'createdAt') {
    if (operator === 'exists') return true;
    if (operator === 'not_exists') return false;
    const expected = parseIsoTime(value);
    if (expected === null) return operator === 'not_equals';
    const difference = facts.contact.createdAt - expected;
    return operator === 'not_equals' ? difference !== 0 : holds(operator, difference);
  }
  const actual = resolveField(condition.field, facts.contact);
  switch (operator) {
    case 'equals':
      return someItem(actual, (item) => same(item, value)) || (value === null && isMissing(actual));
    case 'not_equals':
      return !(someItem(actual, (item) => same(item, value)) || (value === null && isMissing(actual)));
    case 'contains':
      return someItem(actual, (item) => toText(item).includes(toText(value)));
    case 'not_contains':
      return !someItem(actual, (item) => toText(item).includes(toText(value)));
    case 'starts_with':
      return someItem(actual, (item) => toText(item).startsWith(toText(value)));
    case 'ends_with':
      return someItem(actual, (item) => toText(item).endsWith(toText(value)));
    case 'exists':
      return !isMissing(actual);
    case 'not_exists':
      return isMissing(actual);
    case 'gt':
    case 'gte':
    case 'lt':
    case 'lte':
      return someItem(actual, (item) => {
        const difference = order(item, value);
        return difference !== null && holds(operator, difference);
      });
    case 'in':
    case 'not_in': {
      const options = Array.isArray(value) ? value : [value];
      const found = someItem(actual, (item) => options.some((option) => same(item, option))) || (options.includes(null) && isMissing(actual));
      return operator === 'in' ? found : !found;
    }
  }
}

function holds(operator: AttributeOperator, difference: number): boolean {
  switch (operator) {
    case 'gt':
      return difference > 0;
    case 'gte':
      return difference >= 0;
    case 'lt':
      return difference < 0;
    case 'lte':
      return difference <= 0;
    default:
      return difference === 0;
  }
}
