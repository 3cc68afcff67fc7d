import type BetterSqlite3 from 'better-sqlite3';
import { sql } from 'kysely';
import type { Db } from './database.js';

export type ColumnKind = 'text' | 'bigint' | 'integer';

/**
 * Bulk writes on the engine's hot path, one implementation per engine:
 *
 * - PostgreSQL: one multi-row statement per chunk, because every statement is a
 *   network round trip.
 * - SQLite: prepared statements run on the raw handle, inside the caller's transaction
 *   (same connection). Inserts go in chunks of a few fixed sizes (64, 32, … 1 rows),
 *   each statement prepared once: compiling and planning a thousand-row statement for
 *   every batch would cost milliseconds, while a statement of 64 rows opens the table's
 *   and indexes' cursors once for all of them. Updates run one prepared single-row
 *   statement per row, because SQLite plans `UPDATE … FROM (VALUES …)` as a scan.
 *
 * `raw` is the SQLite handle of the database the transaction belongs to (Database.sqlite).
 */
export interface BulkTarget {
  db: Db;
  raw: BetterSqlite3.Database | null;
}

const statements = new WeakMap<BetterSqlite3.Database, Map<string, BetterSqlite3.Statement>>();

/** A statement prepared once per SQLite handle, for the hot paths that bypass the query builder. */
export function preparedQuery(raw: BetterSqlite3.Database, source: string): BetterSqlite3.Statement {
  return prepared(raw, source);
}

/**
 * Runs a SELECT prepared once per SQLite handle and returns its rows as objects of the
 * given columns, which must be the statement's columns in order. better-sqlite3 builds an
 * object row by looking each column name up in V8's string table and adding the
 * properties one at a time; for the scheduler's reads of 500 rows of fifteen columns that
 * was a third of the read. Here the statement answers arrays (its raw mode) and a
 * function compiled for the column list makes each object in one literal.
 */
export function selectRows<T>(raw: BetterSqlite3.Database, source: string, columns: readonly string[], ...parameters: unknown[]): T[] {
  const statement = prepared(raw, source, columns);
  const build = compiled('build', columns, (names) => new Function('a', `return { ${names.map((c, i) => `${c}: a[${i}]`).join(', ')} };`) as (values: unknown[]) => T);
  const rows = statement.all(...parameters) as unknown[][];
  const out = new Array<T>(rows.length);
  for (let i = 0; i < rows.length; i += 1) out[i] = build(rows[i]!);
  return out;
}

/**
 * A statement prepared once per SQLite handle. With `rawColumns`, in raw mode (rows as
 * arrays), after checking that those are the statement's columns in order.
 */
function prepared(raw: BetterSqlite3.Database, source: string, rawColumns?: readonly string[]): BetterSqlite3.Statement {
  let cache = statements.get(raw);
  if (!cache) {
    cache = new Map();
    statements.set(raw, cache);
  }
  const key = rawColumns ? `raw\u0000${source}` : source;
  let statement = cache.get(key);
  if (!statement) {
    statement = raw.prepare(source);
    if (rawColumns) {
      statement.raw(true);
      const names = statement.columns().map((c) => c.name);
      if (names.join(',') !== rawColumns.join(',')) throw new Error(`columns ${rawColumns.join(', ')} do not match the statement's ${names.join(', ')}`);
    }
    cache.set(key, statement);
  }
  return statement;
}

const functions = new Map<string, unknown>();

/**
 * A function (or a statement's text) made once per purpose and column list. Reading `row[column]` with a
 * variable key for thirty columns of five hundred rows was a tenth of the scheduler's
 * time; a function compiled for the column list reads each property by a constant name,
 * which the engine turns into a direct field load. Column names come from the code
 * (table shapes), never from input, and are checked all the same.
 */
function compiled<F>(purpose: string, columns: readonly string[], make: (columns: readonly string[]) => F): F {
  const key = `${purpose}\u0000${columns.join('\u0000')}`;
  let fn = functions.get(key) as F | undefined;
  if (!fn) {
    for (const c of columns) if (!/^[a-z_][a-z0-9_]*$/.test(c)) throw new Error(`unexpected column name ${c}`);
    fn = make(columns);
    functions.set(key, fn);
  }
  return fn;
}

type Extractor = (row: Record<string, unknown>) => unknown[];

/** A function that lists a row's values in the given column order (undefined as null). */
export function extractorFor(columns: readonly string[]): Extractor {
  return compiled('extract', columns, (names) => new Function('r', `return [${names.map((c) => `r.${c} === undefined ? null : r.${c}`).join(', ')}];`) as Extractor);
}

type Writer = (row: Record<string, unknown>, into: unknown[], at: number) => void;

/** As extractorFor, but writes the values into `into` from index `at`, without an array per row. */
function writerFor(columns: readonly string[]): Writer {
  return compiled('write', columns, (names) => new Function('r', 'p', 'o', names.map((c, i) => `p[o + ${i}] = r.${c} === undefined ? null : r.${c};`).join('\n')) as Writer);
}

/** Every column any row sets: a row that leaves one out writes null there. */
function columnsOf(rows: ReadonlyArray<Record<string, unknown>>): string[] {
  const seen = new Set<string>();
  for (const row of rows) for (const column in row) seen.add(column);
  return [...seen];
}

/**
 * SQLite only: inserts rows one prepared statement each, skipping a row that violates a
 * unique index, and returns the ids of the rows inserted (`returning id` answers
 * nothing for a skipped row). For the enrollment path, where the query builder's work
 * per statement cost more than SQLite's.
 */
export function insertRowsReturningIds(raw: BetterSqlite3.Database, table: string, rows: ReadonlyArray<Record<string, unknown>>): string[] {
  if (rows.length === 0) return [];
  const columns = columnsOf(rows);
  const statement = prepared(raw, `insert into "${table}" (${columns.map((c) => `"${c}"`).join(', ')}) values (${columns.map(() => '?').join(', ')}) on conflict do nothing returning "id"`);
  const extract = extractorFor(columns);
  const ids: string[] = [];
  for (const row of rows) {
    const inserted = statement.get(extract(row)) as { id: string } | undefined;
    if (inserted) ids.push(inserted.id);
  }
  return ids;
}

/** Inserts rows; with `ignoreConflicts`, a row violating a unique index is skipped. */
export async function insertRows(target: BulkTarget, table: string, rows: ReadonlyArray<Record<string, unknown>>, ignoreConflicts = false): Promise<void> {
  if (rows.length === 0) return;
  const columns = columnsOf(rows);
  if (target.raw) {
    insertChunks(target.raw, table, columns, rows, ignoreConflicts);
    return;
  }
  const kinds = columnKinds(table);
  const arrays = columns.map((c) => sql`cast(${rows.map((row) => pgValue(row[c]))} as ${sql.raw(`${kinds[c] ?? 'text'}[]`)})`);
  await sql`insert into ${sql.table(table)} (${sql.join(columns.map((c) => sql.ref(c)))}) select * from unnest(${sql.join(arrays)})${ignoreConflicts ? sql` on conflict do nothing` : sql``}`.execute(target.db);
}

/** Rows per SQLite insert statement: the largest first, then the smaller ones for the rest. */
const chunkSizes = [64, 32, 16, 8, 4, 2, 1] as const;

/**
 * SQLite: inserts the rows in statements of `chunkSizes` rows each (500 rows: seven of 64,
 * then 32, 16 and 4), so at most seven statements per table and column list are ever
 * prepared. With `ignoreConflicts` each row that violates a unique index is skipped
 * alone, as with one statement per row.
 */
function insertChunks(raw: BetterSqlite3.Database, table: string, columns: readonly string[], rows: ReadonlyArray<Record<string, unknown>>, ignoreConflicts: boolean): void {
  const write = writerFor(columns);
  const width = columns.length;
  let at = 0;
  for (const size of chunkSizes) {
    // SQLite takes at most 32,766 parameters in one statement.
    if (rows.length - at < size || (size > 1 && size * width > 32_766)) continue;
    // The statement's text is built once per table, size and column list (and keeps its
    // hash), not at every batch.
    const source = compiled(`insert\u0000${table}\u0000${size}\u0000${ignoreConflicts}`, columns, (names) => {
      const tuple = `(${names.map(() => '?').join(', ')})`;
      return `insert into "${table}" (${names.map((c) => `"${c}"`).join(', ')}) values ${Array.from({ length: size }, () => tuple).join(', ')}${ignoreConflicts ? ' on conflict do nothing' : ''}`;
    });
    const statement = prepared(raw, source);
    const parameters = new Array<unknown>(size * width);
    while (rows.length - at >= size) {
      for (let r = 0; r < size; r += 1) write(rows[at + r]!, parameters, r * width);
      statement.run(parameters);
      at += size;
    }
  }
}

/**
 * Updates many rows by key. On PostgreSQL: `UPDATE t SET c = v.columnN … FROM (VALUES …) v
 * WHERE t.key = v.column1`, with casts that give the parameters their types.
 */
export async function updateRows(
  target: BulkTarget,
  table: string,
  key: string,
  columns: ReadonlyArray<{ name: string; kind: ColumnKind }>,
  rows: ReadonlyArray<Record<string, unknown>>,
  /** Only rows whose column still holds this value are updated (a compare-and-set). */
  onlyIf?: { column: string; equals: string },
): Promise<void> {
  if (rows.length === 0) return;
  if (onlyIf && !/^[a-z_]+$/.test(onlyIf.column)) throw new Error(`bad column ${onlyIf.column}`);
  if (target.raw) {
    const guard = onlyIf ? ` and "${onlyIf.column}" = '${onlyIf.equals.replace(/'/g, "''")}'` : '';
    const statement = prepared(target.raw, `update "${table}" set ${columns.map((c) => `"${c.name}" = ?`).join(', ')} where "${key}" = ?${guard}`);
    const extract = extractorFor([...columns.map((c) => c.name), key]);
    for (const row of rows) statement.run(extract(row));
    return;
  }
  // One array parameter per column, expanded by unnest: PostgreSQL parses and plans a
  // statement of a dozen parameters instead of one of thousands.
  const names = [key, ...columns.map((c) => c.name)];
  const kinds: ColumnKind[] = ['text', ...columns.map((c) => c.kind)];
  const arrays = names.map((name, i) => sql`cast(${rows.map((row) => pgValue(row[name]))} as ${sql.raw(`${kinds[i]}[]`)})`);
  const sets = sql.join(columns.map((c) => sql`${sql.ref(c.name)} = v.${sql.ref(c.name)}`));
  const guard = onlyIf ? sql` and ${sql.ref(`${table}.${onlyIf.column}`)} = ${onlyIf.equals}` : sql``;
  await sql`update ${sql.table(table)} set ${sets} from unnest(${sql.join(arrays)}) as v(${sql.join(names.map((n) => sql.ref(n)))}) where ${sql.ref(`${table}.${key}`)} = v.${sql.ref(key)}${guard}`.execute(target.db);
}

function pgValue(value: unknown): unknown {
  return value === undefined ? null : value;
}

/** Column types of the tables written in bulk; anything not listed is text. */
const bulkColumnKinds: Record<string, Record<string, ColumnKind>> = {
  messages: {
    marketing: 'integer', attempts: 'integer', next_attempt_at: 'bigint', lease_until: 'bigint', created_at: 'bigint', updated_at: 'bigint',
    sent_at: 'bigint', delivered_at: 'bigint', read_at: 'bigint', failed_at: 'bigint', segments: 'integer',
  },
  session_steps: { visit: 'integer', at: 'bigint' },
};

function columnKinds(table: string): Record<string, ColumnKind> {
  return bulkColumnKinds[table] ?? {};
}

/** Runs `statement` (with `?` placeholders, SQLite) once per parameter list. */
export function runEach(raw: BetterSqlite3.Database, statement: string, parameters: ReadonlyArray<unknown[]>): void {
  const prepared_ = prepared(raw, statement);
  for (const p of parameters) prepared_.run(p);
}
