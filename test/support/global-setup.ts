import pg from 'pg';
import { openDatabase } from '../../src/store/database.js';
import { migrateToLatest } from '../../src/store/migrate.js';

/**
 * Finds the PostgreSQL server (TEST_DATABASE_URL, default the machine's 127.0.0.1:5432)
 * and builds a migrated template database that each suite clones, so every suite gets
 * a fresh database in a fraction of a second. With NUDGE_REQUIRE_POSTGRES=1 (CI) an
 * unreachable server fails the run instead of skipping the PostgreSQL suites.
 */
export default async function setup({ provide }: { provide: (key: string, value: unknown) => void }): Promise<() => Promise<void>> {
  const adminUrl = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const required = process.env.NUDGE_REQUIRE_POSTGRES === '1';
  const template = `nudge_template_${process.pid}`;
  const admin = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 3000 });
  try {
    await admin.connect();
  } catch (error) {
    if (required) throw new Error(`PostgreSQL is required (NUDGE_REQUIRE_POSTGRES=1) but ${adminUrl} is unreachable: ${String(error)}`);
    process.stderr.write(`PostgreSQL at ${adminUrl} is unreachable: running the SQLite suites only\n`);
    provide('pgAdminUrl', '');
    provide('pgTemplate', '');
    return async () => undefined;
  }
  // Drop templates left by runs that were killed.
  const stale = await admin.query<{ datname: string }>("select datname from pg_database where datname like 'nudge_template_%' or datname like 'nudge_t_%'");
  for (const { datname } of stale.rows) {
    const pid = Number(/_(\d+)(?:_|$)/.exec(datname)?.[1]);
    if (Number.isFinite(pid) && pidAlive(pid)) continue;
    await admin.query(`drop database if exists "${datname}" with (force)`);
  }
  await admin.query(`create database "${template}"`);
  const url = new URL(adminUrl);
  url.pathname = `/${template}`;
  const database = openDatabase({ databaseUrl: url.toString(), dataDir: '' });
  await migrateToLatest(database.db);
  await database.close();
  provide('pgAdminUrl', adminUrl);
  provide('pgTemplate', template);
  return async () => {
    await admin.query(`drop database if exists "${template}" with (force)`);
    await admin.end();
  };
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
