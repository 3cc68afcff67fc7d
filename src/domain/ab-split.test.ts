import { describe, expect, it } from 'vitest';
import { newId } from './ids.js';
import { abBucket, abSide, isSplitPercent, normalCdf, twoProportionZTest } from './ab-split.js';

const sequenceA = '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b';

describe('A/B side of a contact', () => {
  // 100,000 random ids: one point is then six standard deviations at 50%, where with
  // 10,000 it is two and the check fails one run in twenty. The 10,000-contact figure
  // is checked on fixed ids in test/api/ab-tests.test.ts.
  it('puts each split percentage of 100,000 random contacts on B within one percentage point', () => {
    const contacts = Array.from({ length: 100_000 }, () => newId());
    for (const percent of [1, 10, 30, 50, 75, 99]) {
      const onB = contacts.filter((id) => abSide(sequenceA, id, percent) === 'B').length;
      expect(Math.abs(onB / contacts.length - percent / 100), `${percent}%`).toBeLessThanOrEqual(0.01);
    }
  });

  it('gives a contact the same side every time, whatever the case of the ids', () => {
    const contact = newId();
    const side = abSide(sequenceA, contact, 40);
    for (let i = 0; i < 5; i += 1) expect(abSide(sequenceA, contact, 40)).toBe(side);
    expect(abSide(sequenceA.toUpperCase(), contact.toUpperCase(), 40)).toBe(side);
  });

  it('moves contacts only from A to B when the percentage grows', () => {
    const contacts = Array.from({ length: 2000 }, () => newId());
    for (const id of contacts) if (abSide(sequenceA, id, 20) === 'B') expect(abSide(sequenceA, id, 21)).toBe('B');
  });

  it('splits the same contacts differently for two tests', () => {
    const other = '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c';
    const contacts = Array.from({ length: 2000 }, () => newId());
    const differ = contacts.filter((id) => abSide(sequenceA, id, 50) !== abSide(other, id, 50)).length;
    // Independent halves disagree for about half of the contacts.
    expect(differ / contacts.length).toBeGreaterThan(0.4);
    expect(differ / contacts.length).toBeLessThan(0.6);
  });

  it('keeps buckets within 0 to 9,999', () => {
    for (let i = 0; i < 1000; i += 1) {
      const bucket = abBucket(sequenceA, newId());
      expect(Number.isInteger(bucket) && bucket >= 0 && bucket < 10_000).toBe(true);
    }
  });

  it('accepts whole percentages from 1 to 99 only', () => {
    for (const ok of [1, 50, 99]) expect(isSplitPercent(ok)).toBe(true);
    for (const bad of [0, 100, 50.5, -1, '50', null, Number.NaN]) expect(isSplitPercent(bad)).toBe(false);
  });
});

describe('two-proportion z-test', () => {
  // Reference values computed independently (Python's math.erfc, pooled standard error).
  it('matches known results', () => {
    const cases = [
      { a: [50, 1000], b: [80, 1000], z: 2.721095431170472, p: 0.006506597483637838, significant: true },
      { a: [120, 1000], b: [100, 1000], z: -1.4293008498232314, p: 0.1529177818639462, significant: false },
      { a: [30, 500], b: [90, 600], z: 4.767556170275784, p: 1.8647401532804528e-6, significant: true },
      { a: [10, 10000], b: [40, 10000], z: 4.247953952428732, p: 2.157317208118732e-5, significant: true },
    ] as const;
    for (const c of cases) {
      const result = twoProportionZTest({ successes: c.a[0], trials: c.a[1] }, { successes: c.b[0], trials: c.b[1] });
      expect(result.z).toBeCloseTo(c.z, 9);
      // The erfc fit is accurate to 1.2e-7 of the value.
      expect(Math.abs(result.pValue! - c.p) / c.p).toBeLessThan(2e-7);
      expect(result.significant).toBe(c.significant);
    }
  });

  it('reports no difference for equal rates and nothing computable without trials or variance', () => {
    expect(twoProportionZTest({ successes: 200, trials: 1000 }, { successes: 200, trials: 1000 })).toEqual({ z: 0, pValue: 1, significant: false });
    expect(twoProportionZTest({ successes: 0, trials: 0 }, { successes: 5, trials: 10 })).toEqual({ z: null, pValue: null, significant: false });
    expect(twoProportionZTest({ successes: 0, trials: 100 }, { successes: 0, trials: 100 })).toEqual({ z: null, pValue: null, significant: false });
    expect(twoProportionZTest({ successes: 100, trials: 100 }, { successes: 100, trials: 100 })).toEqual({ z: null, pValue: null, significant: false });
  });

  it('honours a stricter alpha', () => {
    const a = { successes: 50, trials: 1000 };
    const b = { successes: 80, trials: 1000 };
    expect(twoProportionZTest(a, b, 0.05).significant).toBe(true);
    expect(twoProportionZTest(a, b, 0.001).significant).toBe(false);
  });

  it('computes the normal distribution function', () => {
    expect(normalCdf(0)).toBeCloseTo(0.5, 7);
    expect(normalCdf(1.959963984540054)).toBeCloseTo(0.975, 6);
    expect(normalCdf(-1.959963984540054)).toBeCloseTo(0.025, 6);
    expect(normalCdf(-8)).toBeGreaterThan(0);
  });
});
