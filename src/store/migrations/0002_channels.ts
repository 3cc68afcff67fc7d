import type { Kysely } from 'kysely';

/**
 * Real providers: per-workspace settings (secrets encrypted at rest), a record of
 * webhooks refused or received, SMS segment accounting, and the shared per-number
 * send-rate counters.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('provider_settings')
    .addColumn('workspace_id', 'text', (c) => c.notNull().references('workspaces.id'))
    .addColumn('channel', 'text', (c) => c.notNull())
    .addColumn('provider', 'text', (c) => c.notNull())
    /** Non-secret settings as JSON (ids, base URL, version, from address). */
    .addColumn('config', 'text', (c) => c.notNull().defaultTo('{}'))
    /** Secret settings as JSON, encrypted with NUDGE_SECRET_KEY (AES-256-GCM). */
    .addColumn('secrets', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('status', 'text', (c) => c.notNull().defaultTo('unverified'))
    .addColumn('status_error', 'text')
    .addColumn('status_at', 'bigint')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('provider_settings_pk', ['workspace_id', 'channel'])
    .execute();

  await db.schema
    .createTable('webhook_events')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('workspace_id', 'text')
    .addColumn('provider', 'text', (c) => c.notNull())
    /** accepted | rejected */
    .addColumn('outcome', 'text', (c) => c.notNull())
    .addColumn('reason', 'text')
    .addColumn('remote_address', 'text')
    .addColumn('body_sha256', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('webhook_events_created').on('webhook_events').columns(['provider', 'created_at']).execute();

  await db.schema.alterTable('messages').addColumn('segments', 'integer').execute();
  await db.schema.alterTable('messages').addColumn('encoding', 'text').execute();

  await db.schema
    .createTable('rate_buckets')
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('window_start', 'bigint', (c) => c.notNull())
    .addColumn('count', 'integer', (c) => c.notNull())
    .addPrimaryKeyConstraint('rate_buckets_pk', ['key', 'window_start'])
    .execute();
}

export async function down(): Promise<void> {
  throw new Error('Nudge migrations are forward-only; restore a backup to go back.');
}
