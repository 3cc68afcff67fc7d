import { sql } from 'kysely';
import type { Db, Dialect } from './database.js';

/**
 * Shared send-rate counters: one row per (key, window), e.g. (`whatsapp:1065…`, the
 * second it counts). Every worker process takes its slots from the same row, so the
 * limit holds however many workers run.
 *
 * Taking slots is read-then-write under the row's lock: on PostgreSQL the insert makes
 * sure the row exists and `FOR UPDATE` makes concurrent takers queue on it; on SQLite
 * the caller's transaction already holds the database's write lock (BEGIN IMMEDIATE).
 * Must run inside a transaction.
 *
 * @example
 * const granted = await takeRateSlots(trx, 'postgres', 'whatsapp:106540352242922', windowStart, 120, 80); // 0..80
 */
export async function takeRateSlots(trx: Db, dialect: Dialect, key: string, windowStart: number, wanted: number, limit: number): Promise<number> {
  if (wanted <= 0) return 0;
  await trx.insertInto('rate_buckets').values({ key, window_start: windowStart, count: 0 }).onConflict((oc) => oc.doNothing()).execute();
  const lock = dialect === 'postgres' ? sql` for update` : sql``;
  const row = await sql<{ count: number | string }>`select count from rate_buckets where key = ${key} and window_start = ${windowStart}${lock}`.execute(trx);
  const used = Number(row.rows[0]?.count ?? 0);
  const granted = Math.max(0, Math.min(wanted, limit - used));
  if (granted > 0) {
    await trx.updateTable('rate_buckets').set({ count: used + granted }).where('key', '=', key).where('window_start', '=', windowStart).execute();
  }
  return granted;
}

/** Drops windows that ended before `before` (maintenance). */
export async function deleteOldRateBuckets(db: Db, before: number): Promise<number> {
  const result = await db.deleteFrom('rate_buckets').where('window_start', '<', before).executeTakeFirst();
  return Number(result.numDeletedRows);
}
