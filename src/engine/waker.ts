import { sql } from 'kysely';
import pg from 'pg';
import type { Logger } from 'pino';
import type { Database } from '../store/database.js';
import type { Waker } from './context.js';
import type { LookupCache } from './lookup-cache.js';

/** The worker loops a wake-up can be for. */
export type WakeKind = 'sessions' | 'messages' | 'webhooks' | 'broadcasts';
const wakeKinds: readonly WakeKind[] = ['sessions', 'messages', 'webhooks', 'broadcasts'];

/**
 * Wakes the local scheduler, dispatcher, webhook delivery and broadcast loops at once
 * instead of at their next poll. On PostgreSQL a LISTEN connection relays other
 * processes' NOTIFYs here, so an enrollment made by any API process starts at once on
 * any worker.
 */
export class LocalWaker implements Waker {
  private readonly waiters: Record<WakeKind, Array<() => void>> = { sessions: [], messages: [], webhooks: [], broadcasts: [] };
  private readonly pending: Record<WakeKind, boolean> = { sessions: false, messages: false, webhooks: false, broadcasts: false };

  sessions(): void {
    this.wake('sessions');
  }

  messages(): void {
    this.wake('messages');
  }

  webhooks(): void {
    this.wake('webhooks');
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
      const waiter = () => {
        clearTimeout(timer);
        this.pending[what] = false;
        resolve();
      };
      // A sleep that times out takes its waiter back: left in the list, every poll of a
      // loop that is never woken (broadcasts, webhooks) kept one more closure and timer
      // alive for good, and a later wake-up ran them all, clearing the pending flag of a
      // wake-up meant for the loop's next sleep.
      const timer = setTimeout(() => {
        const list = this.waiters[what];
        const index = list.indexOf(waiter);
        if (index >= 0) list.splice(index, 1);
        resolve();
      }, Math.max(0, ms));
      this.waiters[what].push(waiter);
    });
  }

  /** Sleeps in progress for `what` (for tests and diagnostics). */
  sleeping(what: WakeKind): number {
    return this.waiters[what].length;
  }
}

/**
 * The process's LISTEN connection on PostgreSQL: other processes' wake-ups
 * (`nudge_wake`), and the changes to API tokens and definitions the database reports
 * (`nudge_lookups`, see lookup-cache.ts). While it is not connected the loops poll and
 * the lookups are read from the database on every request.
 */
export class PostgresWakeListener {
  private client: pg.Client | null = null;
  private closed = false;

  constructor(
    private readonly url: string,
    private readonly waker: LocalWaker,
    private readonly log: Logger,
    private readonly lookups: Pick<LookupCache<unknown, unknown>, 'changed' | 'listen' | 'deafen'> | null = null,
    /** How long to wait before connecting again after the connection was lost or refused. */
    private readonly reconnectDelayMs = 1000,
  ) {}

  async start(): Promise<void> {
    if (this.closed) return;
    const client = new pg.Client({ connectionString: this.url });
    client.on('notification', (msg) => {
      if (msg.channel === 'nudge_lookups') {
        this.lookups?.changed();
        return;
      }
      const kind = wakeKinds.find((k) => k === msg.payload);
      this.waker.wake(kind ?? 'sessions');
    });
    let lost = false;
    const lose = (error: Error | null) => {
      if (lost) return;
      lost = true;
      this.lookups?.deafen();
      const established = this.client === client;
      if (established) this.client = null;
      void client.end().catch(() => undefined);
      // A connection that never got to listen fails start(), whose caller retries.
      if (this.closed || !established) return;
      this.log.warn({ err: error ?? undefined }, 'wake-up listener lost its connection; polling until it is back');
      this.retry();
    };
    client.on('error', (error) => lose(error));
    client.on('end', () => lose(null));
    try {
      await client.connect();
      await client.query('listen nudge_wake');
      await client.query('listen nudge_lookups');
      if (lost) throw new Error('the wake-up listener lost its connection while starting');
    } catch (error) {
      lost = true;
      await client.end().catch(() => undefined);
      throw error;
    }
    this.client = client;
    this.lookups?.listen();
  }

  /** Connects again after `reconnectDelayMs`, and again after every failure, until stopped. */
  private retry(): void {
    setTimeout(() => {
      if (this.closed) return;
      this.start().catch(() => this.retry());
    }, this.reconnectDelayMs).unref();
  }

  async stop(): Promise<void> {
    this.closed = true;
    this.lookups?.deafen();
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
  private readonly lastSent: Record<WakeKind, number> = { sessions: 0, messages: 0, webhooks: 0, broadcasts: 0 };
  private readonly pending: Record<WakeKind, boolean> = { sessions: false, messages: false, webhooks: false, broadcasts: false };
  private webhookTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly local: LocalWaker | null,
    private readonly database: Database,
    private readonly log: Logger,
    private readonly throttleMs = 25,
    private readonly webhookDelayMs = 20,
  ) {}

  sessions(): void {
    this.local?.sessions();
    this.relay('sessions');
  }

  messages(): void {
    this.local?.messages();
    this.relay('messages');
  }

  /**
   * Webhook deliveries are queued inside the caller's transaction (emitWebhookEvent),
   * before it commits, so a loop woken at once would find nothing yet on PostgreSQL and
   * sleep a whole poll interval. The wake-up waits `webhookDelayMs` for the commit; one
   * timer covers a burst.
   */
  webhooks(): void {
    if (this.webhookTimer !== null) return;
    this.webhookTimer = setTimeout(() => {
      this.webhookTimer = null;
      this.local?.webhooks();
      this.relay('webhooks');
    }, this.webhookDelayMs);
    this.webhookTimer.unref();
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
