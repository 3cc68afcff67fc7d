import { describe, expect, it } from 'vitest';
import { chooseSplitBranch, splitBucket } from './split.js';

function distribution(branches: Array<{ id: string; percent: number }>, keys: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i < keys; i++) {
    const branch = chooseSplitBranch(branches, `def-7f3a:split-1:contact-${i}`);
    counts.set(branch, (counts.get(branch) ?? 0) + 1);
  }
  return counts;
}

describe('chooseSplitBranch', () => {
  it('lands 10,000 keys within 1 percentage point of a 50/50 split', () => {
    const counts = distribution([{ id: 'a', percent: 50 }, { id: 'b', percent: 50 }], 10_000);
    expect(Math.abs((counts.get('a') ?? 0) / 100 - 50)).toBeLessThanOrEqual(1);
    expect(Math.abs((counts.get('b') ?? 0) / 100 - 50)).toBeLessThanOrEqual(1);
  });

  it('lands 10,000 keys within 1 percentage point of a 10/90 split', () => {
    const counts = distribution([{ id: 'small', percent: 10 }, { id: 'large', percent: 90 }], 10_000);
    expect(Math.abs((counts.get('small') ?? 0) / 100 - 10)).toBeLessThanOrEqual(1);
    expect(Math.abs((counts.get('large') ?? 0) / 100 - 90)).toBeLessThanOrEqual(1);
  });

  it('sends the same key to the same branch every time', () => {
    const branches = [{ id: 'a', percent: 34 }, { id: 'b', percent: 33 }, { id: 'c', percent: 33 }];
    for (let i = 0; i < 200; i++) {
      const key = `def:split:contact-${i}`;
      const first = chooseSplitBranch(branches, key);
      for (let j = 0; j < 3; j++) expect(chooseSplitBranch(branches, key)).toBe(first);
    }
  });

  it('never picks a 0 % branch and always picks a 100 % one', () => {
    for (let i = 0; i < 1000; i++) {
      expect(chooseSplitBranch([{ id: 'never', percent: 0 }, { id: 'always', percent: 100 }], `k${i}`)).toBe('always');
    }
  });

  it('keeps buckets from 0 to 9999', () => {
    for (let i = 0; i < 1000; i++) {
      const bucket = splitBucket(`key-${i}`);
      expect(bucket).toBeGreaterThanOrEqual(0);
      expect(bucket).toBeLessThan(10_000);
      expect(Number.isInteger(bucket)).toBe(true);
    }
  });

  it('refuses a split with no branches', () => {
    expect(() => chooseSplitBranch([], 'k')).toThrow(/at least one branch/);
  });
});
