import { sql, type Kysely } from 'kysely';

/**
 * Event-driven sequences: events and per-contact event statistics, lists, segments
 * with their kept-current membership, the bookkeeping that makes triggers fire once
 * (trigger_fires) and lets the inactivity scan resume where it stopped
 * (trigger_scans), Nudge's own discount codes, and connected integrations (Stripe,
 * Shopify). Definitions gain the trigger and stop condition of their published
 * version as indexed columns, so a contact change finds the definitions it concerns
 * without reading every draft.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('definitions').addColumn('trigger_type', 'text', (c) => c.notNull().defaultTo('api')).execute();
  await db.schema.alterTable('definitions').addColumn('trigger_key', 'text').execute();
  await db.schema.alterTable('definitions').addColumn('stop_type', 'text').execute();
  await db.schema.alterTable('definitions').addColumn('stop_key', 'text').execute();
  await db.schema.alterTable('definitions').addColumn('enrollments_paused', 'integer', (c) => c.notNull().defaultTo(0)).execute();
  /** The AI writing state of a definition created from a goal, as JSON. */
  await db.schema.alterTable('definitions').addColumn('enrichment', 'text').execute();
  await db.schema.alterTable('definitions').addColumn('enrichment_due_at', 'bigint').execute();
  await db.schema.createIndex('definitions_trigger').on('definitions').columns(['workspace_id', 'trigger_type', 'trigger_key']).execute();
  await sql`create index definitions_enrichment_due on definitions (enrichment_due_at) where enrichment_due_at is not null`.execute(db);

  await db.schema.alterTable('contacts').addColumn('external_id', 'text').execute();
  await db.schema.createIndex('contacts_workspace_external').unique().on('contacts').columns(['workspace_id', 'external_id']).execute();
  await db.schema.createIndex('contacts_workspace_created').on('contacts').columns(['workspace_id', 'created_at']).execute();

  await db.schema
    .createTable('events')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('contact_id', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('properties', 'text', (c) => c.notNull())
    .addColumn('occurred_at', 'bigint', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('events_contact_name').on('events').columns(['contact_id', 'name', 'occurred_at']).execute();
  await db.schema.createIndex('events_workspace_id').on('events').columns(['workspace_id', 'id']).execute();

  // One row per contact and event name: the inactivity scan reads (name, last_at)
  // ranges of it, so its cost follows the contacts that crossed the threshold only.
  await db.schema
    .createTable('contact_event_stats')
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('contact_id', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('first_at', 'bigint', (c) => c.notNull())
    .addColumn('last_at', 'bigint', (c) => c.notNull())
    .addColumn('total', 'integer', (c) => c.notNull())
    .addPrimaryKeyConstraint('contact_event_stats_pk', ['contact_id', 'name'])
    .execute();
  await db.schema.createIndex('contact_event_stats_last').on('contact_event_stats').columns(['workspace_id', 'name', 'last_at']).execute();

  await db.schema
    .createTable('lists')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('description', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('lists_workspace_id').on('lists').columns(['workspace_id', 'id']).execute();
  await db.schema
    .createTable('list_members')
    .addColumn('list_id', 'text', (c) => c.notNull())
    .addColumn('contact_id', 'text', (c) => c.notNull())
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('list_members_pk', ['list_id', 'contact_id'])
    .execute();
  await db.schema.createIndex('list_members_contact').on('list_members').columns(['contact_id', 'list_id']).execute();

  await db.schema
    .createTable('segments')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('description', 'text')
    .addColumn('filter', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('segments_workspace_id').on('segments').columns(['workspace_id', 'id']).execute();
  await db.schema
    .createTable('segment_members')
    .addColumn('segment_id', 'text', (c) => c.notNull())
    .addColumn('contact_id', 'text', (c) => c.notNull())
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('entered_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('segment_members_pk', ['segment_id', 'contact_id'])
    .execute();
  await db.schema.createIndex('segment_members_contact').on('segment_members').columns(['contact_id', 'segment_id']).execute();
  // Memberships that depend on a time window ("2 orders in 30 days") change with the
  // clock alone: each records when it must be looked at again.
  await db.schema
    .createTable('segment_rechecks')
    .addColumn('segment_id', 'text', (c) => c.notNull())
    .addColumn('contact_id', 'text', (c) => c.notNull())
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('due_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('segment_rechecks_pk', ['segment_id', 'contact_id'])
    .execute();
  await db.schema.createIndex('segment_rechecks_due').on('segment_rechecks').column('due_at').execute();

  // The primary key is the "once": a rule fires for a contact and key at most once.
  await db.schema
    .createTable('trigger_fires')
    .addColumn('definition_id', 'text', (c) => c.notNull())
    .addColumn('contact_id', 'text', (c) => c.notNull())
    .addColumn('fire_key', 'text', (c) => c.notNull())
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('fired_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('trigger_fires_pk', ['definition_id', 'contact_id', 'fire_key'])
    .execute();
  await db.schema
    .createTable('trigger_scans')
    .addColumn('definition_id', 'text', (c) => c.primaryKey())
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('scanned_until', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('discount_codes')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('code', 'text', (c) => c.notNull())
    .addColumn('code_key', 'text', (c) => c.notNull())
    .addColumn('provider', 'text', (c) => c.notNull())
    .addColumn('definition_id', 'text')
    .addColumn('session_id', 'text')
    .addColumn('contact_id', 'text')
    .addColumn('percent_off', 'real')
    .addColumn('amount_off', 'real')
    .addColumn('currency', 'text')
    .addColumn('max_redemptions', 'integer')
    .addColumn('redemptions', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('lock_contact_id', 'text')
    .addColumn('expires_at', 'bigint')
    .addColumn('provider_ref', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('last_redeemed_at', 'bigint')
    .execute();
  await db.schema.createIndex('discount_codes_code').unique().on('discount_codes').columns(['workspace_id', 'code_key']).execute();
  await db.schema.createIndex('discount_codes_session').on('discount_codes').columns(['session_id']).execute();

  await db.schema
    .createTable('integrations')
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('provider', 'text', (c) => c.notNull())
    .addColumn('config', 'text', (c) => c.notNull())
    .addColumn('secrets', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('status_error', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('integrations_pk', ['workspace_id', 'provider'])
    .execute();
}

export async function down(): Promise<void> {
  throw new Error('Nudge migrations are forward-only; restore a backup to go back.');
}
