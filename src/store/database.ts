import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { CompiledQuery, Kysely, type LogEvent, PostgresDialect, SqliteDialect, type DatabaseConnection, type Driver, type Transaction } from 'kysely';
import pg from 'pg';
import type { Schema } from './schema.js';
import { GroupedCommit } from './grouped-commit.js';
import { startCheckpointer, type Checkpointer } from './sqlite-checkpointer.js';

export type Db = Kysely<Schema>;
export type Tx = Transaction<Schema>;
export type Dialect = 'sqlite' | 'postgres';

export interface Database {
  readonly db: Db;
  readonly dialect: Dialect;
  /** The PostgreSQL connection string (for LISTEN), or null on SQLite. */
  readonly url: string | null;
  /** The raw SQLite handle, for the few hot paths that use prepared statements directly. */
  readonly sqlite: BetterSqlite3.Database | null;
  /**
   * Runs `work` in a transaction that, on SQLite, may share its commit with concurrent
   * ones (see grouped-commit.ts); on PostgreSQL a transaction of its own. For short
   * units that touch only the database, on paths where many run at once (API writes).
   */
  transact<T>(work: (trx: Tx) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/**
 * The raw SQLite handle when `db` is a transaction on it, else null. Inside a
 * transaction the connection is the caller's alone (SQLite has one), so a prepared
 * statement run on the handle reads and writes within that transaction; outside one
 * it would bypass the connection's queue and could read another caller's uncommitted
 * writes, so callers that are not in a transaction get null and use the query builder.
 */
export function rawIn(database: Database, db: Db | Tx): BetterSqlite3.Database | null {
  return database.sqlite !== null && db.isTransaction ? database.sqlite : null;
}

export interface DatabaseOptions {
  databaseUrl: string | null;
  dataDir: string;
  /** SQLite file name inside dataDir (tests use their own). */
  fileName?: string;
  poolSize?: number;
  /** Called after every query with its SQL and duration (profiling, trace logs). */
  onQuery?: (sql: string, durationMs: number) => void;
  /**
   * SQLite: run WAL checkpoints on a background thread instead of inside commits (see
   * sqlite-checkpointer.ts). The processes of `nudge` do; tests open many short-lived
   * databases and keep SQLite's own checkpoints.
   */
  backgroundCheckpoints?: boolean;
  /** With background checkpoints: the WAL size past which the thread makes it start over (sqlite-checkpointer.ts); 256 MB unless set. */
  walRestartBytes?: number;
  /** With background checkpoints: milliseconds between the thread's passes; 250 unless set. */
  checkpointIntervalMs?: number;
}

/**
 * SQLite's default BEGIN is DEFERRED: a transaction that reads first and writes later
 * fails at once with SQLITE_BUSY when another process wrote in between, and
 * busy_timeout cannot help it. BEGIN IMMEDIATE takes the write lock up front, so
 * `nudge api` and `nudge worker` processes sharing one file wait instead of failing.
 */
class ImmediateSqliteDialect extends SqliteDialect {
  constructor(
    config: ConstructorParameters<typeof SqliteDialect>[0],
    /** Called after each commit (the WAL restart the checkpoint thread may ask for). */
    private readonly afterCommit: () => void = () => undefined,
  ) {
    super(config);
  }

  override createDriver(): Driver {
    const driver = super.createDriver();
    const original = driver.beginTransaction.bind(driver);
    driver.beginTransaction = async (connection: DatabaseConnection, settings) => {
      if (settings.isolationLevel || settings.accessMode) return original(connection, settings);
      await connection.executeQuery(CompiledQuery.raw('begin immediate'));
    };
    const commit = driver.commitTransaction.bind(driver);
    driver.commitTransaction = async (connection: DatabaseConnection) => {
      await commit(connection);
      this.afterCommit();
    };
    return driver;
  }
}

export function openDatabase(options: DatabaseOptions): Database {
  const onQuery = options.onQuery;
  const log = onQuery ? (event: LogEvent) => onQuery(event.query.sql, event.queryDurationMillis) : undefined;
  if (options.databaseUrl) {
    const pool = new pg.Pool({
      connectionString: options.databaseUrl,
      max: options.poolSize ?? 10,
      // bigint columns hold millisecond times and counts well inside 2^53.
      types: {
        getTypeParser: (oid: number, format?: string) =>
          oid === 20 ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format as 'text'),
      },
    });
    // An idle client losing its server must not crash the process; the pool replaces it.
    pool.on('error', () => undefined);
    const db = new Kysely<Schema>({ dialect: new PostgresDialect({ pool }), log });
    return { db, dialect: 'postgres', url: options.databaseUrl, sqlite: null, transact: (work) => db.transaction().execute(work), close: () => db.destroy() };
  }

  const dir = resolve(options.dataDir);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, options.fileName ?? 'nudge.sqlite');
  const sqlite = new BetterSqlite3(file);
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('busy_timeout = 10000');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('cache_size = -65536');
  // Savepoints (each unit of a group commit has one) journal every page they change
  // to a temporary file unless temporary storage is in memory: during enrollment that
  // was three quarters of the process's writes, 1.6 GB for 20,000 enrollments.
  sqlite.pragma('temp_store = MEMORY');
  sqlite.defaultSafeIntegers(false);
  let checkpointer: Checkpointer | null = null;
  if (options.backgroundCheckpoints) {
    sqlite.pragma('wal_autocheckpoint = 0');
    const walRestartBytes = options.walRestartBytes ?? 256 * 1024 * 1024;
    // When the WAL starts over, the commit that does so cuts a -wal file a burst made
    // larger back to that size (cutting it further only made the next commits extend it
    // again: 2 % slower on the drip).
    sqlite.pragma(`journal_size_limit = ${walRestartBytes}`);
    checkpointer = startCheckpointer(file, createRequire(import.meta.url).resolve('better-sqlite3'), { walRestartBytes, intervalMs: options.checkpointIntervalMs });
  } else {
    // Fewer, larger checkpoints: each one syncs the database file, the costliest step of a commit.
    sqlite.pragma('wal_autocheckpoint = 10000');
  }
  const db = new Kysely<Schema>({ dialect: new ImmediateSqliteDialect({ database: withStatementCache(sqlite) }, () => checkpointer?.restartIfAsked(sqlite)), log });
  const grouped = new GroupedCommit(db);
  return {
    db,
    dialect: 'sqlite',
    url: null,
    sqlite,
    transact: (work) => grouped.run(work),
    close: async () => {
      await checkpointer?.stop();
      await db.destroy();
    },
  };
}

/**
 * Kysely prepares every query anew; on SQLite preparing costs as much as running a
 * small statement. The same SQL text always yields the same prepared statement, so
 * keep the most recent ones (statements are only run with all/run, never left
 * iterating, so reuse is safe).
 */
function withStatementCache(sqlite: BetterSqlite3.Database, capacity = 500): BetterSqlite3.Database {
  const cache = new Map<string, BetterSqlite3.Statement>();
  const prepare = sqlite.prepare.bind(sqlite);
  return new Proxy(sqlite, {
    get(target, property, receiver) {
      if (property !== 'prepare') return Reflect.get(target, property, receiver) as unknown;
      return (source: string) => {
        let statement = cache.get(source);
        if (statement) {
          cache.delete(source);
        } else {
          statement = prepare(source);
          if (cache.size >= capacity) cache.delete(cache.keys().next().value as string);
        }
        cache.set(source, statement);
        return statement;
      };
    },
  });
}
