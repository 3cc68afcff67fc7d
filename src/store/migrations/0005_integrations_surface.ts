import { sql, type Kysely } from 'kysely';

/**
 * The surfaces other systems integrate through: outbound webhook subscriptions with
 * their delivery outbox and log, broadcasts, A/B splits of sequences and tracked
 * email link clicks.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('webhook_subscriptions')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('url', 'text', (c) => c.notNull())
    .addColumn('description', 'text')
    /** The event types it receives, as a JSON array (`message.status.*` style wildcards allowed). */
    .addColumn('events', 'text', (c) => c.notNull())
    /** The signing secret, encrypted with the server's key. */
    .addColumn('secret', 'text', (c) => c.notNull())
    /** active | disabled */
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('failing_since', 'bigint')
    .addColumn('disabled_at', 'bigint')
    .addColumn('disabled_reason', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('webhook_subscriptions_workspace').on('webhook_subscriptions').columns(['workspace_id', 'id']).execute();

  // The outbox: one row per (event, subscription), written in the transaction of the
  // change that caused the event, delivered by the workers.
  await db.schema
    .createTable('webhook_deliveries')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('subscription_id', 'text', (c) => c.notNull())
    .addColumn('event_id', 'text', (c) => c.notNull())
    .addColumn('event_type', 'text', (c) => c.notNull())
    .addColumn('payload', 'text', (c) => c.notNull())
    /** pending | delivered | failed */
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('next_attempt_at', 'bigint')
    .addColumn('lease_until', 'bigint')
    .addColumn('last_status_code', 'integer')
    .addColumn('last_error', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('delivered_at', 'bigint')
    .execute();
  await sql`create index webhook_deliveries_due on webhook_deliveries (next_attempt_at) where next_attempt_at is not null`.execute(db);
  await db.schema.createIndex('webhook_deliveries_subscription').on('webhook_deliveries').columns(['subscription_id', 'id']).execute();
  await db.schema.createIndex('webhook_deliveries_event').unique().on('webhook_deliveries').columns(['subscription_id', 'event_id']).execute();
  await db.schema
    .createTable('webhook_attempts')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('delivery_id', 'text', (c) => c.notNull())
    .addColumn('subscription_id', 'text', (c) => c.notNull())
    .addColumn('status_code', 'integer')
    .addColumn('error', 'text')
    .addColumn('duration_ms', 'integer', (c) => c.notNull())
    .addColumn('at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('webhook_attempts_subscription').on('webhook_attempts').columns(['subscription_id', 'id']).execute();
  await db.schema.createIndex('webhook_attempts_delivery').on('webhook_attempts').columns(['delivery_id', 'id']).execute();

  await db.schema
    .createTable('broadcasts')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('template_id', 'text', (c) => c.notNull())
    .addColumn('language', 'text')
    .addColumn('variables', 'text', (c) => c.notNull())
    /** `{ type: 'tag' | 'segment' | 'contacts', … }` as JSON. */
    .addColumn('audience', 'text', (c) => c.notNull())
    /** draft | scheduled | sending | completed | failed | cancelled */
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('scheduled_at', 'bigint')
    /** When a worker should next pick it up (its scheduled time, then each batch). */
    .addColumn('due_at', 'bigint')
    .addColumn('lease_until', 'bigint')
    /** The last contact id queued: sending resumes after it. */
    .addColumn('cursor', 'text')
    .addColumn('recipients', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('error', 'text')
    .addColumn('started_at', 'bigint')
    .addColumn('completed_at', 'bigint')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addColumn('deleted_at', 'bigint')
    .execute();
  await db.schema.createIndex('broadcasts_workspace').on('broadcasts').columns(['workspace_id', 'id']).execute();
  await sql`create index broadcasts_due on broadcasts (due_at) where due_at is not null`.execute(db);

  await db.schema.alterTable('messages').addColumn('broadcast_id', 'text').execute();
  await db.schema.alterTable('messages').addColumn('clicked_at', 'bigint').execute();
  await db.schema.alterTable('messages').addColumn('replied_at', 'bigint').execute();
  await db.schema.createIndex('messages_broadcast').on('messages').columns(['broadcast_id', 'id']).execute();

  // A/B: sequence A names its variant B and the share of contacts that go to B.
  await db.schema.alterTable('definitions').addColumn('ab_variant_id', 'text').execute();
  await db.schema.alterTable('definitions').addColumn('ab_split_percent', 'integer').execute();
  /** Which side of an A/B test the session is on ('A' or 'B'), and the A sequence it came through. */
  await db.schema.alterTable('sessions').addColumn('ab_variant', 'text').execute();
  await db.schema.alterTable('sessions').addColumn('ab_parent_id', 'text').execute();
  await db.schema.createIndex('sessions_ab_parent').on('sessions').columns(['ab_parent_id', 'ab_variant']).execute();

  await db.schema
    .createTable('link_clicks')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('message_id', 'text', (c) => c.notNull())
    .addColumn('url', 'text', (c) => c.notNull())
    .addColumn('clicked_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('link_clicks_message').on('link_clicks').columns(['message_id', 'clicked_at']).execute();
}

export async function down(): Promise<void> {
  throw new Error('Nudge migrations are forward-only; restore a backup to go back.');
}
