import type { Kysely } from 'kysely';

/**
 * Discount steps end to end: each discount code remembers the step run that made it
 * (`step_key` = session:node:visit, unique per workspace, so a step run re-done after a
 * crash can never store a second code), Nudge's own codes record every redemption, and
 * an integration remembers when its status was last set.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('discount_codes').addColumn('step_key', 'text').execute();
  await db.schema.alterTable('discount_codes').addColumn('node_id', 'text').execute();
  /** What the code grants besides its amount, as JSON (duration, durationInMonths, planIds, label): a checkout redeeming a Nudge code needs them. */
  await db.schema.alterTable('discount_codes').addColumn('terms', 'text').execute();
  // NULLs are distinct in a unique index on both engines: codes made outside a step never collide here.
  await db.schema.createIndex('discount_codes_step').unique().on('discount_codes').columns(['workspace_id', 'step_key']).execute();
  await db.schema.createIndex('discount_codes_workspace').on('discount_codes').columns(['workspace_id', 'id']).execute();
  await db.schema.createIndex('discount_codes_contact').on('discount_codes').columns(['workspace_id', 'contact_id', 'id']).execute();

  await db.schema
    .createTable('discount_redemptions')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('discount_code_id', 'text', (c) => c.notNull())
    .addColumn('contact_id', 'text')
    /** The email the redeemer gave when it matched no contact (a forwarded, unlocked code). */
    .addColumn('email', 'text')
    .addColumn('redeemed_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('discount_redemptions_code').on('discount_redemptions').columns(['discount_code_id', 'id']).execute();

  await db.schema.alterTable('integrations').addColumn('status_at', 'bigint').execute();
}

export async function down(): Promise<void> {
  throw new Error('Nudge migrations are forward-only; restore a backup to go back.');
}
