import { sql, type Insertable, type Selectable } from 'kysely';
import type { Db } from './database.js';
import type { DiscountCodeTable, DiscountRedemptionTable } from './schema.js';

export type DiscountCodeRow = Selectable<DiscountCodeTable>;
export type NewDiscountCodeRow = Insertable<DiscountCodeTable>;
export type DiscountRedemptionRow = Selectable<DiscountRedemptionTable>;

/**
 * Inserts a code unless one with the same code or the same step run already exists
 * (both unique per workspace). Returns whether this call inserted it; the caller reads
 * the existing row to tell a re-run of the same step from a code collision.
 */
export async function insertDiscountCode(db: Db, row: NewDiscountCodeRow): Promise<boolean> {
  // No conflict target: either unique index (code_key, step_key) makes it a no-op, on both engines.
  const result = await db.insertInto('discount_codes').values(row).onConflict((oc) => oc.doNothing()).executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0n) > 0;
}

export async function findDiscountCodeByStepKey(db: Db, workspaceId: string, stepKey: string): Promise<DiscountCodeRow | undefined> {
  return db.selectFrom('discount_codes').selectAll().where('workspace_id', '=', workspaceId).where('step_key', '=', stepKey).executeTakeFirst();
}

export async function findDiscountCodeByKey(db: Db, workspaceId: string, codeKey: string): Promise<DiscountCodeRow | undefined> {
  return db.selectFrom('discount_codes').selectAll().where('workspace_id', '=', workspaceId).where('code_key', '=', codeKey).executeTakeFirst();
}

export async function listDiscountCodes(
  db: Db,
  workspaceId: string,
  filter: { limit: number; after?: string; contactId?: string; sessionId?: string; definitionId?: string; provider?: string },
): Promise<DiscountCodeRow[]> {
  let query = db.selectFrom('discount_codes').selectAll().where('workspace_id', '=', workspaceId);
  if (filter.contactId) query = query.where('contact_id', '=', filter.contactId);
  if (filter.sessionId) query = query.where('session_id', '=', filter.sessionId);
  if (filter.definitionId) query = query.where('definition_id', '=', filter.definitionId);
  if (filter.provider) query = query.where('provider', '=', filter.provider);
  if (filter.after) query = query.where('id', '<', filter.after);
  return query.orderBy('id', 'desc').limit(filter.limit).execute();
}

/**
 * Counts one redemption if the code still allows it, in one statement: the guard and the
 * increment cannot be separated by a concurrent redemption (PostgreSQL re-checks the
 * WHERE on the row it waited for; SQLite has one writer). Returns whether it counted.
 */
export async function countRedemption(db: Db, workspaceId: string, id: string, now: number): Promise<boolean> {
  const result = await db
    .updateTable('discount_codes')
    .set({ redemptions: sql`redemptions + 1`, last_redeemed_at: now })
    .where('workspace_id', '=', workspaceId)
    .where('id', '=', id)
    .where((eb) => eb.or([eb('max_redemptions', 'is', null), eb('redemptions', '<', eb.ref('max_redemptions'))]))
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

export async function insertRedemption(db: Db, row: DiscountRedemptionRow): Promise<void> {
  await db.insertInto('discount_redemptions').values(row).execute();
}

export async function listRedemptions(db: Db, workspaceId: string, discountCodeId: string, limit: number): Promise<DiscountRedemptionRow[]> {
  return db.selectFrom('discount_redemptions').selectAll().where('workspace_id', '=', workspaceId).where('discount_code_id', '=', discountCodeId).orderBy('id', 'desc').limit(limit).execute();
}
