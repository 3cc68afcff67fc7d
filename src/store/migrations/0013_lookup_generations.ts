import { PostgresAdapter, sql, type Kysely } from 'kysely';

/**
 * Every process keeps the API tokens and definitions it looks up on each request in
 * memory (engine/lookup-cache.ts), and must hear of every change to either table,
 * whoever makes it: another API process, a worker, the command line. The database
 * itself tells it, from triggers, so no code path can forget to:
 *
 * - SQLite: each insert, update or delete counts one more in `lookup_generations`; a
 *   request reads the counters (one prepared statement) before trusting what it keeps.
 * - PostgreSQL: each row changed in one of the tables sends a NOTIFY on
 *   `nudge_lookups` (PostgreSQL folds a transaction's identical ones into one, sent at
 *   its commit); each process's listener forgets what it keeps. Row triggers, not
 *   statement triggers: an UPDATE that matches no row (a token's use already recorded)
 *   must not empty every process's cache.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  if (db.getExecutor().adapter instanceof PostgresAdapter) {
    await sql`create function nudge_lookups_changed() returns trigger language plpgsql as $$
      begin
        perform pg_notify('nudge_lookups', tg_table_name);
        return null;
      end
    $$`.execute(db);
    for (const table of ['api_tokens', 'definitions']) {
      await sql`create trigger ${sql.raw(`${table}_lookups_changed`)} after insert or update or delete on ${sql.table(table)} for each row execute function nudge_lookups_changed()`.execute(db);
    }
    return;
  }
  await sql`create table lookup_generations (name text primary key, generation integer not null)`.execute(db);
  await sql`insert into lookup_generations (name, generation) values ('api_tokens', 0), ('definitions', 0)`.execute(db);
  for (const table of ['api_tokens', 'definitions']) {
    for (const event of ['insert', 'update', 'delete']) {
      await sql`create trigger ${sql.raw(`${table}_${event}_generation`)} after ${sql.raw(event)} on ${sql.table(table)} begin update lookup_generations set generation = generation + 1 where name = ${sql.lit(table)}; end`.execute(db);
    }
  }
}

export async function down(): Promise<void> {
  throw new Error('Nudge migrations are forward-only; restore a backup to go back.');
}
