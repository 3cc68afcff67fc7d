import { sql } from 'kysely';
import pg from 'pg';
import type { Logger } from 'pino';
import type { Database } from '../store/database.js';
import type { Waker } from './context.js';

/** The worker loops a wake-up can be for. */
export type WakeKind = 'sessions' | 'messages' | 'broadcasts';
const wakeKinds: readonly WakeKind[] = ['sessions', 'messages', 'broadcasts'];

/**
 * Wakes the local scheduler, dispatcher and broadcast loops at once instead of at
 * their next poll. On PostgreSQL a LISTEN connection relays other processes' NOTIFYs
 * here, so an enrollment made by any API process starts at once on any worker.
 */
export class LocalWaker implements Waker {
  private waiters: Record<WakeKind, Array<() => void>> = { sessions: [], messages: [], broadcasts: [] };
  private pending: Record<WakeKind, boolean> = { sessions: false, messages: false, broadcasts: false };

  sessions(): void {
    this.wake('sessions');
  }

  messages(): void {
    this.wake('messages');
  }

  broadcasts(): void {
    this.wake('broadcasts');
  }

  wake(what: WakeKind): void {
    this.pending[what] = true;
    const waiters = this.waiters[what];
    this.waiters[what] = [];
    for (const w of waiters) w();
  }

  /** Sleeps up to `ms`, or until a wake-up for `what` arrives (or arrived since the last sleep). */
  sleep(what: WakeKind, ms: number): Promise<void> {
    if (this.pending[what]) {
      this.pending[what] = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(done, Math.max(0, ms));
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.waiters[what].push(() => {
        this.pending[what] = false;
        done();
      });
    });
  }
}

export class PostgresWakeListener {
  private client: pg.Client | null = null;
  private closed = false;

  constructor(private readonly url: string, private readonly waker: LocalWaker, private readonly log: Logger) {}

  async start(): Promise<void> {
    if (this.closed) return;
    const client = new pg.Client({ connectionString: this.url });
    client.on('notification', (msg) => {
      const kind = wakeKinds.find((k) => k === msg.payload);
      this.waker.wake(kind ?? 'sessions');
    });
    client.on('error', (error) => {
      this.log.warn({ err: error }, 'wake-up listener lost its connection; polling until it is back');
      this.client = null;
      void client.end().catch(() => undefined);
      if (!this.closed) setTimeout(() => void this.start().catch(() => undefined), 1000).unref();
    });
    await client.connect();
    await client.query('listen nudge_wake');
    this.client = client;
  }

  async stop(): Promise<void> {
    this.closed = true;
    await this.client?.end().catch(() => undefined);
    this.client = null;
  }
}

/**
 * What services call after committing work: wakes this process's loops at once and,
 * on PostgreSQL, every other process's through NOTIFY. NOTIFY takes a database-wide
 * lock at commit, so it is sent after the commit, outside the transaction, and at most
 * once per `throttleMs` per kind: a burst of enrollments costs one notification.
 */
export class WakeRelay implements Waker {
  private readonly lastSent: Record<WakeKind, number> = { sessions: 0, messages: 0, broadcasts: 0 };
  private readonly pending: Record<WakeKind, boolean> = { sessions: false, messages: false, broadcasts: false };

  constructor(private readonly local: LocalWaker | null, private readonly database: Database, private readonly log: Logger, private readonly throttleMs = 25) {}

  sessions(): void {
    this.local?.sessions();
    this.relay('sessions');
  }

  messages(): void {
    this.local?.messages();
    this.relay('messages');
  }

  broadcasts(): void {
    this.local?.broadcasts();
    this.relay('broadcasts');
  }

  private relay(what: WakeKind): void {
    if (this.database.dialect !== 'postgres' || this.pending[what]) return;
    const wait = this.lastSent[what] + this.throttleMs - Date.now();
    this.pending[what] = true;
    const send = () => {
      this.pending[what] = false;
      this.lastSent[what] = Date.now();
      sql`select pg_notify('nudge_wake', ${what})`.execute(this.database.db).catch((error: unknown) => {
        // Workers poll as a fallback: a lost wake-up only delays work by a poll interval.
        this.log.debug({ err: error }, 'wake-up notification failed');
      });
    };
    if (wait <= 0) send();
    else setTimeout(send, wait).unref();
  }
}
