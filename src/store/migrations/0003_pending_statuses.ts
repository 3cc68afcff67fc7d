import type { Kysely } from 'kysely';

/**
 * Delivery statuses that arrive before Nudge has recorded the provider's message id
 * (a provider may call back while the dispatcher's batch is still sending). They wait
 * here and are applied when the send result is recorded.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('pending_statuses')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('provider', 'text', (c) => c.notNull())
    .addColumn('provider_message_id', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('occurred_at', 'bigint', (c) => c.notNull())
    .addColumn('error_code', 'text')
    .addColumn('error_message', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('pending_statuses_message').on('pending_statuses').columns(['provider', 'provider_message_id']).execute();
  await db.schema.createIndex('pending_statuses_created').on('pending_statuses').column('created_at').execute();
}

export async function down(): Promise<void> {
  throw new Error('Nudge migrations are forward-only; restore a backup to go back.');
}
