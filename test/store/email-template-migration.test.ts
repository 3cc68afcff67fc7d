import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Migrator, type Kysely } from 'kysely';
import pg from 'pg';
import { describe, expect, inject, it } from 'vitest';
import { openDatabase, type Database, type Dialect } from '../../src/store/database.js';
import { migrateToLatest, migrations } from '../../src/store/migrate.js';
import { dialects } from '../support/databases.js';

/** An empty database of the engine (not the migrated template the other suites clone), and how to drop it. */
async function emptyDatabase(dialect: Dialect): Promise<{ database: Database; drop: () => Promise<void> }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'nudge-migration-'));
  if (dialect === 'sqlite') {
    const database = openDatabase({ databaseUrl: null, dataDir });
    return { database, drop: async () => rmSync(dataDir, { recursive: true, force: true }) };
  }
  const adminUrl = inject('pgAdminUrl');
  const name = `nudge_t_${process.pid}_${Date.now()}_migration`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`create database "${name}"`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const database = openDatabase({ databaseUrl: url.toString(), dataDir });
  return {
    database,
    drop: async () => {
      const dropper = new pg.Client({ connectionString: adminUrl });
      await dropper.connect();
      await dropper.query(`drop database if exists "${name}" with (force)`);
      await dropper.end();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

describe.each(dialects)('migration 0011_email_templates on %s', (dialect) => {
  it('gives the email steps of definitions saved before it their templates, and leaves deleted ones and other channels alone', async () => {
    const { database, drop } = await emptyDatabase(dialect);
    try {
      const migrator = new Migrator({ db: database.db, provider: { getMigrations: async () => migrations }, migrationTableName: 'nudge_migrations', migrationLockTableName: 'nudge_migrations_lock' });
      const before = await migrator.migrateTo('0010_automation_version');
      expect(before.error).toBeUndefined();
      const db = database.db as unknown as Kysely<Record<string, Record<string, unknown>>>;
      await db.insertInto('workspaces').values({ id: 'w1', name: 'Acme', created_at: 1 }).execute();
      const draft = (nodes: object[]) => JSON.stringify({ graph: { nodes, edges: [] }, settings: {}, trigger: { type: 'api' }, steps: null });
      const definition = (id: string, name: string, nodes: object[], deletedAt: number | null = null) => ({
        id,
        workspace_id: 'w1',
        kind: 'sequence',
        name,
        status: 'active',
        draft: draft(nodes),
        draft_changed: 0,
        created_at: 1,
        updated_at: 1,
        deleted_at: deletedAt,
      });
      await db
        .insertInto('definitions')
        .values([
          definition('d1', 'Old welcome', [
            { id: 'step-1', type: 'send_message', channel: 'email', content: { subject: 'Hi', preview_text: 'Hello', blocks: [{ id: 'text-1', type: 'text', content: '<p>Hi</p>' }] } },
            { id: 'step-2', type: 'send_message', channel: 'sms', content: { text: 'Text' } },
            { id: 'step-3', type: 'send_message', channel: 'email', content: { subject: 'Older', html: '<h1>Kept as HTML</h1>' } },
          ]),
          definition('d2', 'Deleted', [{ id: 'step-1', type: 'send_message', channel: 'email', content: { subject: 'Gone', blocks: [{ type: 'divider' }] } }], 5),
        ])
        .execute();

      await migrateToLatest(database.db);
      const rows = await database.db.selectFrom('email_templates').selectAll().orderBy('id').execute();
      expect(rows.map((r) => ({ name: r.name, subject: r.subject, preview: r.preview_text, blocks: JSON.parse(r.blocks) as unknown, at: [r.definition_id, r.node_id], ws: r.workspace_id }))).toEqual([
        { name: 'Old welcome \u2013 Email 1', subject: 'Hi', preview: 'Hello', blocks: [{ id: 'text-1', type: 'text', content: '<p>Hi</p>' }], at: ['d1', 'step-1'], ws: 'w1' },
        { name: 'Old welcome \u2013 Email 2', subject: 'Older', preview: null, blocks: [{ id: 'heading-1', type: 'heading', content: 'Kept as HTML', level: 1 }], at: ['d1', 'step-3'], ws: 'w1' },
      ]);
      // One template per step is the database's rule, not only the code's.
      await expect(
        database.db.insertInto('email_templates').values({ ...rows[0]!, id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4aff' }).execute(),
      ).rejects.toThrow();
    } finally {
      await database.close();
      await drop();
    }
  });
});
