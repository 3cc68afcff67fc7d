import { describe, expect, it } from 'vitest';
import { isUuid, newId } from './ids.js';

const v7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** The 48-bit millisecond time at the front of a UUIDv7. */
const timeOf = (id: string) => parseInt(id.slice(0, 8) + id.slice(9, 13), 16);

describe('newId', () => {
  it('makes UUIDv7 text: version 7, the RFC variant, lower-case hex', () => {
    for (let i = 0; i < 2000; i += 1) {
      const id = newId();
      expect(id).toMatch(v7);
      expect(isUuid(id)).toBe(true);
    }
  });

  it('carries the time it is given, to the millisecond', () => {
    const at = Date.UTC(2031, 4, 6, 7, 8, 9, 123);
    expect(timeOf(newId(at))).toBe(at);
    expect(timeOf(newId(at + 1000))).toBe(at + 1000);
  });

  it('sorts in the order it was made, within a millisecond and across them, and never repeats', () => {
    const base = Date.UTC(2032, 0, 1);
    const ids: string[] = [];
    // 5,000 ids in the same millisecond run the 12-bit counter past its end (it then moves to the next millisecond).
    for (let i = 0; i < 5000; i += 1) ids.push(newId(base));
    for (let i = 0; i < 100; i += 1) ids.push(newId(base + 10 + i));
    // A clock that goes back gives ids that still sort after the earlier ones.
    ids.push(newId(base - 5000));
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('spends its random bits: the low 62 bits differ between ids', () => {
    const tails = new Set<string>();
    for (let i = 0; i < 10_000; i += 1) tails.add(newId().slice(19));
    expect(tails.size).toBe(10_000);
    const variantDigits = new Set([...tails].map((t) => t[0]));
    expect([...variantDigits].sort()).toEqual(['8', '9', 'a', 'b']);
  });
});
