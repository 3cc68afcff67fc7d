import { sql, type Selectable } from 'kysely';
import type { Db } from './database.js';
import type { UserSessionTable } from './schema.js';

/** Dashboard sessions (found by the hash of the cookie's token) and the failed-login throttle. */

export type UserSessionRow = Selectable<UserSessionTable>;

export async function insertUserSession(db: Db, row: UserSessionRow): Promise<void> {
  await db.insertInto('user_sessions').values(row).execute();
}

export async function findUserSessionByHash(db: Db, tokenHash: string): Promise<UserSessionRow | undefined> {
  return db.selectFrom('user_sessions').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
}

export async function touchUserSession(db: Db, id: string, lastSeenAt: number, expiresAt: number): Promise<void> {
  await db.updateTable('user_sessions').set({ last_seen_at: lastSeenAt, expires_at: expiresAt }).where('id', '=', id).execute();
}

export async function deleteUserSessionByHash(db: Db, tokenHash: string): Promise<boolean> {
  const result = await db.deleteFrom('user_sessions').where('token_hash', '=', tokenHash).executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

export async function deleteExpiredUserSessions(db: Db, now: number): Promise<void> {
  await db.deleteFrom('user_sessions').where('expires_at', '<=', now).execute();
}

/**
 * Counts one sign-in attempt under `key` and returns the attempts of its window,
 * this one included. A window older than `windowMs` starts again at 1. One atomic
 * upsert, so concurrent attempts from several API processes are all counted (the
 * assignments read the row as it was, on both engines).
 */
export async function countLoginAttempt(db: Db, key: string, now: number, windowMs: number): Promise<{ attempts: number; windowStart: number }> {
  const expired = now - windowMs;
  const row = await db
    .insertInto('login_attempts')
    .values({ key, window_start: now, attempts: 1 })
    .onConflict((oc) =>
      oc.column('key').doUpdateSet({
        attempts: sql<number>`case when login_attempts.window_start <= ${expired} then 1 else login_attempts.attempts + 1 end`,
        window_start: sql<number>`case when login_attempts.window_start <= ${expired} then ${now} else login_attempts.window_start end`,
      }),
    )
    .returning(['attempts', 'window_start'])
    .executeTakeFirstOrThrow();
  return { attempts: Number(row.attempts), windowStart: Number(row.window_start) };
}

export async function clearLoginAttempts(db: Db, key: string): Promise<void> {
  await db.deleteFrom('login_attempts').where('key', '=', key).execute();
}

export async function pruneLoginAttempts(db: Db, before: number): Promise<void> {
  await db.deleteFrom('login_attempts').where('window_start', '<', before).execute();
}
