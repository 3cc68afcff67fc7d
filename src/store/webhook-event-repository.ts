import type { Insertable, Selectable } from 'kysely';
import type { Db } from './database.js';
import type { WebhookEventTable } from './schema.js';

/** The log of provider webhooks received: accepted ones and the refused (forged, unsigned, unknown). */
export type WebhookEventRow = Selectable<WebhookEventTable>;

export async function insertWebhookEvent(db: Db, row: Insertable<WebhookEventTable>): Promise<void> {
  await db.insertInto('webhook_events').values(row).execute();
}

export async function listWebhookEvents(db: Db, provider: string, limit = 100): Promise<WebhookEventRow[]> {
  return db.selectFrom('webhook_events').selectAll().where('provider', '=', provider).orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit).execute();
}
