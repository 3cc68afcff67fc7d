import { sql } from 'kysely';
import type { Db } from './database.js';
import type { IdempotencyKeyTable } from './schema.js';
import type { Selectable } from 'kysely';

/**
 * Adds `requests` to the token's count in the current fixed window and returns that
 * count with the previous window's, for a sliding-window estimate. Kept in the
 * database so several API processes share one limit (see api/rate-counter.ts).
 */
export async function countRequest(db: Db, tokenId: string, windowStart: number, previousStart: number, requests = 1): Promise<{ current: number; previous: number }> {
  const row = await db
    .insertInto('rate_limits')
    .values({ token_id: tokenId, window_start: windowStart, count: requests })
    .onConflict((oc) => oc.columns(['token_id', 'window_start']).doUpdateSet({ count: sql`rate_limits.count + ${requests}` }))
    .returning('count')
    .executeTakeFirstOrThrow();
  const previous = await db
    .selectFrom('rate_limits')
    .select('count')
    .where('token_id', '=', tokenId)
    .where('window_start', '=', previousStart)
    .executeTakeFirst();
  return { current: Number(row.count), previous: Number(previous?.count ?? 0) };
}

export async function pruneRateLimits(db: Db, before: number): Promise<void> {
  await db.deleteFrom('rate_limits').where('window_start', '<', before).execute();
}

export type IdempotencyRow = Selectable<IdempotencyKeyTable>;

/** Reserves a key (status 0 = in progress). Returns false when the key exists already. */
export async function reserveIdempotencyKey(db: Db, row: IdempotencyRow): Promise<boolean> {
  const result = await db
    .insertInto('idempotency_keys')
    .values(row)
    .onConflict((oc) => oc.columns(['token_id', 'key']).doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
}

export async function findIdempotencyKey(db: Db, tokenId: string, key: string): Promise<IdempotencyRow | undefined> {
  return db.selectFrom('idempotency_keys').selectAll().where('token_id', '=', tokenId).where('key', '=', key).executeTakeFirst();
}

export async function completeIdempotencyKey(db: Db, tokenId: string, key: string, status: number, body: string): Promise<void> {
  await db.updateTable('idempotency_keys').set({ status_code: status, response_body: body }).where('token_id', '=', tokenId).where('key', '=', key).execute();
}

export async function releaseIdempotencyKey(db: Db, tokenId: string, key: string): Promise<void> {
  await db.deleteFrom('idempotency_keys').where('token_id', '=', tokenId).where('key', '=', key).execute();
}

/** Deletes the key only if it has expired, so a concurrent fresh reservation survives. */
export async function releaseExpiredIdempotencyKey(db: Db, tokenId: string, key: string, now: number): Promise<void> {
  await db.deleteFrom('idempotency_keys').where('token_id', '=', tokenId).where('key', '=', key).where('expires_at', '<=', now).execute();
}

export async function pruneIdempotencyKeys(db: Db, now: number): Promise<void> {
  await db.deleteFrom('idempotency_keys').where('expires_at', '<', now).execute();
}
