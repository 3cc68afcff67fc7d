import { describe, expect, it } from 'vitest';
import { retryAfterSeconds, slidingWindowCount } from './request-guards.js';

const windowMs = 60_000;

/** Whether one more request at `at` is within the limit, given the counts seen at `now`. */
function allowedAt(at: number, seen: { windowStart: number; current: number; previous: number }, limit: number): boolean {
  const windowStart = Math.floor(at / windowMs) * windowMs;
  // Counts move to "previous" when a new window starts; this request is counted as well.
  const counts =
    windowStart === seen.windowStart
      ? { current: seen.current + 1, previous: seen.previous }
      : windowStart === seen.windowStart + windowMs
        ? { current: 1, previous: seen.current }
        : { current: 1, previous: 0 };
  return slidingWindowCount({ now: at, windowStart, windowMs, ...counts }) <= limit;
}

describe('retryAfterSeconds', () => {
  it('names the first whole second at which the next request is allowed', () => {
    let checked = 0;
    for (const limit of [1, 3, 120]) {
      for (let current = 1; current <= limit + 5; current += 1) {
        for (const previous of [0, 1, limit, limit * 2]) {
          for (const offset of [0, 1_000, 29_999, 59_000]) {
            const windowStart = 1_800_000_000_000 - (1_800_000_000_000 % windowMs);
            const now = windowStart + offset;
            if (slidingWindowCount({ now, windowStart, windowMs, current, previous }) <= limit) continue; // not limited
            const seconds = retryAfterSeconds({ now, windowStart, windowMs, current, previous, limit });
            const seen = { windowStart, current, previous };
            expect(seconds).toBeGreaterThanOrEqual(1);
            expect(allowedAt(now + seconds * 1000, seen, limit), `limit ${limit}, ${current}+${previous} at +${offset}`).toBe(true);
            if (seconds > 1) expect(allowedAt(now + (seconds - 2) * 1000, seen, limit)).toBe(false);
            checked += 1;
          }
        }
      }
    }
    expect(checked).toBeGreaterThan(100);
  });

  it('waits past the end of the window while the previous one still counts', () => {
    // 4 requests against a limit of 3, 10 s into the window: the window ends in 50 s,
    // but then these 4 still count for most of the next minute.
    const windowStart = 0;
    expect(retryAfterSeconds({ now: 10_000, windowStart, windowMs, current: 4, previous: 0, limit: 3 })).toBe(66);
  });
});
