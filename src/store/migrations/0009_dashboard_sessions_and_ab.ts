import { sql, type Kysely } from 'kysely';

/**
 * Dashboard sign-in: sessions behind the dashboard's cookie (only a hash of the
 * cookie's token is stored) and the failed-login counters that throttle password
 * guessing across every API process. A/B results: a partial index for the
 * "latest outbound message of a session" a reply is attributed to.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('user_sessions')
    .addColumn('id', 'text', (c) => c.primaryKey())
    /** sha256 of the cookie's random token: a stolen database does not sign anyone in. */
    .addColumn('token_hash', 'text', (c) => c.notNull().unique())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('last_seen_at', 'bigint', (c) => c.notNull())
    /** Slides forward with use, never past absolute_expires_at. */
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('absolute_expires_at', 'bigint', (c) => c.notNull())
    .addColumn('ip', 'text')
    .addColumn('user_agent', 'text')
    .execute();
  await db.schema.createIndex('user_sessions_expiry').on('user_sessions').column('expires_at').execute();
  await db.schema.createIndex('user_sessions_user').on('user_sessions').columns(['user_id', 'created_at']).execute();

  // One row per throttled key (a hash of email + IP, or of the email alone): attempts in the window that started at window_start.
  await db.schema
    .createTable('login_attempts')
    .addColumn('key', 'text', (c) => c.primaryKey())
    .addColumn('window_start', 'bigint', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('login_attempts_window').on('login_attempts').column('window_start').execute();

  // An inbound reply is credited to the contact's latest outbound message of a session
  // on the same channel: read newest first from this index, whatever the contact's history.
  await sql`create index messages_contact_outbound on messages (contact_id, channel, sent_at) where direction = 'outbound' and session_id is not null`.execute(db);
}

export async function down(): Promise<void> {
  throw new Error('Nudge migrations are forward-only; restore a backup to go back.');
}
