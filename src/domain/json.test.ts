import { describe, expect, it } from 'vitest';
import { cloneJson } from './json.js';

describe('cloneJson', () => {
  it('copies a session state deeply: changing the copy leaves the original as it was', () => {
    const original = { visits: { a: 1, b: 2 }, wait: { node: 'b', visit: 2, until: 1000 }, webhook: { order: { status: 200, body: { items: [{ sku: 'x' }] } } }, last_message_id: null };
    const copy = cloneJson(original);
    expect(copy).toEqual(original);
    copy.visits.a = 5;
    copy.wait.until = 2000;
    copy.webhook.order.body.items[0]!.sku = 'y';
    copy.webhook.order.body.items.push({ sku: 'z' });
    expect(original).toEqual({ visits: { a: 1, b: 2 }, wait: { node: 'b', visit: 2, until: 1000 }, webhook: { order: { status: 200, body: { items: [{ sku: 'x' }] } } }, last_message_id: null });
  });

  it('keeps a "__proto__" key parsed from JSON as a key, not as the prototype', () => {
    const parsed = JSON.parse('{"reply":{"__proto__":{"polluted":true},"text":"hi"}}') as { reply: Record<string, unknown> };
    const copy = cloneJson(parsed);
    expect(Object.getPrototypeOf(copy.reply)).toBe(Object.prototype);
    expect((copy.reply as { polluted?: boolean }).polluted).toBeUndefined();
    expect(JSON.stringify(copy)).toBe(JSON.stringify(parsed));
  });

  it('copies values nested deeper than its own recursion, through structuredClone', () => {
    let deep: unknown = 'leaf';
    for (let i = 0; i < 1000; i += 1) deep = [deep];
    const copy = cloneJson({ webhook: { body: deep } }, 8);
    expect(JSON.stringify(copy)).toBe(JSON.stringify({ webhook: { body: deep } }));
    let a: unknown = copy.webhook.body;
    let b: unknown = deep;
    for (let i = 0; i < 20; i += 1) {
      expect(a).not.toBe(b);
      a = (a as unknown[])[0];
      b = (b as unknown[])[0];
    }
  });
});
