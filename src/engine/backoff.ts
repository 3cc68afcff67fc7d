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
