import { Migrator, type Migration, type MigrationProvider } from 'kysely';
import type { Db } from './database.js';
import * as m0001 from './migrations/0001_core.js';
import * as m0002 from './migrations/0002_channels.js';
import * as m0003 from './migrations/0003_pending_statuses.js';
import * as m0004 from './migrations/0004_audiences_and_triggers.js';
import * as m0005 from './migrations/0005_integrations_surface.js';
import * as m0006 from './migrations/0006_discounts.js';
import * as m0007 from './migrations/0007_webhooks.js';
import * as m0008 from './migrations/0008_broadcasts.js';
import * as m0009 from './migrations/0009_dashboard_sessions_and_ab.js';
import * as m0010 from './migrations/0010_automation_version.js';
import * as m0011 from './migrations/0011_email_templates.js';
import * as m0012 from './migrations/0012_hot_path_indexes.js';
import * as m0013 from './migrations/0013_lookup_generations.js';
import * as m0014 from './migrations/0014_contact_counters_unindexed.js';

/** Every migration, in order. Listed statically so the compiled build needs no directory scan. */
export const migrations: Record<string, Migration> = {
  '0001_core': m0001,
  '0002_channels': m0002,
  '0003_pending_statuses': m0003,
  '0004_audiences_and_triggers': m0004,
  '0005_integrations_surface': m0005,
  '0006_discounts': m0006,
  '0007_webhooks': m0007,
  '0008_broadcasts': m0008,
  '0009_dashboard_sessions_and_ab': m0009,
  '0010_automation_version': m0010,
  '0011_email_templates': m0011,
  '0012_hot_path_indexes': m0012,
  '0013_lookup_generations': m0013,
  '0014_contact_counters_unindexed': m0014,
};

const provider: MigrationProvider = { getMigrations: async () => migrations };

export class SchemaTooNewError extends Error {
  constructor(readonly unknown: string[]) {
    super(
      `The database has migrations this version of Nudge does not know (${unknown.join(', ')}). ` +
        'It was upgraded by a newer Nudge; run that version, or restore a backup.',
    );
    this.name = 'SchemaTooNewError';
  }
}

/**
 * Brings the schema up to date. Refuses a database whose schema is newer than this
 * build knows: running old code on a new schema could silently corrupt data.
 */
export async function migrateToLatest(db: Db): Promise<string[]> {
  const migrator = new Migrator({ db, provider, migrationTableName: 'nudge_migrations', migrationLockTableName: 'nudge_migrations_lock' });
  const known = new Set(Object.keys(migrations));
  // getMigrations lists only known names; read the table itself for unknown ones.
  const tables = await db.introspection.getTables();
  if (tables.some((t) => t.name === 'nudge_migrations')) {
    const rows = await db.selectFrom('nudge_migrations' as never).select('name' as never).execute();
    const unknown = (rows as Array<{ name: string }>).map((r) => r.name).filter((name) => !known.has(name));
    if (unknown.length > 0) throw new SchemaTooNewError(unknown);
  }
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(String(error));
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
