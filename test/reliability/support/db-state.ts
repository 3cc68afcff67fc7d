import { sql } from 'kysely';
import type { Database } from '../../../src/store/database.js';

/**
 * A cheap fingerprint of what the database holds: per table, the row count and the sum
 * of `updated_at` where the table has one, in one round trip. Equal fingerprints
 * before and after a request mean it inserted, deleted and (for tables that keep
 * `updated_at`) updated nothing. With `workspaceId`, only that workspace's rows count.
 */

/** Written by design on refused requests: rate-limit counters, idempotency records, the log of refused webhooks. */
export const bookkeepingTables = ['rate_limits', 'idempotency_keys', 'webhook_events', 'kysely_migration', 'kysely_migration_lock'];

interface TableInfo {
  name: string;
  updatedAt: boolean;
  workspaceId: boolean;
}

const cache = new WeakMap<object, TableInfo[]>();

async function tables(database: Database): Promise<TableInfo[]> {
  const cached = cache.get(database.db);
  if (cached) return cached;
  let columns: Array<{ table_name: string; column_name: string }>;
  if (database.dialect === 'postgres') {
    columns = (await sql<{ table_name: string; column_name: string }>`select table_name, column_name from information_schema.columns where table_schema = current_schema()`.execute(database.db)).rows;
  } else {
    columns = (
      await sql<{ table_name: string; column_name: string }>`select m.name as table_name, p.name as column_name from sqlite_master m join pragma_table_info(m.name) p where m.type = 'table' and m.name not like 'sqlite_%'`.execute(database.db)
    ).rows;
  }
  const byTable = new Map<string, Set<string>>();
  for (const c of columns) byTable.set(c.table_name, (byTable.get(c.table_name) ?? new Set()).add(c.column_name));
  const info = [...byTable.entries()]
    .filter(([name]) => !bookkeepingTables.includes(name))
    .map(([name, cols]) => ({ name, updatedAt: cols.has('updated_at'), workspaceId: cols.has('workspace_id') }))
    .sort((a, b) => a.name.localeCompare(b.name));
  cache.set(database.db, info);
  return info;
}

export type Fingerprint = Record<string, string>;

export async function fingerprint(database: Database, options: { workspaceId?: string } = {}): Promise<Fingerprint> {
  const list = (await tables(database)).filter((t) => options.workspaceId === undefined || t.workspaceId);
  const parts = list.map((t) => {
    const where = options.workspaceId === undefined ? sql`` : sql` where workspace_id = ${options.workspaceId}`;
    const updated = t.updatedAt ? sql`coalesce(sum(updated_at), 0)` : sql`0`;
    return sql`select ${sql.lit(t.name)} as t, count(*) as n, ${updated} as u from ${sql.table(t.name)}${where}`;
  });
  const rows = (await sql<{ t: string; n: number | string; u: number | string }>`${sql.join(parts, sql` union all `)}`.execute(database.db)).rows;
  const out: Fingerprint = {};
  for (const r of rows) out[r.t] = `${Number(r.n)}:${String(r.u)}`;
  return out;
}

/** The tables whose fingerprint differs. */
export function changedTables(before: Fingerprint, after: Fingerprint): string[] {
  return Object.keys({ ...before, ...after }).filter((t) => before[t] !== after[t]);
}
