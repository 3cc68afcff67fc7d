import { describe, expect, it } from 'vitest';
import { LocalWaker } from './waker.js';

describe('LocalWaker', () => {
  it('ends a sleep early when woken, and at its timeout otherwise', async () => {
    const waker = new LocalWaker();
    const started = Date.now();
    const sleep = waker.sleep('sessions', 5_000);
    waker.sessions();
    await sleep;
    expect(Date.now() - started).toBeLessThan(1_000);
    const timed = Date.now();
    await waker.sleep('sessions', 30);
    expect(Date.now() - timed).toBeGreaterThanOrEqual(25);
  });

  it('keeps nothing of a sleep that timed out', async () => {
    const waker = new LocalWaker();
    for (let i = 0; i < 50; i++) await waker.sleep('broadcasts', 1);
    expect(waker.sleeping('broadcasts')).toBe(0);
    const sleep = waker.sleep('broadcasts', 5_000);
    expect(waker.sleeping('broadcasts')).toBe(1);
    waker.broadcasts();
    await sleep;
    expect(waker.sleeping('broadcasts')).toBe(0);
  });

  it('keeps a wake-up that arrives between sleeps for the next sleep, even after sleeps that timed out', async () => {
    const waker = new LocalWaker();
    await waker.sleep('messages', 1);
    await waker.sleep('messages', 1);
    // The loop is busy: the wake-up must not be lost.
    waker.messages();
    const started = Date.now();
    await waker.sleep('messages', 5_000);
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});
