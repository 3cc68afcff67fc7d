import type { Kysely } from 'kysely';

/**
 * A counter per workspace, moved by every change to what the automation reads on each
 * contact change (published triggers and stop conditions, segments). Each process keeps
 * the workspace's rules in memory and re-reads them only when the counter has moved,
 * instead of loading every rule and segment on every tag, event and status change.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('workspaces').addColumn('automation_version', 'integer', (c) => c.notNull().defaultTo(0)).execute();
}

export async function down(): Promise<void> {
  throw new Error('Nudge migrations are forward-only; restore a backup to go back.');
}
