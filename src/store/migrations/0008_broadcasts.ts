import { sql, type Kysely } from 'kysely';

/**
 * Broadcasts at work, and the newest-first reads the polling triggers make.
 *
 * - `broadcasts.skipped`: contacts of the audience that were not messaged (opted out,
 *   no phone), counted by the worker in the transaction that records them, so the
 *   `new-campaign-sent` feed shows it without counting messages.
 * - `broadcasts_completed`: the feed of sent broadcasts, newest first, per workspace.
 * - `messages_inbound` and `messages_inbound_kind`: the feed of received messages,
 *   optionally of one type. Partial indexes: outbound messages, by far the most
 *   numerous and the most often updated, are not in them.
 * - `sessions_workspace_kind`: the feeds of flows and sequences started, newest first.
 *   Sessions are keyed by UUIDv7, minted from the same clock reading as `created_at`,
 *   so id order is creation order.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('broadcasts').addColumn('skipped', 'integer', (c) => c.notNull().defaultTo(0)).execute();
  await sql`create index broadcasts_completed on broadcasts (workspace_id, completed_at, id) where completed_at is not null`.execute(db);
  await sql`create index messages_inbound on messages (workspace_id, id) where direction = 'inbound'`.execute(db);
  await sql`create index messages_inbound_kind on messages (workspace_id, kind, id) where direction = 'inbound'`.execute(db);
  await db.schema.createIndex('sessions_workspace_kind').on('sessions').columns(['workspace_id', 'kind', 'id']).execute();
}

export async function down(): Promise<void> {
  throw new Error('Nudge migrations are forward-only; restore a backup to go back.');
}
