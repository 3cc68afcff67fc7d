import { sql, type Insertable, type Selectable, type Updateable } from 'kysely';
import type { Db, Dialect, Tx } from './database.js';
import type { WebhookAttemptTable, WebhookDeliveryTable, WebhookSubscriptionTable } from './schema.js';

/**
 * Outbound webhooks: subscriptions, the delivery outbox (one row per event and
 * subscription) and the log of every attempt. The rules live in the engine
 * (webhook-service.ts, webhook-emitter.ts, webhook-delivery.ts); these functions
 * only read and write rows. The worker's claim and outcome queries span
 * workspaces, like the message dispatcher's; everything the API reaches takes one.
 */

export type WebhookSubscriptionRow = Selectable<WebhookSubscriptionTable>;
export type NewWebhookSubscriptionRow = Insertable<WebhookSubscriptionTable>;
export type WebhookSubscriptionPatch = Updateable<WebhookSubscriptionTable>;
export type WebhookDeliveryRow = Selectable<WebhookDeliveryTable>;
export type NewWebhookDeliveryRow = Insertable<WebhookDeliveryTable>;
export type WebhookAttemptRow = Selectable<WebhookAttemptTable>;

/**
 * The active subscriptions of a workspace with their event filters: what every emitted
 * event reads first. One query on the (workspace_id, id) index; a workspace without
 * subscriptions costs that one lookup and nothing more.
 */
export async function listActiveSubscriptionFilters(db: Db, workspaceId: string): Promise<Array<{ id: string; events: string }>> {
  return db.selectFrom('webhook_subscriptions').select(['id', 'events']).where('workspace_id', '=', workspaceId).where('status', '=', 'active').execute();
}

export async function countSubscriptions(db: Db, workspaceId: string): Promise<number> {
  const row = await db.selectFrom('webhook_subscriptions').select((eb) => eb.fn.countAll<number | string>().as('n')).where('workspace_id', '=', workspaceId).executeTakeFirst();
  return Number(row?.n ?? 0);
}

export async function insertSubscription(db: Db, row: NewWebhookSubscriptionRow): Promise<void> {
  await db.insertInto('webhook_subscriptions').values(row).execute();
}

/** One subscription of the workspace; `lock` takes a row lock on PostgreSQL for a read-modify-write. */
export async function findSubscription(db: Db, workspaceId: string, id: string, lock?: Dialect): Promise<WebhookSubscriptionRow | undefined> {
  let query = db.selectFrom('webhook_subscriptions').selectAll().where('workspace_id', '=', workspaceId).where('id', '=', id);
  if (lock === 'postgres') query = query.forUpdate();
  return query.executeTakeFirst();
}

export async function listSubscriptions(db: Db, workspaceId: string): Promise<WebhookSubscriptionRow[]> {
  return db.selectFrom('webhook_subscriptions').selectAll().where('workspace_id', '=', workspaceId).orderBy('id').execute();
}

export async function findSubscriptionsByIds(db: Db, ids: readonly string[], lock?: Dialect): Promise<WebhookSubscriptionRow[]> {
  if (ids.length === 0) return [];
  let query = db.selectFrom('webhook_subscriptions').selectAll().where('id', 'in', [...ids]).orderBy('id');
  if (lock === 'postgres') query = query.forUpdate();
  return query.execute();
}

export async function updateSubscription(db: Db, workspaceId: string, id: string, patch: WebhookSubscriptionPatch): Promise<void> {
  await db.updateTable('webhook_subscriptions').set(patch).where('workspace_id', '=', workspaceId).where('id', '=', id).execute();
}

/**
 * Deletes the subscription with its deliveries and their attempt log. Takes a
 * transaction: the three deletes stand or fall together, so no delivery is left
 * pointing at a subscription that is gone. Returns whether it existed.
 */
export async function deleteSubscription(trx: Tx, workspaceId: string, id: string): Promise<boolean> {
  const result = await trx.deleteFrom('webhook_subscriptions').where('workspace_id', '=', workspaceId).where('id', '=', id).executeTakeFirst();
  if (Number(result.numDeletedRows) === 0) return false;
  await trx.deleteFrom('webhook_attempts').where('workspace_id', '=', workspaceId).where('subscription_id', '=', id).execute();
  await trx.deleteFrom('webhook_deliveries').where('workspace_id', '=', workspaceId).where('subscription_id', '=', id).execute();
  return true;
}

/** Queues deliveries; a (subscription, event) pair that exists already is skipped. */
export async function insertDeliveries(db: Db, rows: NewWebhookDeliveryRow[]): Promise<void> {
  for (let i = 0; i < rows.length; i += 500) {
    await db.insertInto('webhook_deliveries').values(rows.slice(i, i + 500)).onConflict((oc) => oc.columns(['subscription_id', 'event_id']).doNothing()).execute();
  }
}

/**
 * Claims due deliveries and leases them: the next attempt moves to the lease's end and
 * the attempt is counted, in the caller's transaction. A worker killed mid-request
 * leaves the lease to expire, and the delivery is claimed again then (the receiver
 * sees it twice, and de-duplicates on the event id). On PostgreSQL `FOR UPDATE SKIP
 * LOCKED` keeps concurrent workers off each other's rows; on SQLite the caller's
 * BEGIN IMMEDIATE transaction excludes every other writer. Reads only the low end of
 * the partial `webhook_deliveries_due` index.
 */
export async function claimDueDeliveries(db: Db, dialect: Dialect, now: number, limit: number, leaseMs: number): Promise<WebhookDeliveryRow[]> {
  const lock = dialect === 'postgres' ? sql` for update skip locked` : sql``;
  const due = await sql<WebhookDeliveryRow>`select * from webhook_deliveries where next_attempt_at is not null and next_attempt_at <= ${now} order by next_attempt_at limit ${limit}${lock}`.execute(db);
  const rows = due.rows;
  if (rows.length === 0) return rows;
  const until = now + leaseMs;
  await db
    .updateTable('webhook_deliveries')
    .set((eb) => ({ lease_until: until, next_attempt_at: until, attempts: eb('attempts', '+', 1) }))
    .where('id', 'in', rows.map((r) => r.id))
    .execute();
  return rows.map((r) => ({ ...r, attempts: Number(r.attempts) + 1, lease_until: until, next_attempt_at: until, created_at: Number(r.created_at) }));
}

export type DeliveryOutcome = Pick<WebhookDeliveryRow, 'status' | 'next_attempt_at' | 'last_status_code' | 'last_error' | 'delivered_at'>;

/**
 * Records an attempt's outcome on a delivery this worker still holds (same lease): a
 * worker whose lease ran out, and whose delivery another worker took since, changes
 * nothing. Returns whether the row was updated.
 */
export async function saveDeliveryOutcome(db: Db, id: string, leaseUntil: number, outcome: DeliveryOutcome): Promise<boolean> {
  const result = await db
    .updateTable('webhook_deliveries')
    .set({ ...outcome, lease_until: null })
    .where('id', '=', id)
    .where('lease_until', '=', leaseUntil)
    .where('status', '=', 'pending')
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

/** Gives a claimed delivery back without counting the attempt, paused (no next attempt). */
export async function releasePaused(db: Db, id: string, leaseUntil: number): Promise<void> {
  await db
    .updateTable('webhook_deliveries')
    .set((eb) => ({ next_attempt_at: null, lease_until: null, attempts: eb('attempts', '-', 1) }))
    .where('id', '=', id)
    .where('lease_until', '=', leaseUntil)
    .execute();
}

/** Deletes deliveries whose subscription is gone (queued by a process that had not yet seen the delete). */
export async function deleteDeliveries(db: Db, ids: readonly string[]): Promise<void> {
  if (ids.length === 0) return;
  await db.deleteFrom('webhook_attempts').where('delivery_id', 'in', [...ids]).execute();
  await db.deleteFrom('webhook_deliveries').where('id', 'in', [...ids]).execute();
}

export async function insertAttempts(db: Db, rows: WebhookAttemptRow[]): Promise<void> {
  if (rows.length > 0) await db.insertInto('webhook_attempts').values(rows).execute();
}

/** Stops attempting a subscription's pending deliveries: they stay pending, with no next attempt. */
export async function pauseDeliveries(db: Db, workspaceId: string, subscriptionId: string): Promise<void> {
  await db
    .updateTable('webhook_deliveries')
    .set({ next_attempt_at: null })
    .where('workspace_id', '=', workspaceId)
    .where('subscription_id', '=', subscriptionId)
    .where('status', '=', 'pending')
    .execute();
}

/**
 * Resumes a subscription's pending deliveries: those created before `expiredBefore`
 * fail with `expiredError`, the others are due at `now`. Returns how many of each.
 */
export async function resumeDeliveries(
  db: Db,
  workspaceId: string,
  subscriptionId: string,
  now: number,
  expiredBefore: number,
  expiredError: string,
): Promise<{ resumed: number; failed: number }> {
  const failed = await db
    .updateTable('webhook_deliveries')
    .set({ status: 'failed', next_attempt_at: null, lease_until: null, last_error: expiredError })
    .where('workspace_id', '=', workspaceId)
    .where('subscription_id', '=', subscriptionId)
    .where('status', '=', 'pending')
    .where('created_at', '<', expiredBefore)
    .executeTakeFirst();
  const resumed = await db
    .updateTable('webhook_deliveries')
    .set({ next_attempt_at: now, lease_until: null })
    .where('workspace_id', '=', workspaceId)
    .where('subscription_id', '=', subscriptionId)
    .where('status', '=', 'pending')
    .executeTakeFirst();
  return { resumed: Number(resumed.numUpdatedRows), failed: Number(failed.numUpdatedRows) };
}

/**
 * Queues a delivery again, now, whatever its state: a manual redelivery. Its lease is
 * dropped, so an attempt still in flight can no longer record its outcome over this.
 */
export async function requeueDelivery(db: Db, workspaceId: string, id: string, now: number): Promise<void> {
  await db
    .updateTable('webhook_deliveries')
    .set({ status: 'pending', next_attempt_at: now, lease_until: null, delivered_at: null })
    .where('workspace_id', '=', workspaceId)
    .where('id', '=', id)
    .execute();
}

/** A page of a subscription's deliveries, newest first, before the `before` id. */
export async function listDeliveries(db: Db, workspaceId: string, subscriptionId: string, filter: { status?: string; before?: string; limit: number }): Promise<WebhookDeliveryRow[]> {
  let query = db.selectFrom('webhook_deliveries').selectAll().where('workspace_id', '=', workspaceId).where('subscription_id', '=', subscriptionId);
  if (filter.status) query = query.where('status', '=', filter.status);
  if (filter.before) query = query.where('id', '<', filter.before);
  return query.orderBy('id', 'desc').limit(filter.limit).execute();
}

export async function findDelivery(db: Db, workspaceId: string, id: string): Promise<WebhookDeliveryRow | undefined> {
  return db.selectFrom('webhook_deliveries').selectAll().where('workspace_id', '=', workspaceId).where('id', '=', id).executeTakeFirst();
}

/** The attempts of these deliveries, oldest first. */
export async function listAttempts(db: Db, workspaceId: string, deliveryIds: readonly string[]): Promise<WebhookAttemptRow[]> {
  if (deliveryIds.length === 0) return [];
  return db
    .selectFrom('webhook_attempts')
    .selectAll()
    .where('workspace_id', '=', workspaceId)
    .where('delivery_id', 'in', [...deliveryIds])
    .orderBy('delivery_id')
    .orderBy('id')
    .execute();
}

/** When the next delivery falls due (the smallest next_attempt_at), or null when none waits. */
export async function nextDeliveryDueAt(db: Db): Promise<number | null> {
  const result = await sql<{ w: number | string | null }>`select min(next_attempt_at) as w from webhook_deliveries where next_attempt_at is not null`.execute(db);
  const value = result.rows[0]?.w;
  return value === null || value === undefined ? null : Number(value);
}

/**
 * Removes finished deliveries (delivered or failed) created before `before`, with their
 * attempts, up to `limit` at a time. Delivery ids are UUIDv7, so "created before" is
 * "id below the smallest UUIDv7 of that millisecond": a primary-key range, no scan.
 */
export async function pruneFinishedDeliveries(db: Db, before: number, limit = 5000): Promise<number> {
  const hex = Math.max(0, Math.floor(before)).toString(16).padStart(12, '0');
  const boundary = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-7000-8000-000000000000`;
  const old = await db.selectFrom('webhook_deliveries').select('id').where('id', '<', boundary).where('status', '<>', 'pending').limit(limit).execute();
  if (old.length === 0) return 0;
  const ids = old.map((r) => r.id);
  await db.deleteFrom('webhook_attempts').where('delivery_id', 'in', ids).execute();
  await db.deleteFrom('webhook_deliveries').where('id', 'in', ids).execute();
  return ids.length;
}
