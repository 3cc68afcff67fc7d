import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../../src/domain/ids.js';
import { saveSessions, type SessionUpdate } from '../../src/store/session-repository.js';
import { createTestDatabase, dialects, type TestDatabase } from '../support/databases.js';

/**
 * The scheduler's session writes. On SQLite a session that stays active is written by a
 * statement that leaves `active` out (so the one-active index is not touched); these
 * check that it writes every other column, and that the sessions it does not apply to
 * (ending, or not active when read) still get the full update.
 */
describe.each(dialects)('saveSessions on %s', (dialect) => {
  let database: TestDatabase;
  const definitionId = newId();
  const now = Date.now();

  beforeAll(async () => {
    database = await createTestDatabase(dialect);
  });
  afterAll(async () => database.close());

  async function insertSession(active: number): Promise<string> {
    const id = newId();
    await database.db
      .insertInto('sessions')
      .values({
        id, workspace_id: newId(), definition_id: definitionId, version_id: newId(), kind: 'sequence', contact_id: newId(), status: active ? 'running' : 'paused',
        active, current_node: 'step-1', wake_at: now, context: '{}', state: '{"visits":{"step-1":1}}', steps_run: 1, created_at: now, updated_at: now,
        enrollment_key: '', source: 'api',
      })
      .execute();
    return id;
  }

  const running = (id: string): SessionUpdate => ({
    id, status: 'running', active: 1, current_node: 'step-2', wake_at: now + 86_400_000, state: '{"visits":{"step-1":1,"step-2":1}}',
    end_reason: null, steps_run: 3, updated_at: now + 1, ended_at: null,
  });

  async function read(id: string) {
    return database.db
      .selectFrom('sessions')
      .select(['status', 'active', 'current_node', 'wake_at', 'state', 'end_reason', 'steps_run', 'updated_at', 'ended_at'])
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
  }

  it('writes every column of sessions that stay active, that end, and that were not active when read', async () => {
    const staying = await insertSession(1);
    const ending = await insertSession(1);
    const inactive = await insertSession(0);
    const end: SessionUpdate = { id: ending, status: 'completed', active: 0, current_node: null, wake_at: null, state: '{"visits":{"step-1":1}}', end_reason: 'completed', steps_run: 2, updated_at: now + 1, ended_at: now + 1 };

    await database.db.transaction().execute((trx) => saveSessions({ db: trx, raw: database.sqlite }, [running(staying), end, running(inactive)]));

    const { active: _a, id: _s, ...stayingColumns } = running(staying);
    expect(await read(staying)).toEqual({ ...stayingColumns, active: 1 });
    const { id: _e, ...endColumns } = end;
    expect(await read(ending)).toEqual(endColumns);
    // Not active when read: the full update, which makes it active as asked.
    const { id: _i, ...inactiveColumns } = running(inactive);
    expect(await read(inactive)).toEqual(inactiveColumns);
  });

  it('keeps one active session per contact and definition enforced after an update that leaves active out', async () => {
    const staying = await insertSession(1);
    await database.db.transaction().execute((trx) => saveSessions({ db: trx, raw: database.sqlite }, [running(staying)]));
    const row = await database.db.selectFrom('sessions').selectAll().where('id', '=', staying).executeTakeFirstOrThrow();
    await expect(database.db.insertInto('sessions').values({ ...row, id: newId() }).execute()).rejects.toThrow(/unique|UNIQUE/);
  });

  it('writes nothing for a session that is gone', async () => {
    const id = newId();
    await database.db.transaction().execute((trx) => saveSessions({ db: trx, raw: database.sqlite }, [running(id)]));
    expect(await database.db.selectFrom('sessions').select('id').where('id', '=', id).execute()).toEqual([]);
  });
});
