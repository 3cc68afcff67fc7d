import { describe, expect, it } from 'vitest';
import {
  evaluateSegment,
  segmentDependsOn,
  segmentNeeds,
  validateSegmentFilter,
  type SegmentCondition,
  type SegmentFacts,
  type SegmentFilter,
} from './segment-filter.js';

const facts: SegmentFacts = {
  contact: {
    email: 'Ana@Example.com',
    phone: '+351912345678',
    firstName: 'Ana',
    lastName: null,
    name: 'Ana Silva',
    timezone: 'Europe/Lisbon',
    language: '',
    source: 'import',
    createdAt: Date.UTC(2025, 2, 1, 10, 0, 0),
    attributes: {
      plan: { tier: 'Pro', seats: '12' },
      score: 7.5,
      vip: true,
      renewsAt: '2025-06-30T00:00:00Z',
      langs: ['en', 'PT'],
      empty: '',
      nothing: null,
    },
  },
  tags: new Set(['vip', 'early adopter']),
  lists: new Set(['list-newsletter']),
  counts: new Map([
    ['event:order_placed:30', 2],
    ['event:order_placed:all', 5],
    ['engagement:read:email:all', 3],
    ['engagement:replied:any:7', 1],
  ]),
};

function one(condition: SegmentCondition, f: SegmentFacts = facts): boolean {
  return evaluateSegment({ match: 'all', conditions: [condition] }, f);
}

function attr(field: string, operator: string, value?: unknown): boolean {
  const condition = { type: 'attribute', field, operator, ...(value === undefined ? {} : { value }) };
  const { filter, errors } = validateSegmentFilter({ match: 'all', conditions: [condition] });
  // Every evaluated condition goes through validation first, as the caller must.
  expect(errors).toEqual({});
  return evaluateSegment(filter!, facts);
}

function errorsOf(input: unknown): Record<string, string[]> {
  const { filter, errors } = validateSegmentFilter(input);
  expect(filter).toBeNull();
  return errors;
}

function group(...conditions: unknown[]): unknown {
  return { match: 'all', conditions };
}

describe('validateSegmentFilter', () => {
  it('returns a typed copy of a valid filter, keeping only known keys, with no errors', () => {
    const input = {
      match: 'any',
      conditions: [
        { type: 'attribute', field: 'attributes.plan.tier', operator: 'in', value: ['pro', 'team'] },
        { type: 'tag', operator: 'has', tag: '  Early   Adopter ' },
        { type: 'list', operator: 'not_in', listId: 'list-1' },
        { type: 'event', eventName: 'order_placed', operator: 'gte', count: 2, withinDays: 30 },
        { match: 'all', conditions: [{ type: 'engagement', metric: 'read', channel: 'email', operator: 'eq', count: 0 }] },
        { type: 'attribute', field: 'email', operator: 'exists' },
        { type: 'engagement', metric: 'failed', channel: null, operator: 'lt', count: 1, withinDays: null },
      ],
    };
    const { filter, errors } = validateSegmentFilter(input);
    expect(errors).toEqual({});
    expect(filter).toEqual({
      match: 'any',
      conditions: [
        { type: 'attribute', field: 'attributes.plan.tier', operator: 'in', value: ['pro', 'team'] },
        { type: 'tag', operator: 'has', tag: 'Early Adopter' },
        { type: 'list', operator: 'not_in', listId: 'list-1' },
        { type: 'event', eventName: 'order_placed', operator: 'gte', count: 2, withinDays: 30 },
        { match: 'all', conditions: [{ type: 'engagement', metric: 'read', channel: 'email', operator: 'eq', count: 0 }] },
        { type: 'attribute', field: 'email', operator: 'exists' },
        { type: 'engagement', metric: 'failed', operator: 'lt', count: 1 },
      ],
    });
    expect(filter).not.toBe(input);
    expect(filter!.conditions[0]).not.toBe(input.conditions[0]);
  });

  it('accepts an empty group', () => {
    expect(validateSegmentFilter({ match: 'all', conditions: [] })).toEqual({ filter: { match: 'all', conditions: [] }, errors: {} });
  });

  it('names a filter that is not an object, or lacks match and conditions', () => {
    expect(errorsOf('all')).toEqual({ filter: ['must be an object with match and conditions'] });
    expect(errorsOf([])).toEqual({ filter: ['must be an object with match and conditions'] });
    expect(errorsOf({})).toEqual({ 'filter.match': ['is required'], 'filter.conditions': ['is required'] });
    expect(errorsOf({ match: 'some', conditions: {} })).toEqual({ 'filter.match': ['must be one of all, any'], 'filter.conditions': ['must be an array'] });
  });

  it('prefixes every path with the given path', () => {
    expect(validateSegmentFilter({ match: 'all' }, 'body.segment.filter').errors).toEqual({ 'body.segment.filter.conditions': ['is required'] });
  });

  it('names an unknown condition type and a condition that is not an object', () => {
    expect(errorsOf(group({ type: 'score', value: 3 }, 'vip', { operator: 'has' }))).toEqual({
      'filter.conditions[0].type': ['must be one of attribute, tag, list, event, engagement'],
      'filter.conditions[1]': ['must be a condition object (with a type) or a group (with match and conditions)'],
      'filter.conditions[2].type': ['is required'],
    });
  });

  it('names an unknown operator with the operators that type allows', () => {
    expect(errorsOf(group({ type: 'tag', operator: 'had', tag: 'vip' }, { type: 'list', operator: 'has', listId: 'l' }))).toEqual({
      'filter.conditions[0].operator': ['must be one of has, not_has'],
      'filter.conditions[1].operator': ['must be one of in, not_in'],
    });
    expect(errorsOf(group({ type: 'attribute', field: 'email', operator: 'like', value: 'a' }))).toEqual({
      'filter.conditions[0].operator': ['must be one of equals, not_equals, contains, not_contains, starts_with, ends_with, exists, not_exists, gt, gte, lt, lte, in, not_in'],
    });
    expect(errorsOf(group({ type: 'event', eventName: 'x', operator: 'gte ', count: 1 }))).toEqual({
      'filter.conditions[0].operator': ['must be one of gte, gt, eq, lte, lt'],
    });
  });

  it('names wrong types and missing required fields', () => {
    expect(
      errorsOf(
        group(
          { type: 'tag', operator: 'has', tag: 42 },
          { type: 'list', operator: 'in' },
          { type: 'event', eventName: '  ', operator: 'gte' },
          { type: 'engagement', metric: 'opened', channel: 'fax', operator: 'gte', count: '2' },
          { type: 'attribute', field: 7, operator: 'equals', value: 'x' },
        ),
      ),
    ).toEqual({
      'filter.conditions[0].tag': ['must be a string'],
      'filter.conditions[1].listId': ['is required'],
      'filter.conditions[2].eventName': ['must not be empty'],
      'filter.conditions[2].count': ['is required'],
      'filter.conditions[3].metric': ['must be one of sent, delivered, read, replied, failed'],
      'filter.conditions[3].channel': ['must be one of whatsapp, sms, email'],
      'filter.conditions[3].count': ['must be a whole number, 0 or more'],
      'filter.conditions[4].field': ['must be a string'],
    });
  });

  it('names a missing or misshapen value for the operator', () => {
    expect(
      errorsOf(
        group(
          { type: 'attribute', field: 'email', operator: 'equals' },
          { type: 'attribute', field: 'email', operator: 'in', value: 'a@b.c' },
          { type: 'attribute', field: 'email', operator: 'equals', value: ['a@b.c'] },
          { type: 'attribute', field: 'email', operator: 'exists', value: 'x' },
          { type: 'attribute', field: 'email', operator: 'not_in', value: [] },
          { type: 'attribute', field: 'attributes.plan', operator: 'in', value: ['ok', { tier: 'pro' }] },
          { type: 'attribute', field: 'attributes.plan', operator: 'equals', value: { tier: 'pro' } },
          { type: 'attribute', field: 'attributes.score', operator: 'gt', value: 'ten' },
          { type: 'attribute', field: 'attributes.score', operator: 'lte', value: true },
        ),
      ),
    ).toEqual({
      'filter.conditions[0].value': ['is required with equals'],
      'filter.conditions[1].value': ['must be an array with in'],
      'filter.conditions[2].value': ['must be a single value with equals (use in or not_in for a list)'],
      'filter.conditions[3].value': ['must be left out with exists'],
      'filter.conditions[4].value': ['must hold 1 to 500 values'],
      'filter.conditions[5].value[1]': ['must be a string, number, boolean or null'],
      'filter.conditions[6].value': ['must be a string, number, boolean or null'],
      'filter.conditions[7].value': ['must be a number or an ISO 8601 date to compare with gt'],
      'filter.conditions[8].value': ['must be a number or an ISO 8601 date to compare with lte'],
    });
  });

  it('names a field that is neither a contact field nor attributes.<key>', () => {
    const fieldError = 'must be one of email, phone, firstName, lastName, name, timezone, language, source, createdAt, or attributes.<key> (keys of letters, digits, _ and -, joined by dots, at most 10)';
    expect(
      errorsOf(
        group(
          { type: 'attribute', field: 'first_name', operator: 'exists' },
          { type: 'attribute', field: 'attributes.', operator: 'exists' },
          { type: 'attribute', field: 'attributes.plan..tier', operator: 'exists' },
          { type: 'attribute', field: 'attributes.pl an', operator: 'exists' },
          { type: 'attribute', field: 'metadata.plan', operator: 'exists' },
        ),
      ),
    ).toEqual({
      'filter.conditions[0].field': [fieldError],
      'filter.conditions[1].field': [fieldError],
      'filter.conditions[2].field': [fieldError],
      'filter.conditions[3].field': [fieldError],
      'filter.conditions[4].field': [fieldError],
    });
  });

  it('requires ISO dates and date operators for createdAt', () => {
    expect(
      errorsOf(
        group(
          { type: 'attribute', field: 'createdAt', operator: 'gt', value: 1740823200000 },
          { type: 'attribute', field: 'createdAt', operator: 'lt', value: '2025-02-30' },
          { type: 'attribute', field: 'createdAt', operator: 'contains', value: '2025' },
        ),
      ),
    ).toEqual({
      'filter.conditions[0].value': ['must be an ISO 8601 date, like 2025-03-01 or 2025-03-01T10:00:00Z'],
      'filter.conditions[1].value': ['must be an ISO 8601 date, like 2025-03-01 or 2025-03-01T10:00:00Z'],
      'filter.conditions[2].operator': ['must be one of equals, not_equals, gt, gte, lt, lte, exists, not_exists for createdAt'],
    });
  });

  it('names unknown extra keys on conditions and groups', () => {
    expect(
      errorsOf({
        match: 'all',
        conditions: [
          { type: 'event', eventName: 'signup', operator: 'gte', count: 1, withinDay: 7 },
          { type: 'tag', operator: 'has', tag: 'vip', value: 'x' },
          { match: 'any', conditions: [], negate: true },
        ],
        name: 'x',
      }),
    ).toEqual({
      'filter.name': ['is not a known field of a group (match, conditions)'],
      'filter.conditions[0].withinDay': ['is not a known field of a event condition (type, eventName, operator, count, withinDays)'],
      'filter.conditions[1].value': ['is not a known field of a tag condition (type, operator, tag)'],
      'filter.conditions[2].negate': ['is not a known field of a group (match, conditions)'],
    });
  });

  it('names withinDays out of 1..3650 and counts that are not whole numbers', () => {
    const event = (extra: object) => ({ type: 'event', eventName: 'signup', operator: 'gte', count: 1, ...extra });
    expect(
      errorsOf(
        group(event({ withinDays: 0 }), event({ withinDays: 3651 }), event({ withinDays: 1.5 }), event({ count: 1.5 }), event({ count: -1 }), event({ count: Number.NaN })),
      ),
    ).toEqual({
      'filter.conditions[0].withinDays': ['must be a whole number from 1 to 3650'],
      'filter.conditions[1].withinDays': ['must be a whole number from 1 to 3650'],
      'filter.conditions[2].withinDays': ['must be a whole number from 1 to 3650'],
      'filter.conditions[3].count': ['must be a whole number, 0 or more'],
      'filter.conditions[4].count': ['must be a whole number, 0 or more'],
      'filter.conditions[5].count': ['must be a whole number, 0 or more'],
    });
    expect(validateSegmentFilter(group(event({ withinDays: 1 }), event({ withinDays: 3650 }), event({ count: 0 }))).errors).toEqual({});
  });

  it('names problems inside nested groups by their full path', () => {
    expect(errorsOf(group(group({ type: 'tag', operator: 'has', tag: 'ok' }, group({ type: 'list', operator: 'in', listId: '' }))))).toEqual({
      'filter.conditions[0].conditions[1].conditions[0].listId': ['must not be empty'],
    });
  });

  it('allows groups 5 levels deep and names the group that goes deeper', () => {
    const leaf = { type: 'tag', operator: 'has', tag: 'vip' };
    expect(validateSegmentFilter(group(group(group(group(group(leaf)))))).errors).toEqual({});
    expect(errorsOf(group(group(group(group(group(group(leaf)))))))).toEqual({
      'filter.conditions[0].conditions[0].conditions[0].conditions[0].conditions[0]': ['nests groups more than 5 levels deep'],
    });
  });

  it('allows 50 conditions in all and names a filter with more, counting nested ones', () => {
    const leaf = { type: 'tag', operator: 'has', tag: 'vip' };
    const fifty = Array.from({ length: 50 }, () => leaf);
    expect(validateSegmentFilter({ match: 'all', conditions: fifty }).errors).toEqual({});
    expect(errorsOf({ match: 'all', conditions: [...fifty.slice(1), group(leaf, leaf)] })).toEqual({
      'filter.conditions': ['must hold at most 50 conditions in all, nested groups included'],
    });
    // Items past the limit are not checked one by one: the total alone is the problem.
    expect(errorsOf({ match: 'all', conditions: Array.from({ length: 1000 }, () => ({ type: 'nope' })) })['filter.conditions[999].type']).toBeUndefined();
  });

  it('bounds the number of groups, even empty ones', () => {
    const empties = Array.from({ length: 51 }, () => ({ match: 'any', conditions: [] }));
    expect(errorsOf({ match: 'all', conditions: empties })).toEqual({ 'filter.conditions': ['must hold at most 50 nested groups in all'] });
  });
});

describe('evaluateSegment', () => {
  it('match all needs every condition; match any needs one; empty all is true and empty any false', () => {
    const vip = { type: 'tag', operator: 'has', tag: 'vip' } as const;
    const churned = { type: 'tag', operator: 'has', tag: 'churned' } as const;
    expect(evaluateSegment({ match: 'all', conditions: [vip, churned] }, facts)).toBe(false);
    expect(evaluateSegment({ match: 'all', conditions: [vip, vip] }, facts)).toBe(true);
    expect(evaluateSegment({ match: 'any', conditions: [churned, vip] }, facts)).toBe(true);
    expect(evaluateSegment({ match: 'any', conditions: [churned, churned] }, facts)).toBe(false);
    expect(evaluateSegment({ match: 'all', conditions: [] }, facts)).toBe(true);
    expect(evaluateSegment({ match: 'any', conditions: [] }, facts)).toBe(false);
  });

  it('combines nested any and all groups', () => {
    const filter: SegmentFilter = {
      match: 'all',
      conditions: [
        { type: 'list', operator: 'in', listId: 'list-newsletter' },
        {
          match: 'any',
          conditions: [
            { type: 'tag', operator: 'has', tag: 'churned' },
            { match: 'all', conditions: [{ type: 'attribute', field: 'attributes.plan.tier', operator: 'equals', value: 'pro' }, { type: 'event', eventName: 'order_placed', operator: 'gte', count: 2, withinDays: 30 }] },
          ],
        },
      ],
    };
    expect(evaluateSegment(filter, facts)).toBe(true);
    expect(evaluateSegment(filter, { ...facts, counts: new Map() })).toBe(false);
    expect(evaluateSegment(filter, { ...facts, counts: new Map(), tags: new Set(['churned']) })).toBe(true);
    expect(evaluateSegment(filter, { ...facts, lists: new Set() })).toBe(false);
    expect(evaluateSegment({ match: 'any', conditions: [{ match: 'any', conditions: [] }, { match: 'all', conditions: [] }] }, facts)).toBe(true);
  });

  it('equals and not_equals compare text case-insensitively, on contact fields and nested attributes', () => {
    expect(attr('email', 'equals', 'ana@example.COM')).toBe(true);
    expect(attr('email', 'not_equals', 'ana@example.COM')).toBe(false);
    expect(attr('attributes.plan.tier', 'equals', 'PRO')).toBe(true);
    expect(attr('attributes.plan.tier', 'equals', 'free')).toBe(false);
    expect(attr('attributes.plan.tier', 'not_equals', 'free')).toBe(true);
    expect(attr('attributes.vip', 'equals', true)).toBe(true);
    expect(attr('attributes.vip', 'equals', 'TRUE')).toBe(true);
    expect(attr('attributes.vip', 'equals', false)).toBe(false);
  });

  it('equals compares numeric strings numerically', () => {
    expect(attr('attributes.plan.seats', 'equals', 12)).toBe(true);
    expect(attr('attributes.plan.seats', 'equals', '12.0')).toBe(true);
    expect(attr('attributes.score', 'equals', '7.50')).toBe(true);
    expect(attr('attributes.score', 'equals', 7)).toBe(false);
  });

  it('equals null matches a missing, null or empty field', () => {
    expect(attr('lastName', 'equals', null)).toBe(true);
    expect(attr('attributes.nothing', 'equals', null)).toBe(true);
    expect(attr('attributes.absent', 'equals', null)).toBe(true);
    expect(attr('firstName', 'equals', null)).toBe(false);
    expect(attr('firstName', 'not_equals', null)).toBe(true);
  });

  it('not_equals, not_contains and not_in are true when the field is missing', () => {
    for (const field of ['lastName', 'language', 'attributes.absent', 'attributes.nothing', 'attributes.plan.tier.deeper']) {
      expect(attr(field, 'equals', 'x')).toBe(false);
      expect(attr(field, 'not_equals', 'x')).toBe(true);
      expect(attr(field, 'contains', 'x')).toBe(false);
      expect(attr(field, 'not_contains', 'x')).toBe(true);
      expect(attr(field, 'in', ['x'])).toBe(false);
      expect(attr(field, 'not_in', ['x'])).toBe(true);
      expect(attr(field, 'starts_with', 'x')).toBe(false);
      expect(attr(field, 'ends_with', 'x')).toBe(false);
      expect(attr(field, 'gt', 0)).toBe(false);
      expect(attr(field, 'lt', 0)).toBe(false);
    }
  });

  it('does not read inherited properties as attributes', () => {
    expect(attr('attributes.constructor', 'exists')).toBe(false);
    expect(attr('attributes.plan.toString', 'exists')).toBe(false);
  });

  it('contains, starts_with and ends_with match text case-insensitively, and arrays by item', () => {
    expect(attr('email', 'contains', 'EXAMPLE')).toBe(true);
    expect(attr('email', 'contains', 'gmail')).toBe(false);
    expect(attr('email', 'not_contains', 'gmail')).toBe(true);
    expect(attr('email', 'not_contains', '@example')).toBe(false);
    expect(attr('name', 'starts_with', 'ana ')).toBe(true);
    expect(attr('name', 'starts_with', 'silva')).toBe(false);
    expect(attr('email', 'ends_with', '.COM')).toBe(true);
    expect(attr('email', 'ends_with', 'example')).toBe(false);
    expect(attr('attributes.langs', 'contains', 'pt')).toBe(true);
    expect(attr('attributes.langs', 'equals', 'EN')).toBe(true);
    expect(attr('attributes.langs', 'starts_with', 'p')).toBe(true);
    expect(attr('attributes.langs', 'contains', 'de')).toBe(false);
  });

  it('exists and not_exists treat null, missing and "" as absent', () => {
    expect(attr('firstName', 'exists')).toBe(true);
    expect(attr('attributes.plan.tier', 'exists')).toBe(true);
    expect(attr('attributes.vip', 'exists')).toBe(true);
    for (const field of ['lastName', 'language', 'attributes.empty', 'attributes.nothing', 'attributes.absent']) {
      expect(attr(field, 'exists')).toBe(false);
      expect(attr(field, 'not_exists')).toBe(true);
    }
    expect(attr('createdAt', 'exists')).toBe(true);
    expect(attr('createdAt', 'not_exists')).toBe(false);
  });

  it('gt, gte, lt and lte compare numbers and numeric strings numerically', () => {
    expect(attr('attributes.plan.seats', 'gt', 9)).toBe(true); // "12" > 9, though "12" < "9" as text
    expect(attr('attributes.plan.seats', 'gt', '100')).toBe(false);
    expect(attr('attributes.plan.seats', 'gte', 12)).toBe(true);
    expect(attr('attributes.plan.seats', 'gt', 12)).toBe(false);
    expect(attr('attributes.score', 'lt', '10')).toBe(true);
    expect(attr('attributes.score', 'lte', 7.5)).toBe(true);
    expect(attr('attributes.score', 'lt', 7.5)).toBe(false);
    expect(attr('firstName', 'gt', 1)).toBe(false);
  });

  it('gt and lt compare attributes as instants when both sides are ISO dates', () => {
    expect(attr('attributes.renewsAt', 'gt', '2025-06-29')).toBe(true);
    expect(attr('attributes.renewsAt', 'lt', '2025-06-29')).toBe(false);
    expect(attr('attributes.renewsAt', 'gte', '2025-06-30')).toBe(true);
    expect(attr('attributes.renewsAt', 'lt', '2025-06-30T01:00:00+02:00')).toBe(false); // 2025-06-29T23:00Z
    expect(attr('attributes.renewsAt', 'lt', '2025-06-30T01:00:00Z')).toBe(true);
  });

  it('compares createdAt as a date, reading dates without an offset as UTC', () => {
    // createdAt is 2025-03-01T10:00:00Z
    expect(attr('createdAt', 'gt', '2025-03-01')).toBe(true);
    expect(attr('createdAt', 'lt', '2025-03-01')).toBe(false);
    expect(attr('createdAt', 'gte', '2025-03-01T10:00:00')).toBe(true);
    expect(attr('createdAt', 'gt', '2025-03-01T10:00:00Z')).toBe(false);
    expect(attr('createdAt', 'lte', '2025-03-01T10:00:00.000Z')).toBe(true);
    expect(attr('createdAt', 'lt', '2025-03-01T10:00:00-01:00')).toBe(true); // 11:00Z
    expect(attr('createdAt', 'lt', '2025-03-01T10:00:00+01:00')).toBe(false); // 09:00Z
    expect(attr('createdAt', 'equals', '2025-03-01T11:00:00+01:00')).toBe(true);
    expect(attr('createdAt', 'not_equals', '2025-03-01T11:00:00+01:00')).toBe(false);
    expect(attr('createdAt', 'not_equals', '2025-03-01')).toBe(true);
  });

  it('in and not_in look the value up case-insensitively and numerically', () => {
    expect(attr('attributes.plan.tier', 'in', ['free', 'PRO'])).toBe(true);
    expect(attr('attributes.plan.tier', 'not_in', ['free', 'PRO'])).toBe(false);
    expect(attr('attributes.plan.tier', 'in', ['free', 'team'])).toBe(false);
    expect(attr('attributes.plan.tier', 'not_in', ['free', 'team'])).toBe(true);
    expect(attr('attributes.plan.seats', 'in', [10, 12])).toBe(true);
    expect(attr('attributes.langs', 'in', ['de', 'pt'])).toBe(true);
    expect(attr('attributes.absent', 'in', [null, 'x'])).toBe(true);
    expect(attr('attributes.absent', 'not_in', [null, 'x'])).toBe(false);
  });

  it('has and not_has compare tag names case-insensitively, as the contact rules normalise them', () => {
    expect(one({ type: 'tag', operator: 'has', tag: 'VIP' })).toBe(true);
    expect(one({ type: 'tag', operator: 'not_has', tag: 'Vip' })).toBe(false);
    expect(one({ type: 'tag', operator: 'has', tag: 'churned' })).toBe(false);
    expect(one({ type: 'tag', operator: 'not_has', tag: 'churned' })).toBe(true);
    const { filter } = validateSegmentFilter(group({ type: 'tag', operator: 'has', tag: ' Early  ADOPTER ' }));
    expect(evaluateSegment(filter!, facts)).toBe(true);
  });

  it('in and not_in on a list test membership by id', () => {
    expect(one({ type: 'list', operator: 'in', listId: 'list-newsletter' })).toBe(true);
    expect(one({ type: 'list', operator: 'not_in', listId: 'list-newsletter' })).toBe(false);
    expect(one({ type: 'list', operator: 'in', listId: 'list-other' })).toBe(false);
    expect(one({ type: 'list', operator: 'not_in', listId: 'list-other' })).toBe(true);
  });

  it('event conditions read the count for their own window and compare with each operator', () => {
    const event = (operator: 'gte' | 'gt' | 'eq' | 'lte' | 'lt', count: number, withinDays?: number) =>
      one({ type: 'event', eventName: 'order_placed', operator, count, ...(withinDays === undefined ? {} : { withinDays }) });
    // 2 in the last 30 days, 5 in all time.
    expect([event('gte', 2, 30), event('gt', 2, 30), event('eq', 2, 30), event('lte', 2, 30), event('lt', 2, 30)]).toEqual([true, false, true, true, false]);
    expect([event('gte', 5), event('gt', 4), event('eq', 5), event('lte', 4), event('lt', 6)]).toEqual([true, true, true, false, true]);
  });

  it('a count the caller did not supply counts as 0', () => {
    expect(one({ type: 'event', eventName: 'order_placed', operator: 'eq', count: 0, withinDays: 7 })).toBe(true);
    expect(one({ type: 'event', eventName: 'signup', operator: 'gte', count: 1 })).toBe(false);
    expect(one({ type: 'engagement', metric: 'read', channel: 'sms', operator: 'lt', count: 1 })).toBe(true);
  });

  it('engagement conditions read the count for their metric, channel and window', () => {
    expect(one({ type: 'engagement', metric: 'read', channel: 'email', operator: 'gte', count: 3 })).toBe(true);
    expect(one({ type: 'engagement', metric: 'read', channel: 'email', operator: 'gt', count: 3 })).toBe(false);
    expect(one({ type: 'engagement', metric: 'read', operator: 'gte', count: 1 })).toBe(false); // every channel is its own count
    expect(one({ type: 'engagement', metric: 'replied', operator: 'eq', count: 1, withinDays: 7 })).toBe(true);
    expect(one({ type: 'engagement', metric: 'replied', channel: 'whatsapp', operator: 'eq', count: 1, withinDays: 7 })).toBe(false);
  });
});

describe('segmentNeeds', () => {
  it('lists each distinct count once, in first-named order, with stable keys', () => {
    const filter: SegmentFilter = {
      match: 'any',
      conditions: [
        { type: 'event', eventName: 'order_placed', operator: 'gte', count: 2, withinDays: 30 },
        { type: 'tag', operator: 'has', tag: 'vip' },
        { type: 'engagement', metric: 'read', channel: 'email', operator: 'gte', count: 1 },
        {
          match: 'all',
          conditions: [
            { type: 'event', eventName: 'order_placed', operator: 'lt', count: 10, withinDays: 30 },
            { type: 'event', eventName: 'order_placed', operator: 'gte', count: 1 },
            { type: 'engagement', metric: 'read', channel: 'email', operator: 'eq', count: 0 },
            { type: 'engagement', metric: 'replied', operator: 'gte', count: 1, withinDays: 7 },
          ],
        },
      ],
    };
    expect(segmentNeeds(filter)).toEqual([
      { key: 'event:order_placed:30', kind: 'event', eventName: 'order_placed', withinDays: 30 },
      { key: 'engagement:read:email:all', kind: 'engagement', metric: 'read', channel: 'email', withinDays: null },
      { key: 'event:order_placed:all', kind: 'event', eventName: 'order_placed', withinDays: null },
      { key: 'engagement:replied:any:7', kind: 'engagement', metric: 'replied', channel: null, withinDays: 7 },
    ]);
    expect(segmentNeeds(filter)).toEqual(segmentNeeds(structuredClone(filter)));
  });

  it('needs nothing for a filter without event or engagement conditions', () => {
    expect(segmentNeeds({ match: 'all', conditions: [{ type: 'tag', operator: 'has', tag: 'vip' }] })).toEqual([]);
  });
});

describe('segmentDependsOn', () => {
  it('reports the tags (lower-cased), lists and events a filter names, at any depth', () => {
    const deps = segmentDependsOn({
      match: 'all',
      conditions: [
        { type: 'tag', operator: 'has', tag: 'VIP' },
        { type: 'list', operator: 'not_in', listId: 'list-1' },
        {
          match: 'any',
          conditions: [
            { type: 'tag', operator: 'not_has', tag: 'Churned' },
            { type: 'event', eventName: 'order_placed', operator: 'gte', count: 1 },
            { type: 'event', eventName: 'signup', operator: 'gte', count: 1 },
          ],
        },
      ],
    });
    expect(deps).toEqual({
      attributes: false,
      tags: new Set(['vip', 'churned']),
      lists: new Set(['list-1']),
      events: new Set(['order_placed', 'signup']),
      engagement: false,
      timeWindows: false,
    });
  });

  it('reports attributes, engagement and time windows', () => {
    expect(segmentDependsOn({ match: 'all', conditions: [{ type: 'attribute', field: 'email', operator: 'exists' }] })).toMatchObject({
      attributes: true,
      engagement: false,
      timeWindows: false,
    });
    expect(segmentDependsOn({ match: 'all', conditions: [{ type: 'engagement', metric: 'sent', operator: 'gte', count: 1 }] })).toMatchObject({
      attributes: false,
      engagement: true,
      timeWindows: false,
    });
    expect(segmentDependsOn({ match: 'all', conditions: [{ type: 'engagement', metric: 'sent', operator: 'gte', count: 1, withinDays: 7 }] }).timeWindows).toBe(true);
    expect(segmentDependsOn({ match: 'all', conditions: [{ match: 'any', conditions: [{ type: 'event', eventName: 'x', operator: 'gte', count: 1, withinDays: 1 }] }] }).timeWindows).toBe(true);
  });
});
