import { createHash } from 'node:crypto';

/**
 * The A/B split's branch for a key (e.g. `${definitionId}:${nodeId}:${contactId}`): the
 * first four bytes of SHA-1 of the key pick a bucket 0–9999, and the branches own
 * consecutive ranges of buckets in proportion to their percents. The same key always
 * lands on the same branch; SHA-1 spreads even near-identical keys evenly, which simple
 * multiplicative hashes (FNV-32 and friends) do not in their low digits.
 *
 * @example
 * chooseSplitBranch([{ id: 'a', percent: 50 }, { id: 'b', percent: 50 }], 'def:split:contact-1') // 'a' or 'b', always the same
 */
export function chooseSplitBranch(branches: ReadonlyArray<{ id: string; percent: number }>, key: string): string {
  if (branches.length === 0) throw new Error('chooseSplitBranch: a split needs at least one branch');
  const bucket = splitBucket(key);
  // Validated splits sum to 100; scaling keeps a hand-built split with another total proportional.
  const total = branches.reduce((sum, b) => sum + (Number.isFinite(b.percent) && b.percent > 0 ? b.percent : 0), 0);
  if (total <= 0) return branches[0]!.id;
  let upper = 0;
  for (const branch of branches) {
    const share = Number.isFinite(branch.percent) && branch.percent > 0 ? branch.percent : 0;
    upper += (share / total) * 10_000;
    if (share > 0 && bucket < upper) return branch.id;
  }
  // Floating-point rounding can leave the top bucket just outside: it belongs to the last branch with a share.
  for (let i = branches.length - 1; i >= 0; i--) if (branches[i]!.percent > 0) return branches[i]!.id;
  return branches[0]!.id;
}

/** A stable bucket 0–9999 for a key. */
export function splitBucket(key: string): number {
  // 2^32 mod 10,000 = 7,296: the modulo bias is under 3 in a million per bucket.
  return createHash('sha1').update(key).digest().readUInt32BE(0) % 10_000;
}
