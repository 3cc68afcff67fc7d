import type { KyselyPlugin } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../../src/domain/ids.js';
import { bumpAutomationVersion, readAutomationVersion } from '../../src/store/definition-repository.js';
import { upsertContactByEmail, upsertContactByPhone } from '../../src/store/engine-contact-repository.js';
import { createTestDatabase, dialects, type TestDatabase } from '../support/databases.js';

/** Counts the statements a Kysely instance sends (one round trip each on PostgreSQL). */
function statementCounter(): KyselyPlugin & { count: number } {
  const counter = {
    count: 0,
    transformQuery(args: Parameters<KyselyPlugin['transformQuery']>[0]) {
      counter.count += 1;
      return args.node;
    },
    async transformResult(args: Parameters<KyselyPlugin['transformResult']>[0]) {
      return args.result;
    },
  };
  return counter;
}

/**
 * The engine's contact upsert outside SQLite's prepared path (PostgreSQL, and by email
 * on both): a new contact comes back from its insert, together with the workspace's
 * automation version, which the same transaction then does not read again.
 */
describe.each(dialects)('contact upsert on %s', (dialect) => {
  let database: TestDatabase;
  let workspaceId: string;
  const now = Date.now();

  beforeAll(async () => {
    database = await createTestDatabase(dialect);
    workspaceId = newId();
    await database.db.insertInto('workspaces').values({ id: workspaceId, name: 'Upserts', settings: '{}', created_at: now }).execute();
    await bumpAutomationVersion(database.db, workspaceId);
    await bumpAutomationVersion(database.db, workspaceId);
  });
  afterAll(async () => database.close());

  const base = () => ({ id: newId(), workspace_id: workspaceId, source: 'api', now, optedIn: true });

  it('creates a contact by phone in one statement, and reads an existing one back', async () => {
    const counter = statementCounter();
    const db = database.db.withPlugin(counter);
    const phone = `+1415${String(Math.floor(Math.random() * 1e7)).padStart(7, '0')}`;
    const first = await db.transaction().execute(async (trx) => {
      const result = await upsertContactByPhone(trx, { ...base(), phone });
      const statements = counter.count;
      // The version came back with the insert: reading it costs no statement.
      expect(await readAutomationVersion(trx, workspaceId)).toBe(2);
      expect(counter.count).toBe(statements);
      return { result, statements };
    });
    expect(first.result.created).toBe(true);
    expect(first.statements).toBe(1);
    const stored = await database.db.selectFrom('contacts').selectAll().where('id', '=', first.result.contact.id).executeTakeFirstOrThrow();
    expect(first.result.contact).toEqual(stored);
    expect(first.result.contact).not.toHaveProperty('automation_version');

    counter.count = 0;
    const again = await db.transaction().execute((trx) => upsertContactByPhone(trx, { ...base(), phone }));
    expect(again.created).toBe(false);
    expect(again.contact).toEqual(stored);
    expect(counter.count).toBe(2);
  });

  it('does the same by email, and a clash on the email still reads the winner', async () => {
    const email = `c${Math.floor(Math.random() * 1e9)}@example.com`;
    const first = await database.db.transaction().execute((trx) => upsertContactByEmail(trx, { ...base(), email }));
    const second = await database.db.transaction().execute((trx) => upsertContactByEmail(trx, { ...base(), email }));
    expect(first.created).toBe(true);
    expect(second).toEqual({ contact: first.contact, created: false });
    expect(await database.db.selectFrom('contacts').select('id').where('email', '=', email).execute()).toHaveLength(1);
  });

  it('never keeps a version past a bump in the same transaction, or past its transaction', async () => {
    const phone = `+1415${String(Math.floor(Math.random() * 1e7)).padStart(7, '0')}`;
    const before = await readAutomationVersion(database.db, workspaceId);
    await database.db.transaction().execute(async (trx) => {
      await upsertContactByPhone(trx, { ...base(), phone });
      expect(await readAutomationVersion(trx, workspaceId)).toBe(before);
      await bumpAutomationVersion(trx, workspaceId);
      expect(await readAutomationVersion(trx, workspaceId)).toBe(before + 1);
    });
    // Another writer moves it on: the next transaction reads the new value.
    await bumpAutomationVersion(database.db, workspaceId);
    await database.db.transaction().execute(async (trx) => {
      expect(await readAutomationVersion(trx, workspaceId)).toBe(before + 2);
    });
  });

  it('keeps nothing for an upsert outside a transaction', async () => {
    const phone = `+1415${String(Math.floor(Math.random() * 1e7)).padStart(7, '0')}`;
    const before = await readAutomationVersion(database.db, workspaceId);
    await upsertContactByPhone(database.db, { ...base(), phone });
    await database.db.updateTable('workspaces').set({ automation_version: before + 10 }).where('id', '=', workspaceId).execute();
    expect(await readAutomationVersion(database.db, workspaceId)).toBe(before + 10);
  });
});
