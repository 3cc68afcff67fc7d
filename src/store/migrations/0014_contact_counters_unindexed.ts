import { PostgresAdapter, sql, type Kysely } from 'kysely';

/**
 * Every message sent moves its contact's `total_messages` and `last_message_at`.
 * The (workspace_id, last_message_at) index served no query: the contact search
 * orders by last_message_at with `nulls last` and two tie-breaks, which neither
 * engine reads from it (SQLite walks contacts_workspace_created and sorts; PostgreSQL
 * scans and keeps the top N). It only made each send rewrite an index entry, and on
 * PostgreSQL it made each counter update a non-HOT one, rewriting every contact index.
 *
 * With no index on the counters, PostgreSQL can update a contact in place on its page
 * (a HOT update) when the page has room; a fill factor of 90 keeps that room for rows
 * written from now on. Measured with bench/engine-bench.ts: see BENCHMARKS.md.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('contacts_workspace_last_message').execute();
  if (db.getExecutor().adapter instanceof PostgresAdapter) {
    await sql`alter table contacts set (fillfactor = 90)`.execute(db);
  }
}

export async function down(): Promise<void> {
  throw new Error('Nudge migrations are forward-only; restore a backup to go back.');
}
