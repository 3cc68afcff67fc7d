import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../../src/domain/ids.js';
import { insertRows, selectRows } from '../../src/store/batch.js';
import { createTestDatabase, dialects, type TestDatabase } from '../support/databases.js';

/**
 * The engine's bulk inserts. On SQLite they run in statements of 64, 32, … 1 rows; these
 * check that every row of every batch size lands once with each of its values, that a
 * row left without a column writes null there, and that a conflicting row is skipped
 * alone wherever it falls in a chunk.
 */
describe.each(dialects)('insertRows on %s', (dialect) => {
  let database: TestDatabase;
  const now = Date.now();

  beforeAll(async () => {
    database = await createTestDatabase(dialect);
  });
  afterAll(async () => database.close());

  const step = (sessionId: string, i: number) => ({
    id: newId(now),
    workspace_id: 'ws_batch',
    session_id: sessionId,
    node_id: `node-${i}`,
    node_type: 'sms',
    visit: i,
    outcome: 'sent',
    detail: i % 3 === 0 ? null : JSON.stringify({ i }),
    at: now + i,
  });

  async function stepsOf(sessionId: string) {
    return database.db.selectFrom('session_steps').selectAll().where('session_id', '=', sessionId).orderBy('visit').execute();
  }

  it.each([1, 2, 3, 63, 64, 65, 127, 500, 501])('writes all of %i rows with their values', async (count) => {
    const sessionId = newId();
    const rows = Array.from({ length: count }, (_, i) => step(sessionId, i));
    await database.db.transaction().execute((trx) => insertRows({ db: trx, raw: database.sqlite }, 'session_steps', rows));
    const stored = await stepsOf(sessionId);
    expect(stored.map((r) => ({ ...r, visit: Number(r.visit), at: Number(r.at) }))).toEqual(rows);
  });

  it('writes null for a column some rows leave out', async () => {
    const sessionId = newId();
    const rows: Array<Record<string, unknown>> = Array.from({ length: 70 }, (_, i) => step(sessionId, i));
    for (const [i, row] of rows.entries()) if (i % 2 === 1) delete row.detail;
    await database.db.transaction().execute((trx) => insertRows({ db: trx, raw: database.sqlite }, 'session_steps', rows));
    const stored = await stepsOf(sessionId);
    expect(stored).toHaveLength(70);
    for (const [i, row] of stored.entries()) expect(row.detail).toBe(i % 2 === 1 || i % 3 === 0 ? null : JSON.stringify({ i }));
  });

  it('skips only the rows that conflict, inside a chunk, at its edges and between chunks', async () => {
    const sessionId = newId();
    const first = Array.from({ length: 100 }, (_, i) => step(sessionId, i));
    await database.db.transaction().execute((trx) => insertRows({ db: trx, raw: database.sqlite }, 'session_steps', first.filter((_, i) => i % 10 === 0)));
    // 100 rows, 10 of which exist already (ids at 0, 10, … 90, across the 64-row chunk and the rest),
    // and one id twice in the same statement.
    const again = [...first.map((r) => ({ ...r, outcome: 'again' })), { ...first[5]!, outcome: 'twice' }];
    await database.db.transaction().execute((trx) => insertRows({ db: trx, raw: database.sqlite }, 'session_steps', again, true));
    const stored = await stepsOf(sessionId);
    expect(stored).toHaveLength(100);
    for (const row of stored) expect(row.outcome).toBe(Number(row.visit) % 10 === 0 ? 'sent' : 'again');
  });

  it('fails the whole insert on a conflict when conflicts are not ignored, and writes nothing', async () => {
    const sessionId = newId();
    const rows = Array.from({ length: 80 }, (_, i) => step(sessionId, i));
    rows[70] = { ...rows[70]!, id: rows[3]!.id };
    await expect(database.db.transaction().execute((trx) => insertRows({ db: trx, raw: database.sqlite }, 'session_steps', rows))).rejects.toThrow();
    expect(await stepsOf(sessionId)).toEqual([]);
  });
});

describe('selectRows on sqlite', () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase('sqlite');
  });
  afterAll(async () => database.close());

  it('answers objects of the named columns, as the statement would', async () => {
    const raw = database.sqlite!;
    raw.exec("create table pairs (a text, b integer, c text); insert into pairs values ('x', 1, null), ('y', 2, 'z')");
    const source = 'select a, b, c from pairs order by a';
    expect(selectRows(raw, source, ['a', 'b', 'c'])).toEqual(raw.prepare(source).all());
    expect(selectRows(raw, 'select a, b from pairs where b > ?', ['a', 'b'], 1)).toEqual([{ a: 'y', b: 2 }]);
  });

  it('refuses a column list that does not match the statement', () => {
    expect(() => selectRows(database.sqlite!, 'select a, b from pairs', ['b', 'a'])).toThrow(/do not match/);
  });
});
