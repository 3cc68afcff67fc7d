import type { Db } from '../store/database.js';
import * as guards from '../store/request-guard-repository.js';

interface TokenWindow {
  windowStart: number;
  windowMs: number;
  /** This process's requests not yet added to the database. */
  pending: number;
  /** Requests on their way to the database (a sync in flight). */
  syncing: number;
  /** The shared counts as the database last answered them (every process's requests). */
  current: number;
  previous: number;
  syncedAt: number;
}

/**
 * Per-token request counts, shared by every API process through the `rate_limits`
 * table, without a database write per request.
 *
 * Each process counts its requests in memory and adds them to the table at least every
 * `syncMs` (and when the window turns); what it knows of the other processes' requests
 * is as old as its last sync. Once a token is within half of its limit, every request
 * syncs, so the limit holds as exactly as with a write per request where it matters;
 * far from the limit the estimate may lag by up to `syncMs` of the other processes'
 * traffic. A crash forgets at most `syncMs` of one process's count. One process (the
 * SQLite default) is always exact: it sees all of its own requests.
 */
export class RateCounter {
  private readonly tokens = new Map<string, TokenWindow>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly db: Db,
    private readonly now: () => number,
    private readonly syncMs = 1000,
  ) {
    this.timer = setInterval(() => void this.flush(), syncMs);
    this.timer.unref();
  }

  /** Counts one request; returns the counts of the current and previous windows, this request included. */
  async count(tokenId: string, windowStart: number, windowMs: number, limit: number): Promise<{ current: number; previous: number }> {
    let entry = this.tokens.get(tokenId);
    if (!entry || entry.windowStart !== windowStart) {
      if (entry && entry.pending > 0) await this.push(tokenId, entry);
      entry = { windowStart, windowMs, pending: 0, syncing: 0, current: 0, previous: 0, syncedAt: Number.NEGATIVE_INFINITY };
      this.tokens.set(tokenId, entry);
    }
    entry.pending += 1;
    const stale = this.now() - entry.syncedAt >= this.syncMs;
    if (stale || entry.current + entry.syncing + entry.pending >= limit / 2) await this.sync(tokenId, entry);
    return { current: entry.current + entry.syncing + entry.pending, previous: entry.previous };
  }

  /**
   * Adds this process's pending requests to the table and takes the shared counts back.
   * The requests stay counted throughout: as `syncing` while the write is in flight, then
   * in `current`, which the table's answer includes them in.
   */
  private async sync(tokenId: string, entry: TokenWindow): Promise<void> {
    const requests = entry.pending;
    entry.pending = 0;
    entry.syncing += requests;
    try {
      const counts = await guards.countRequest(this.db, tokenId, entry.windowStart, entry.windowStart - entry.windowMs, requests);
      entry.current = Math.max(entry.current, counts.current);
      entry.previous = counts.previous;
      entry.syncedAt = this.now();
    } catch (error) {
      entry.pending += requests;
      throw error;
    } finally {
      entry.syncing -= requests;
    }
  }

  /** Adds the requests of a window that has turned to the table; nothing counts on them here any more. */
  private async push(tokenId: string, entry: TokenWindow): Promise<void> {
    const requests = entry.pending;
    entry.pending = 0;
    await guards.countRequest(this.db, tokenId, entry.windowStart, entry.windowStart, requests).catch(() => undefined);
  }

  /**
   * Adds what is pending to the table: from the timer, and on close. A sync, not a bare
   * write: the requests it adds must stay in this process's count (a flush that only
   * wrote them let the count drop by that much until the next sync, so a limit shared
   * between processes could be passed).
   */
  async flush(): Promise<void> {
    for (const [tokenId, entry] of this.tokens) {
      if (entry.pending > 0) await this.sync(tokenId, entry).catch(() => undefined);
      else if (this.now() - entry.syncedAt > 10 * this.syncMs) this.tokens.delete(tokenId);
    }
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }
}
