import { describe, expect, it } from 'vitest';
import { webhookBackoff, webhookRetryWindowMs } from './backoff.js';
import { outcomeOf, parseRetryAfter } from './webhook-delivery.js';

const failed = { ok: false, statusCode: 500, error: 'HTTP 500', retryAfterMs: null, durationMs: 3 };

describe('webhook retry schedule', () => {
  it('doubles from 10 s to an hour, jittered in the upper half, never sooner than Retry-After', () => {
    expect([1, 2, 3, 10, 40].map((n) => webhookBackoff(n, null, () => 1))).toEqual([10_000, 20_000, 40_000, 3_600_000, 3_600_000]);
    expect(webhookBackoff(1, null, () => 0)).toBe(5000);
    expect(webhookBackoff(1, 120_000, () => 1)).toBe(120_000);
    expect(webhookBackoff(1, 30 * 86_400_000, () => 1)).toBe(86_400_000);
  });

  it('retries within the 3-day window, makes the last try on its end, and fails after it', () => {
    const created = 1_000_000;
    expect(outcomeOf({ attempts: 1, created_at: created }, failed, created)).toMatchObject({ status: 'pending', last_status_code: 500 });
    const nearEnd = created + webhookRetryWindowMs - 60_000;
    expect(outcomeOf({ attempts: 40, created_at: created }, failed, nearEnd).next_attempt_at).toBe(created + webhookRetryWindowMs);
    expect(outcomeOf({ attempts: 41, created_at: created }, failed, created + webhookRetryWindowMs)).toMatchObject({ status: 'failed', next_attempt_at: null });
    expect(outcomeOf({ attempts: 2, created_at: created }, { ...failed, ok: true, statusCode: 204, error: null }, created + 5)).toEqual({
      status: 'delivered', next_attempt_at: null, last_status_code: 204, last_error: null, delivered_at: created + 5,
    });
  });

  it('reads Retry-After as seconds or an HTTP date', () => {
    expect(parseRetryAfter('120', 0)).toBe(120_000);
    expect(parseRetryAfter(new Date(60_000).toUTCString(), 0)).toBe(60_000);
    expect(parseRetryAfter('soon', 0)).toBeNull();
    expect(parseRetryAfter(null, 0)).toBeNull();
  });
});
