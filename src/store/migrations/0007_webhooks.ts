import type { Kysely } from 'kysely';

/**
 * Secret rotation for webhook subscriptions: the secret being replaced keeps signing
 * (beside the new one) until `previous_secret_expires_at`, so receivers can switch
 * without dropping a request.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  /** The replaced signing secret, encrypted like `secret`, or null. */
  await db.schema.alterTable('webhook_subscriptions').addColumn('previous_secret', 'text').execute();
  await db.schema.alterTable('webhook_subscriptions').addColumn('previous_secret_expires_at', 'bigint').execute();
}

export async function down(): Promise<void> {
  throw new Error('Nudge migrations are forward-only; restore a backup to go back.');
}
