import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { inject } from 'vitest';
import { openDatabase, type Database, type Dialect } from '../../src/store/database.js';
import { migrateToLatest } from '../../src/store/migrate.js';

declare module 'vitest' {
  export interface ProvidedContext {
    pgAdminUrl: string;
    pgTemplate: string;
  }
}

/** The engines every store and engine suite runs against: SQLite always, PostgreSQL when reachable. */
export const dialects: Dialect[] = inject('pgTemplate') ? ['sqlite', 'postgres'] : ['sqlite'];

let counter = 0;

export interface TestDatabase extends Database {
  /** The URL a child process can use for the same database (null on SQLite). */
  readonly databaseUrl: string | null;
  readonly dataDir: string;
}

/** A fresh, migrated database of the given engine, dropped again by `close()`. */
export async function createTestDatabase(dialect: Dialect, options: { poolSize?: number } = {}): Promise<TestDatabase> {
  const dataDir = mkdtempSync(join(tmpdir(), 'nudge-test-'));
  if (dialect === 'sqlite') {
    const database = openDatabase({ databaseUrl: null, dataDir });
    await migrateToLatest(database.db);
    return {
      ...database,
      databaseUrl: null,
      dataDir,
      close: async () => {
        await database.close();
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  }
  const adminUrl = inject('pgAdminUrl');
  const template = inject('pgTemplate');
  const name = `nudge_t_${process.pid}_${Date.now()}_${counter++}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`create database "${name}" template "${template}"`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const database = openDatabase({ databaseUrl: url.toString(), dataDir, poolSize: options.poolSize });
  return {
    ...database,
    databaseUrl: url.toString(),
    dataDir,
    close: async () => {
      await database.close();
      const dropper = new pg.Client({ connectionString: adminUrl });
      await dropper.connect();
      await dropper.query(`drop database if exists "${name}" with (force)`);
      await dropper.end();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
