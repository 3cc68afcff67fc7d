import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../../src/store/database.js';
import { rememberAutomationVersion } from '../../src/store/automation-versions-read.js';
import { readAutomationVersion } from '../../src/store/definition-repository.js';

/** SQLite's grouped commits (src/store/grouped-commit.ts), through Database.transact. */
describe('grouped commits on SQLite', () => {
  const opened: Array<{ database: Database; dir: string }> = [];
  afterEach(async () => {
    for (const { database, dir } of opened.splice(0)) {
      await database.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  async function open() {
    const dir = mkdtempSync(join(tmpdir(), 'nudge-group-'));
    const statements: string[] = [];
    const database = openDatabase({ databaseUrl: null, dataDir: dir, onQuery: (text) => statements.push(text) });
    opened.push({ database, dir });
    await sql`create table items (id integer primary key, name text not null)`.execute(database.db);
    await sql`create table parents (id integer primary key)`.execute(database.db);
    await sql`create table children (id integer primary key, parent integer references parents (id) deferrable initially deferred)`.execute(database.db);
    statements.length = 0;
    return { database, statements };
  }
  const names = async (database: Database) => (await sql<{ name: string }>`select name from items order by id`.execute(database.db)).rows.map((r) => r.name);

  it('commits concurrent units together, each answered only after the commit', async () => {
    const { database, statements } = await open();
    const answeredBeforeCommit: number[] = [];
    const units = Array.from({ length: 20 }, (_, i) =>
      database
        .transact(async (trx) => {
          await sql`insert into items (name) values (${`unit ${i}`})`.execute(trx);
          return i;
        })
        .then((value) => {
          if (!statements.includes('commit')) answeredBeforeCommit.push(value);
          return value;
        }),
    );
    expect(await Promise.all(units)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(answeredBeforeCommit).toEqual([]);
    expect(await names(database)).toHaveLength(20);
    // Far fewer commits than units: they shared them.
    expect(statements.filter((s) => s === 'commit').length).toBeLessThan(5);
  });

  it('rolls back only the unit that failed, and the others commit', async () => {
    const { database } = await open();
    const results = await Promise.allSettled(
      ['a', 'b', 'c'].map((name) =>
        database.transact(async (trx) => {
          await sql`insert into items (name) values (${name})`.execute(trx);
          if (name === 'b') throw new Error('b refused');
          return name;
        }),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason.message).toBe('b refused');
    expect(await names(database)).toEqual(['a', 'c']);
  });

  it('keeps nothing a failed unit remembered for the units after it in the same transaction', async () => {
    const { database } = await open();
    await sql`create table workspaces (id text primary key, automation_version integer not null)`.execute(database.db);
    await sql`insert into workspaces (id, automation_version) values ('w', 1)`.execute(database.db);
    const results = await Promise.allSettled([
      database.transact(async (trx) => {
        // As a contact upsert does when its insert returns the version; then the unit fails.
        rememberAutomationVersion(trx, 'w', 7);
        expect(await readAutomationVersion(trx, 'w')).toBe(7);
        throw new Error('a refused');
      }),
      database.transact((trx) => readAutomationVersion(trx, 'w')),
    ]);
    expect(results[0]!.status).toBe('rejected');
    expect(results[1]).toEqual({ status: 'fulfilled', value: 1 });
  });

  it('fails every unit of a batch whose commit fails, and keeps none of them', async () => {
    const { database } = await open();
    const results = await Promise.allSettled([
      database.transact(async (trx) => sql`insert into items (name) values ('kept?')`.execute(trx)),
      // A deferred foreign key is only checked at COMMIT: this unit breaks the shared commit.
      database.transact(async (trx) => sql`insert into children (id, parent) values (1, 999)`.execute(trx)),
    ]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(await names(database)).toEqual([]);
    // The next unit commits normally.
    await database.transact(async (trx) => sql`insert into items (name) values ('after')`.execute(trx));
    expect(await names(database)).toEqual(['after']);
  });
});
