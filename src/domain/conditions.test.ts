import { describe, expect, it } from 'vitest';
import { evaluateCondition, type ConditionInput } from './conditions.js';
import type { ConditionGroup, ConditionRule } from './definition.js';

const input: ConditionInput = {
  scope: {
    contact: { first_name: 'Ana', email: 'ana@example.com', metadata: { plan: 'Pro', seats: '12', signed_up: '2025-03-01T10:00:00Z', langs: ['en', 'PT'] } },
    context: { order_id: 'ORD-1042', total: 99.5, empty: '', nothing: null, vip: true },
    event: { city: 'Tel Aviv', alert: { maxSpeed: 75 } },
    webhook: { lookup: { ok: true, status: 200, body: { tier: 'gold' } } },
    reply: { text: 'Yes please', button_id: null },
  },
  tags: new Set(['customer', 'vip']),
  lastMessageStatus: 'delivered',
};

function rule(r: ConditionRule, i: ConditionInput = input) {
  return evaluateCondition({ rules: [r] }, i);
}

describe('evaluateCondition', () => {
  it('eq compares text case-insensitively and explains itself', () => {
    expect(rule({ field: 'contact.metadata.plan', op: 'eq', value: 'pro' })).toEqual({ result: true, explanation: 'contact.metadata.plan eq "pro" → true' });
    expect(rule({ field: 'contact.metadata.plan', op: 'eq', value: 'free' })).toEqual({ result: false, explanation: 'contact.metadata.plan eq "free" → false (was "Pro")' });
  });

  it('eq compares numbers numerically when both sides are numeric', () => {
    expect(rule({ field: 'contact.metadata.seats', op: 'eq', value: 12 }).result).toBe(true);
    expect(rule({ field: 'context.total', op: 'eq', value: '99.50' }).result).toBe(true);
    expect(rule({ field: 'context.vip', op: 'eq', value: true }).result).toBe(true);
  });

  it('eq null matches a missing, null or empty value', () => {
    expect(rule({ field: 'context.nothing', op: 'eq', value: null }).result).toBe(true);
    expect(rule({ field: 'context.absent', op: 'eq', value: null }).result).toBe(true);
    expect(rule({ field: 'context.order_id', op: 'eq', value: null }).result).toBe(false);
  });

  it('neq is the opposite of eq, and a missing value is not equal to anything', () => {
    expect(rule({ field: 'contact.metadata.plan', op: 'neq', value: 'PRO' }).result).toBe(false);
    expect(rule({ field: 'context.absent', op: 'neq', value: 'x' }).result).toBe(true);
  });

  it('contains and not_contains search text case-insensitively and arrays by item', () => {
    expect(rule({ field: 'contact.email', op: 'contains', value: 'EXAMPLE.com' }).result).toBe(true);
    expect(rule({ field: 'contact.metadata.langs', op: 'contains', value: 'pt' }).result).toBe(true);
    expect(rule({ field: 'contact.metadata.langs', op: 'contains', value: 'e' }).result).toBe(false);
    expect(rule({ field: 'contact.email', op: 'not_contains', value: 'gmail' }).result).toBe(true);
    expect(rule({ field: 'context.absent', op: 'contains', value: 'x' }).result).toBe(false);
    expect(rule({ field: 'context.absent', op: 'not_contains', value: 'x' }).result).toBe(true);
  });

  it('starts_with compares the start of the text case-insensitively', () => {
    expect(rule({ field: 'context.order_id', op: 'starts_with', value: 'ord-' }).result).toBe(true);
    expect(rule({ field: 'context.order_id', op: 'starts_with', value: '1042' }).result).toBe(false);
  });

  it('exists and not_exists treat missing, null and "" as absent', () => {
    expect(rule({ field: 'event.alert.maxSpeed', op: 'exists' })).toEqual({ result: true, explanation: 'event.alert.maxSpeed exists → true' });
    for (const field of ['context.empty', 'context.nothing', 'context.absent']) {
      expect(rule({ field, op: 'exists' }).result).toBe(false);
      expect(rule({ field, op: 'not_exists' }).result).toBe(true);
    }
  });

  it('gt, gte, lt and lte compare numbers, numeric strings and ISO dates', () => {
    expect(rule({ field: 'event.alert.maxSpeed', op: 'gt', value: 70 }).result).toBe(true);
    expect(rule({ field: 'event.alert.maxSpeed', op: 'gt', value: 75 }).result).toBe(false);
    expect(rule({ field: 'event.alert.maxSpeed', op: 'gte', value: '75' }).result).toBe(true);
    expect(rule({ field: 'contact.metadata.seats', op: 'lt', value: 100 }).result).toBe(true);
    expect(rule({ field: 'contact.metadata.seats', op: 'lte', value: 11 }).result).toBe(false);
    expect(rule({ field: 'contact.metadata.signed_up', op: 'lt', value: '2025-04-01' }).result).toBe(true);
  });

  it('gt is false, and says why, when the sides cannot be compared', () => {
    expect(rule({ field: 'contact.first_name', op: 'gt', value: 3 })).toEqual({ result: false, explanation: 'contact.first_name gt 3 → false (was "Ana"; not comparable)' });
    expect(rule({ field: 'context.absent', op: 'gt', value: 3 }).result).toBe(false);
  });

  it('in looks the value up in a list, case-insensitively', () => {
    expect(rule({ field: 'contact.metadata.plan', op: 'in', value: ['free', 'pro'] }).result).toBe(true);
    expect(rule({ field: 'contact.metadata.seats', op: 'in', value: [10, 12] }).result).toBe(true);
    expect(rule({ field: 'contact.metadata.plan', op: 'in', value: ['free'] }).result).toBe(false);
    expect(rule({ field: 'contact.metadata.langs', op: 'in', value: ['de', 'pt'] }).result).toBe(true);
  });

  it('matches tests a regular expression, case-insensitive unless flags say otherwise', () => {
    expect(rule({ field: 'reply.text', op: 'matches', value: '^yes\\b' }).result).toBe(true);
    expect(rule({ field: 'reply.text', op: 'matches', value: { pattern: '^yes', flags: '' } }).result).toBe(false);
    expect(rule({ field: 'reply.text', op: 'matches', value: '([' })).toEqual({ result: false, explanation: 'reply.text matches "([" → false (was "Yes please"; invalid pattern)' });
  });

  it('has_tag and not_has_tag read the lowercased tags', () => {
    expect(rule({ op: 'has_tag', value: 'VIP' })).toEqual({ result: true, explanation: 'has_tag "vip" → true' });
    expect(rule({ op: 'has_tag', value: 'churned' }).result).toBe(false);
    expect(rule({ op: 'not_has_tag', value: 'churned' }).result).toBe(true);
  });

  it('reads last_message.status from the input and webhook results from the scope', () => {
    expect(rule({ field: 'last_message.status', op: 'eq', value: 'delivered' }).result).toBe(true);
    expect(rule({ field: 'last_message.status', op: 'eq', value: 'read' }, { ...input, lastMessageStatus: null }).result).toBe(false);
    expect(rule({ field: 'webhook.lookup.body.tier', op: 'eq', value: 'GOLD' }).result).toBe(true);
    expect(rule({ field: 'webhook.lookup.status', op: 'lt', value: 300 }).result).toBe(true);
  });

  it('all needs every rule and explains the one that failed', () => {
    const group: ConditionGroup = {
      match: 'all',
      rules: [
        { field: 'contact.metadata.plan', op: 'eq', value: 'pro' },
        { op: 'has_tag', value: 'churned' },
      ],
    };
    expect(evaluateCondition(group, input)).toEqual({ result: false, explanation: 'has_tag "churned" → false' });
    group.rules[1] = { op: 'has_tag', value: 'vip' };
    expect(evaluateCondition(group, input)).toEqual({ result: true, explanation: 'contact.metadata.plan eq "pro" → true and has_tag "vip" → true' });
  });

  it('any needs one rule and nested groups combine', () => {
    const group: ConditionGroup = {
      match: 'any',
      rules: [
        { field: 'event.city', op: 'eq', value: 'Haifa' },
        {
          match: 'all',
          rules: [
            { field: 'event.city', op: 'eq', value: 'tel aviv' },
            { field: 'event.alert.maxSpeed', op: 'gte', value: 60 },
          ],
        },
      ],
    };
    expect(evaluateCondition(group, input)).toEqual({ result: true, explanation: '(event.city eq "tel aviv" → true and event.alert.maxSpeed gte 60 → true)' });
    const none: ConditionGroup = { match: 'any', rules: [{ field: 'event.city', op: 'eq', value: 'Haifa' }, { op: 'has_tag', value: 'nope' }] };
    expect(evaluateCondition(none, input)).toEqual({ result: false, explanation: 'event.city eq "Haifa" → false (was "Tel Aviv") or has_tag "nope" → false' });
  });
});
