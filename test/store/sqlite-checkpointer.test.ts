import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../../src/store/database.js';
import { migrateToLatest } from '../../src/store/migrate.js';

describe('SQLite checkpoints on a background thread', () => {
  const opened: Array<{ database: Database; dir: string }> = [];
  afterEach(async () => {
    for (const { database, dir } of opened.splice(0)) {
      await database.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  async function open(): Promise<{ database: Database; file: string }> {
    const dir = mkdtempSync(join(tmpdir(), 'nudge-ckpt-'));
    const database = openDatabase({ databaseUrl: null, dataDir: dir, backgroundCheckpoints: true });
    opened.push({ database, dir });
    await migrateToLatest(database.db);
    return { database, file: join(dir, 'nudge.sqlite') };
  }

  it('never checkpoints in a commit, and copies committed pages into the database file on its own thread', async () => {
    const { database, file } = await open();
    expect(database.sqlite!.pragma('wal_autocheckpoint', { simple: true })).toBe(0);
    // Let the thread catch up with the migrations, then measure from there.
    await new Promise((r) => setTimeout(r, 600));
    const before = statSync(file).size;
    const insert = database.sqlite!.prepare(`insert into workspaces (id, name, settings, created_at) values (?, ?, '{}', 0)`);
    for (let t = 0; t < 20; t += 1) {
      database.sqlite!.transaction(() => {
        for (let i = 0; i < 500; i += 1) insert.run(`w-${t}-${i}`, `workspace ${'x'.repeat(200)} ${t}-${i}`);
      })();
    }
    // The commits went to the WAL only; the database file grows once the thread has checkpointed them.
    const deadline = Date.now() + 10_000;
    while (statSync(file).size <= before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(statSync(file).size).toBeGreaterThan(before + 1_000_000);
    const count = database.sqlite!.prepare('select count(*) as n from workspaces').get() as { n: number };
    expect(count.n).toBe(10_000);
  });
});
