import { sql, type Kysely } from 'kysely';

/**
 * Indexes the scheduler pays for on every step, made to cost only where they serve:
 * - messages by broadcast and sessions by A/B test cover the rows that have one
 *   (`= ?` lookups imply NOT NULL, so both engines still use them);
 * - sessions by contact no longer carry the status, which changes at every step and
 *   moved the entry each time; the few sessions of one contact are filtered after.
 * Measured with bench/engine-bench.ts: see BENCHMARKS.md.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('messages_broadcast').execute();
  await sql`create index messages_broadcast on messages (broadcast_id, id) where broadcast_id is not null`.execute(db);
  await db.schema.dropIndex('sessions_ab_parent').execute();
  await sql`create index sessions_ab_parent on sessions (ab_parent_id, ab_variant) where ab_parent_id is not null`.execute(db);
  await db.schema.dropIndex('sessions_contact').execute();
  await db.schema.createIndex('sessions_contact').on('sessions').columns(['contact_id', 'created_at']).execute();
}

export async function down(): Promise<void> {
  throw new Error('Nudge migrations are forward-only; restore a backup to go back.');
}
