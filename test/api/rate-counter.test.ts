import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RateCounter } from '../../src/api/rate-counter.js';
import { newId } from '../../src/domain/ids.js';
import { createTestDatabase, dialects, type TestDatabase } from '../support/databases.js';

/**
 * The per-token counts two API processes share through `rate_limits`. The clock stands
 * still and the background timer is kept out of the way (an hour between syncs), so
 * every flush happens where the test calls it.
 */
describe.each(dialects)('RateCounter on %s', (dialect) => {
  let database: TestDatabase;
  const windowMs = 60_000;
  const windowStart = Date.UTC(2026, 0, 1, 12, 0, 0);
  const now = () => windowStart + 10_000;

  beforeAll(async () => {
    database = await createTestDatabase(dialect);
  });
  afterAll(async () => database.close());

  it('keeps counting the requests a flush has added to the table', async () => {
    const counter = new RateCounter(database.db, now, 3_600_000);
    try {
      const token = newId();
      const counts: number[] = [];
      for (let i = 0; i < 3; i += 1) counts.push((await counter.count(token, windowStart, windowMs, 100)).current);
      await counter.flush();
      for (let i = 0; i < 2; i += 1) counts.push((await counter.count(token, windowStart, windowMs, 100)).current);
      expect(counts).toEqual([1, 2, 3, 4, 5]);
    } finally {
      await counter.close();
    }
  });

  it('holds a limit shared by two processes exactly, whenever the timer flushes', async () => {
    const limit = 10;
    // Flush after each request position in turn: the limit must hold wherever it falls.
    for (let flushAfter = 0; flushAfter < 12; flushAfter += 1) {
      const a = new RateCounter(database.db, now, 3_600_000);
      const b = new RateCounter(database.db, now, 3_600_000);
      try {
        const token = newId();
        const allowed: boolean[] = [];
        for (let i = 0; i < 12; i += 1) {
          const counter = i % 2 === 0 ? a : b;
          const { current } = await counter.count(token, windowStart, windowMs, limit);
          allowed.push(current <= limit);
          if (i === flushAfter) await Promise.all([a.flush(), b.flush()]);
        }
        expect({ flushAfter, allowed }).toEqual({ flushAfter, allowed: [...Array(10).fill(true), false, false] });
      } finally {
        await a.close();
        await b.close();
      }
    }
  });

  it('adds what is pending to the table on close, so the other process sees it', async () => {
    const a = new RateCounter(database.db, now, 3_600_000);
    const b = new RateCounter(database.db, now, 3_600_000);
    const token = newId();
    try {
      await a.count(token, windowStart, windowMs, 100);
      await a.count(token, windowStart, windowMs, 100);
      await a.count(token, windowStart, windowMs, 100);
      await a.close();
      expect((await b.count(token, windowStart, windowMs, 100)).current).toBe(4);
    } finally {
      await b.close();
    }
  });
});
