import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../../src/domain/ids.js';
import { rawIn } from '../../src/store/database.js';
import { countMessagesOnContacts } from '../../src/store/message-repository.js';
import { createTestDatabase, dialects, type TestDatabase } from '../support/databases.js';

/**
 * Every message sent moves its contact's counters, so no index may cover them: each
 * one would be rewritten at every send, and on PostgreSQL a single one makes every
 * counter update rewrite all of the contact's index entries (no HOT update).
 */
describe.each(dialects)('contact message counters on %s', (dialect) => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createTestDatabase(dialect);
  });
  afterAll(async () => database.close());

  async function indexedColumns(): Promise<Map<string, string[]>> {
    const byIndex = new Map<string, string[]>();
    if (dialect === 'sqlite') {
      const indexes = (await sql<{ name: string }>`select name from pragma_index_list('contacts')`.execute(database.db)).rows;
      for (const { name } of indexes) {
        const columns = (await sql<{ name: string }>`select name from pragma_index_info(${name})`.execute(database.db)).rows;
        byIndex.set(name, columns.map((c) => c.name));
      }
      return byIndex;
    }
    const rows = (
      await sql<{ index: string; column: string }>`
        select i.relname as index, a.attname as column
        from pg_index x
        join pg_class t on t.oid = x.indrelid
        join pg_class i on i.oid = x.indexrelid
        join pg_attribute a on a.attrelid = t.oid and a.attnum = any(x.indkey)
        where t.relname = 'contacts'`.execute(database.db)
    ).rows;
    for (const r of rows) byIndex.set(r.index, [...(byIndex.get(r.index) ?? []), r.column]);
    return byIndex;
  }

  it('has no index on total_messages or last_message_at, and still indexes the contact lookups', async () => {
    const indexes = await indexedColumns();
    const covering = [...indexes].filter(([, columns]) => columns.includes('total_messages') || columns.includes('last_message_at'));
    expect(covering).toEqual([]);
    const names = [...indexes.keys()];
    expect(names).toEqual(expect.arrayContaining(['contacts_workspace_phone', 'contacts_workspace_email', 'contacts_workspace_external', 'contacts_workspace_created']));
  });

  it('counts messages on contacts, and on PostgreSQL updates them in place (HOT)', async () => {
    const workspaceId = newId();
    const now = Date.now();
    await database.db.insertInto('workspaces').values({ id: workspaceId, name: 'Acme', settings: '{}', created_at: now }).execute();
    const ids = Array.from({ length: 20 }, () => newId());
    await database.db
      .insertInto('contacts')
      .values(ids.map((id, i) => ({ id, workspace_id: workspaceId, phone: `+1415555${String(1000 + i)}`, metadata: '{}', source: 'api', search_text: '', total_messages: 0, created_at: now, updated_at: now })))
      .execute();

    const hotUpdates = await database.db.transaction().execute(async (trx) => {
      const raw = rawIn(database, trx);
      await countMessagesOnContacts({ db: trx, raw }, new Map(ids.map((id) => [id, { count: 2, at: now + 5 }])));
      await countMessagesOnContacts({ db: trx, raw }, new Map(ids.slice(0, 5).map((id) => [id, { count: 1, at: now + 1 }])));
      if (dialect === 'sqlite') return null;
      // The transaction's own counts, with no wait for the statistics collector.
      const stats = await sql<{ upd: string; hot: string }>`
        select n_tup_upd as upd, n_tup_hot_upd as hot from pg_stat_xact_user_tables where relname = 'contacts'`.execute(trx);
      return stats.rows[0]!;
    });

    const rows = await database.db.selectFrom('contacts').select(['id', 'total_messages', 'last_message_at']).where('workspace_id', '=', workspaceId).execute();
    const byId = new Map(rows.map((r) => [r.id, r]));
    for (const [i, id] of ids.entries()) {
      expect(byId.get(id)).toEqual({ id, total_messages: i < 5 ? 3 : 2, last_message_at: now + 5 });
    }
    if (hotUpdates !== null) {
      expect(Number(hotUpdates.upd)).toBe(25);
      // Twenty fresh rows fill part of one page, so every new version fits beside the old one: with no index on the counters, all are HOT.
      expect(Number(hotUpdates.hot)).toBe(25);
    }
  });

  it('counts a batch whose contacts got different numbers of messages at different times', async () => {
    const workspaceId = newId();
    const now = Date.now();
    await database.db.insertInto('workspaces').values({ id: workspaceId, name: 'Mixed', settings: '{}', created_at: now }).execute();
    const ids = Array.from({ length: 12 }, () => newId());
    await database.db
      .insertInto('contacts')
      .values(ids.map((id, i) => ({ id, workspace_id: workspaceId, phone: `+1415556${String(1000 + i)}`, metadata: '{}', source: 'api', search_text: '', total_messages: 0, last_message_at: i === 11 ? now + 100 : null, created_at: now, updated_at: now })))
      .execute();
    // Groups of several contacts (count 1 at now, count 2 at now + 1) and contacts alone in theirs;
    // the last contact's newer last_message_at is kept.
    const batch = new Map(ids.map((id, i) => [id, i < 6 ? { count: 1, at: now } : i < 9 ? { count: 2, at: now + 1 } : { count: i, at: now + i }]));
    await database.db.transaction().execute((trx) => countMessagesOnContacts({ db: trx, raw: rawIn(database, trx) }, batch));
    const rows = await database.db.selectFrom('contacts').select(['id', 'total_messages', 'last_message_at']).where('workspace_id', '=', workspaceId).execute();
    const byId = new Map(rows.map((r) => [r.id, { total_messages: Number(r.total_messages), last_message_at: Number(r.last_message_at) }]));
    for (const [i, id] of ids.entries()) {
      const { count, at } = batch.get(id)!;
      expect(byId.get(id)).toEqual({ total_messages: count, last_message_at: i === 11 ? now + 100 : at });
    }
  });
});
