import { sql, type Kysely } from 'kysely';

/**
 * The core: tenants, auth, contacts and tags, definitions with frozen versions,
 * sessions, their step history, and messages. Portable SQL: it runs unchanged on
 * SQLite and PostgreSQL (times are bigint milliseconds, JSON is text).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('workspaces')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('settings', 'text', (c) => c.notNull().defaultTo('{}'))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('users')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('workspace_id', 'text', (c) => c.notNull().references('workspaces.id'))
    .addColumn('email', 'text', (c) => c.notNull().unique())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('password_hash', 'text')
    .addColumn('role', 'text', (c) => c.notNull().defaultTo('admin'))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('api_tokens')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('workspace_id', 'text', (c) => c.notNull().references('workspaces.id'))
    .addColumn('user_id', 'text', (c) => c.references('users.id'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('token_hash', 'text', (c) => c.notNull().unique())
    .addColumn('prefix', 'text', (c) => c.notNull())
    .addColumn('scopes', 'text', (c) => c.notNull())
    .addColumn('rate_limit', 'integer')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('last_used_at', 'bigint')
    .addColumn('revoked_at', 'bigint')
    .execute();
  await db.schema.createIndex('api_tokens_workspace').on('api_tokens').columns(['workspace_id', 'created_at']).execute();

  await db.schema
    .createTable('contacts')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('workspace_id', 'text', (c) => c.notNull().references('workspaces.id'))
    .addColumn('phone', 'text')
    .addColumn('email', 'text')
    .addColumn('name', 'text')
    .addColumn('first_name', 'text')
    .addColumn('last_name', 'text')
    .addColumn('metadata', 'text', (c) => c.notNull().defaultTo('{}'))
    .addColumn('timezone', 'text')
    .addColumn('language', 'text')
    .addColumn('source', 'text', (c) => c.notNull().defaultTo('api'))
    .addColumn('search_text', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('opted_in_at', 'bigint')
    .addColumn('opted_out_at', 'bigint')
    .addColumn('whatsapp_opted_out_at', 'bigint')
    .addColumn('sms_opted_out_at', 'bigint')
    .addColumn('email_opted_out_at', 'bigint')
    .addColumn('whatsapp_last_inbound_at', 'bigint')
    .addColumn('sms_last_inbound_at', 'bigint')
    .addColumn('last_message_at', 'bigint')
    .addColumn('total_messages', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  // NULLs are distinct in both engines' unique indexes: a contact may lack either.
  await db.schema.createIndex('contacts_workspace_phone').unique().on('contacts').columns(['workspace_id', 'phone']).execute();
  await db.schema.createIndex('contacts_workspace_email').unique().on('contacts').columns(['workspace_id', 'email']).execute();
  await db.schema.createIndex('contacts_workspace_id').on('contacts').columns(['workspace_id', 'id']).execute();
  await db.schema.createIndex('contacts_workspace_last_message').on('contacts').columns(['workspace_id', 'last_message_at']).execute();

  await db.schema
    .createTable('tags')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('workspace_id', 'text', (c) => c.notNull().references('workspaces.id'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('name_key', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('tags_workspace_name').unique().on('tags').columns(['workspace_id', 'name_key']).execute();

  await db.schema
    .createTable('contact_tags')
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('contact_id', 'text', (c) => c.notNull().references('contacts.id').onDelete('cascade'))
    .addColumn('tag_id', 'text', (c) => c.notNull().references('tags.id').onDelete('cascade'))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('contact_tags_pk', ['contact_id', 'tag_id'])
    .execute();
  await db.schema.createIndex('contact_tags_tag').on('contact_tags').columns(['tag_id', 'contact_id']).execute();

  await db.schema
    .createTable('idempotency_keys')
    .addColumn('token_id', 'text', (c) => c.notNull())
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('method', 'text', (c) => c.notNull())
    .addColumn('path', 'text', (c) => c.notNull())
    .addColumn('request_hash', 'text', (c) => c.notNull())
    .addColumn('status_code', 'integer', (c) => c.notNull())
    .addColumn('response_body', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('idempotency_keys_pk', ['token_id', 'key'])
    .execute();
  await db.schema.createIndex('idempotency_keys_expiry').on('idempotency_keys').column('expires_at').execute();

  await db.schema
    .createTable('rate_limits')
    .addColumn('token_id', 'text', (c) => c.notNull())
    .addColumn('window_start', 'bigint', (c) => c.notNull())
    .addColumn('count', 'integer', (c) => c.notNull())
    .addPrimaryKeyConstraint('rate_limits_pk', ['token_id', 'window_start'])
    .execute();

  await db.schema
    .createTable('templates')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('workspace_id', 'text', (c) => c.notNull().references('workspaces.id'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('language', 'text', (c) => c.notNull())
    .addColumn('category', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('components', 'text', (c) => c.notNull().defaultTo('{}'))
    .addColumn('provider_template_id', 'text')
    .addColumn('rejected_reason', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('templates_workspace_name_language').unique().on('templates').columns(['workspace_id', 'name', 'language']).execute();

  await db.schema
    .createTable('definitions')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('workspace_id', 'text', (c) => c.notNull().references('workspaces.id'))
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('description', 'text')
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('draft', 'text', (c) => c.notNull())
    .addColumn('draft_changed', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('current_version_id', 'text')
    .addColumn('published_at', 'bigint')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addColumn('deleted_at', 'bigint')
    .execute();
  await db.schema.createIndex('definitions_workspace_kind').on('definitions').columns(['workspace_id', 'kind', 'id']).execute();

  await db.schema
    .createTable('definition_versions')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('definition_id', 'text', (c) => c.notNull().references('definitions.id'))
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('body', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('definition_versions_number').unique().on('definition_versions').columns(['definition_id', 'version']).execute();

  await db.schema
    .createTable('sessions')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('definition_id', 'text', (c) => c.notNull())
    .addColumn('version_id', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('contact_id', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('active', 'integer', (c) => c.notNull())
    .addColumn('enrollment_key', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('current_node', 'text')
    .addColumn('wake_at', 'bigint')
    .addColumn('expires_at', 'bigint')
    .addColumn('context', 'text', (c) => c.notNull().defaultTo('{}'))
    .addColumn('event', 'text')
    .addColumn('state', 'text', (c) => c.notNull().defaultTo('{}'))
    .addColumn('source', 'text', (c) => c.notNull().defaultTo('api'))
    .addColumn('end_reason', 'text')
    .addColumn('steps_run', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addColumn('ended_at', 'bigint')
    .execute();
  // The database, not application code, guarantees one running session per
  // (definition, contact, enrollment key): concurrent enrollments race on this index.
  await sql`create unique index sessions_one_active on sessions (definition_id, contact_id, enrollment_key) where active = 1`.execute(db);
  // The scheduler's claim reads this index from its low end only, so sessions
  // waiting far in the future cost nothing; ended sessions are not in it at all.
  await sql`create index sessions_due on sessions (wake_at) where wake_at is not null`.execute(db);
  await db.schema.createIndex('sessions_contact').on('sessions').columns(['contact_id', 'status']).execute();
  await db.schema.createIndex('sessions_definition').on('sessions').columns(['definition_id', 'id']).execute();
  await db.schema.createIndex('sessions_workspace_id').on('sessions').columns(['workspace_id', 'id']).execute();

  await db.schema
    .createTable('session_steps')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('session_id', 'text', (c) => c.notNull())
    .addColumn('node_id', 'text', (c) => c.notNull())
    .addColumn('node_type', 'text', (c) => c.notNull())
    .addColumn('visit', 'integer', (c) => c.notNull())
    .addColumn('outcome', 'text', (c) => c.notNull())
    .addColumn('detail', 'text')
    .addColumn('at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('session_steps_session').on('session_steps').columns(['session_id', 'id']).execute();

  await db.schema
    .createTable('messages')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('contact_id', 'text', (c) => c.notNull())
    .addColumn('session_id', 'text')
    .addColumn('definition_id', 'text')
    .addColumn('node_id', 'text')
    .addColumn('dedupe_key', 'text')
    .addColumn('direction', 'text', (c) => c.notNull())
    .addColumn('channel', 'text', (c) => c.notNull())
    .addColumn('provider', 'text', (c) => c.notNull())
    .addColumn('recipient', 'text')
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('content', 'text', (c) => c.notNull())
    .addColumn('marketing', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('provider_message_id', 'text')
    .addColumn('error_code', 'text')
    .addColumn('error_message', 'text')
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('next_attempt_at', 'bigint')
    .addColumn('lease_until', 'bigint')
    .addColumn('on_failure', 'text', (c) => c.notNull().defaultTo('continue'))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addColumn('sent_at', 'bigint')
    .addColumn('delivered_at', 'bigint')
    .addColumn('read_at', 'bigint')
    .addColumn('failed_at', 'bigint')
    .execute();
  await db.schema.createIndex('messages_dedupe').unique().on('messages').column('dedupe_key').execute();
  // The dispatcher reads only messages with a pending attempt.
  await sql`create index messages_pending on messages (next_attempt_at) where next_attempt_at is not null`.execute(db);
  await db.schema.createIndex('messages_workspace_id').on('messages').columns(['workspace_id', 'id']).execute();
  await db.schema.createIndex('messages_contact').on('messages').columns(['contact_id', 'id']).execute();
  await db.schema.createIndex('messages_session').on('messages').columns(['session_id', 'id']).execute();
  await db.schema.createIndex('messages_provider_id').on('messages').columns(['provider', 'provider_message_id']).execute();
}

export async function down(): Promise<void> {
  throw new Error('Nudge migrations are forward-only; restore a backup to go back.');
}
