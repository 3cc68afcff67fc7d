import { sql, type Kysely, type Transaction } from 'kysely';
import type { Schema } from './schema.js';
import { forgetAutomationVersions } from './automation-versions-read.js';

type Db = Kysely<Schema>;
type Tx = Transaction<Schema>;

type Work = (trx: Tx) => Promise<unknown>;

interface Pending {
  work: Work;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/** At most this many units share one commit, so one batch never holds the write lock for long. */
const maxUnits = 128;

/**
 * Group commit for SQLite. Each commit writes the pages the transaction dirtied to the
 * WAL: for one small enrollment, a dozen index and table pages, most of them the same
 * pages the next enrollment dirties again. Under concurrent API requests those commits
 * were the costliest step of trigger-sequence. Here concurrent units of work run one
 * after the other inside one transaction, each under its own savepoint, and commit
 * together:
 *
 * - a unit that throws is rolled back to its savepoint and rejected at once; the others
 *   are unaffected;
 * - a unit's promise resolves only after the shared COMMIT, so a caller never answers
 *   for a write that is not durable; if the COMMIT fails, every unit of the batch fails;
 * - a batch starts one event-loop turn after its first unit and takes every unit queued
 *   by then (and those queued while it runs form the next), so nobody waits for a batch
 *   to fill: under no concurrency a unit commits alone, one turn later.
 *
 * Only for units that touch nothing but the database: a network call inside one would
 * hold every unit queued behind it. SQLite only: on PostgreSQL each connection commits
 * on its own and the server groups WAL flushes itself.
 */
export class GroupedCommit {
  private queue: Pending[] = [];
  private running = false;

  constructor(private readonly db: Db) {}

  run<T>(work: (trx: Tx) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ work, resolve: resolve as (value: unknown) => void, reject });
      if (this.running) return;
      this.running = true;
      // better-sqlite3 answers at once, so a request runs from its first read to its commit
      // without yielding, and requests never overlap by themselves: start the batch on the
      // next turn of the event loop, after the requests already received have reached here.
      setImmediate(() => void this.drain());
    });
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, maxUnits);
        if (batch.length === 1) {
          // Alone: a plain transaction, without the savepoint's two statements.
          const only = batch[0]!;
          await this.db.transaction().execute(only.work).then(only.resolve, only.reject);
          continue;
        }
        const done: Array<{ unit: Pending; value: unknown }> = [];
        try {
          await this.db.transaction().execute(async (trx) => {
            for (const unit of batch) {
              await sql`savepoint unit`.execute(trx);
              try {
                const value = await unit.work(trx);
                await sql`release unit`.execute(trx);
                done.push({ unit, value });
              } catch (error) {
                await sql`rollback to unit`.execute(trx);
                await sql`release unit`.execute(trx);
                // The next units share this transaction: nothing the failed one read is kept.
                forgetAutomationVersions(trx);
                unit.reject(error);
              }
            }
          });
        } catch (error) {
          for (const { unit } of done) unit.reject(error);
          continue;
        }
        for (const { unit, value } of done) unit.resolve(value);
      }
    } finally {
      this.running = false;
    }
  }
}
