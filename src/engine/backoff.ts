/** Retryable send failures are tried this many times in all before the message fails. */
export const maxAttempts = 10;

/**
 * Exponential backoff with full jitter in the upper half (1 s, 2 s, 4 s … capped at
 * one hour), never sooner than the provider's Retry-After. Computed in one place.
 */
export function computeBackoff(attempt: number, retryAfterMs?: number, random: () => number = Math.random): number {
  const base = Math.min(3_600_000, 1000 * 2 ** Math.max(0, attempt - 1));
  const jittered = base / 2 + random() * (base / 2);
  return Math.max(Math.round(jittered), retryAfterMs ?? 0);
}

/** A webhook delivery is retried for this long after its event, then fails. */
export const webhookRetryWindowMs = 3 * 86_400_000;

/** A subscription whose deliveries have failed for this long without one success is disabled. */
export const webhookDisableAfterMs = 86_400_000;

/**
 * When to try a failed webhook delivery again: 10 s, 20 s, 40 s … doubling up to one
 * hour, with jitter in the upper half so a receiver coming back is not hit by every
 * delivery at once; never sooner than the receiver's Retry-After (itself capped at a
 * day, so a bogus header cannot park a delivery past its window).
 */
export function webhookBackoff(attempt: number, retryAfterMs?: number | null, random: () => number = Math.random): number {
  const base = Math.min(3_600_000, 10_000 * 2 ** Math.max(0, Math.min(30, attempt - 1)));
  const jittered = base / 2 + random() * (base / 2);
  return Math.max(Math.round(jittered), Math.min(retryAfterMs ?? 0, 86_400_000));
}
