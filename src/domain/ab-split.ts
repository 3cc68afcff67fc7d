import { createHash } from 'node:crypto';

/**
 * The rules of an A/B split between a sequence (A) and its variant (B), as pure
 * functions: which side a contact lands on, and whether the difference between the
 * two sides is more than chance.
 *
 * The side is a hash of (A's id, the contact's id), not a random draw: the same
 * contact lands on the same side on every request, on every server, without storing
 * anything first. Hashing A's id in as well keeps two tests from splitting the same
 * contacts the same way.
 *
 * @example
 * abSide('0193…a5b', '0193…a61', 30) // 'A' or 'B'; 'B' for about 30% of contacts
 * twoProportionZTest({ successes: 50, trials: 1000 }, { successes: 80, trials: 1000 })
 * // { z: 2.72…, pValue: 0.0065…, significant: true }
 */

export type AbSide = 'A' | 'B';

export const abLimits = { minPercent: 1, maxPercent: 99 } as const;

/** Resolution of the split: 10,000 buckets, so a percentage maps to exactly 100 of them. */
export const abBuckets = 10_000;

/** The contact's bucket, 0 to 9,999: the first 8 bytes of sha256(`${aId}:${contactId}`), modulo 10,000. */
export function abBucket(sequenceAId: string, contactId: string): number {
  const digest = createHash('sha256').update(`${sequenceAId.toLowerCase()}:${contactId.toLowerCase()}`).digest();
  return Number(digest.readBigUInt64BE(0) % BigInt(abBuckets));
}

/** The side a contact lands on when `splitPercent`% of contacts go to B. */
export function abSide(sequenceAId: string, contactId: string, splitPercent: number): AbSide {
  return abBucket(sequenceAId, contactId) < splitPercent * (abBuckets / 100) ? 'B' : 'A';
}

export function isSplitPercent(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= abLimits.minPercent && value <= abLimits.maxPercent;
}

export interface Proportion {
  successes: number;
  trials: number;
}

export interface SignificanceResult {
  /** (rate B − rate A) / pooled standard error; null when it cannot be computed (no trials on a side, or no variance). */
  z: number | null;
  /** Two-sided p-value of z; null with z. */
  pValue: number | null;
  /** p < alpha. */
  significant: boolean;
}

/**
 * The complementary error function for x >= 0, by the Chebyshev fit of Numerical
 * Recipes (erfcc: fractional error below 1.2e-7 everywhere), enough for p-values
 * reported to 4 places. Computing the tail directly keeps tiny p-values accurate,
 * where 1 − cdf would round to 0.
 */
function erfc(x: number): number {
  const t = 1 / (1 + 0.5 * x);
  return (
    t *
    Math.exp(
      -x * x -
        1.26551223 +
        t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    )
  );
}

/** Standard normal cumulative distribution. */
export function normalCdf(x: number): number {
  const tail = erfc(Math.abs(x) / Math.SQRT2) / 2;
  return x >= 0 ? 1 - tail : tail;
}

/**
 * Two-proportion z-test with a pooled proportion, two-sided. Suited to the counts an
 * A/B test of sequences produces (hundreds or more per side); with a handful of
 * contacts the normal approximation is rough, and the result says so only through a
 * large p-value.
 */
export function twoProportionZTest(a: Proportion, b: Proportion, alpha = 0.05): SignificanceResult {
  if (a.trials <= 0 || b.trials <= 0) return { z: null, pValue: null, significant: false };
  const pooled = (a.successes + b.successes) / (a.trials + b.trials);
  const se = Math.sqrt(pooled * (1 - pooled) * (1 / a.trials + 1 / b.trials));
  if (!Number.isFinite(se) || se === 0) return { z: null, pValue: null, significant: false };
  const z = (b.successes / b.trials - a.successes / a.trials) / se;
  const pValue = Math.min(1, erfc(Math.abs(z) / Math.SQRT2));
  return { z, pValue, significant: pValue < alpha };
}
