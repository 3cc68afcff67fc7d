import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
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

  async function open(walRestartBytes?: number, checkpointIntervalMs?: number): Promise<{ database: Database; file: string }> {
    const dir = mkdtempSync(join(tmpdir(), 'nudge-ckpt-'));
    const database = openDatabase({ databaseUrl: null, dataDir: dir, backgroundCheckpoints: true, walRestartBytes, checkpointIntervalMs });
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
    // The thread may have copied part of them while the loop ran, so wait for all of it, not for any growth.
    const deadline = Date.now() + 10_000;
    while (statSync(file).size <= before + 1_000_000 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(statSync(file).size).toBeGreaterThan(before + 1_000_000);
    const count = database.sqlite!.prepare('select count(*) as n from workspaces').get() as { n: number };
    expect(count.n).toBe(10_000);
  });

  it('keeps the WAL bounded under a steady stream of writes, which passive checkpoints alone let grow without end', async () => {
    const limit = 4 * 1024 * 1024;
    // Passes every 20 ms, so that what the writes add between two passes stays small beside the limit.
    const { database, file } = await open(limit, 20);
    const wal = `${file}-wal`;
    const size = () => (existsSync(wal) ? statSync(wal).size : 0);
    const text = 'x'.repeat(1000);
    let largest = 0;
    let appended = 0;
    let previous = size();
    // Transactions one after another through the query builder, as the API makes them,
    // until about 200 MB of pages have gone through the WAL.
    for (let t = 0; appended < 200 * 1024 * 1024; t += 1) {
      await database.db.transaction().execute(async (trx) => {
        await trx.insertInto('workspaces').values(Array.from({ length: 8 }, (_, i) => ({ id: `w-${t}-${i}`, name: `${text} ${t}-${i}`, settings: '{}', created_at: t }))).execute();
        await trx.updateTable('workspaces').set({ settings: `{"n":${t}}` }).where('id', '=', 'w-0-0').execute();
      });
      const now = size();
      appended += now >= previous ? now - previous : now;
      previous = now;
      largest = Math.max(largest, now);
    }
    // Past the limit, the commit after the next pass starts the WAL over: it holds the
    // limit plus what a pass or two of writes add, far below the 200 MB that went through
    // it (without the restart it holds all of them).
    expect(largest).toBeLessThan(48 * 1024 * 1024);
    const count = database.sqlite!.prepare('select count(*) as n from workspaces').get() as { n: number };
    expect(count.n).toBeGreaterThan(20_000);
  }, 120_000);
});
