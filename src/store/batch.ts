import { sql, type RawBuilder } from 'kysely';
import type { Db } from './database.js';

export type ColumnKind = 'text' | 'bigint' | 'integer';

/**
 * Updates many rows in one statement: `UPDATE t SET c = v.columnN … FROM (VALUES …) v
 * WHERE t.key = v.column1`. The same SQL runs on SQLite (3.33+) and PostgreSQL: both
 * name VALUES columns column1, column2, …; the casts give PostgreSQL the types its
 * parameters would otherwise lack. One statement per batch instead of one per row is
 * what keeps the engine's hot path fast on PostgreSQL.
 */
export async function updateMany(
  db: Db,
  table: string,
  key: string,
  columns: ReadonlyArray<{ name: string; kind: ColumnKind }>,
  rows: ReadonlyArray<Record<string, unknown>>,
): Promise<void> {
  if (rows.length === 0) return;
  // SQLite allows 32,766 parameters per statement; stay well inside it.
  const perStatement = Math.max(1, Math.floor(20_000 / (columns.length + 1)));
  for (let start = 0; start < rows.length; start += perStatement) {
    const chunk = rows.slice(start, start + perStatement);
    const values = sql.join(
      chunk.map(
        (row) =>
          sql`(${sql.join([cast(row[key], 'text'), ...columns.map((c) => cast(row[c.name], c.kind))])})`,
      ),
    );
    const sets = sql.join(columns.map((c, i) => sql`${sql.ref(c.name)} = v.${sql.raw(`column${i + 2}`)}`));
    await sql`update ${sql.table(table)} set ${sets} from (values ${values}) as v where ${sql.ref(`${table}.${key}`)} = v.column1`.execute(db);
  }
}

function cast(value: unknown, kind: ColumnKind): RawBuilder<unknown> {
  return sql`cast(${value ?? null} as ${sql.raw(kind)})`;
}
