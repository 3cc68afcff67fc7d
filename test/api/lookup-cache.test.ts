import { sql } from 'kysely';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hashToken, tokenUseResolutionMs } from '../../src/engine/auth-service.js';
import { LocalWaker, PostgresWakeListener } from '../../src/engine/waker.js';
import { openDatabase, type Database } from '../../src/store/database.js';
import { createTestApp, enabledSequence, ManualClock, type TestApp } from '../support/app.js';
import { dialects } from '../support/databases.js';

/** The test listener's wait before it connects again (the product's default is 1 s). */
const reconnectDelayMs = 3000;

/**
 * The tokens and definitions the trigger routes keep in memory (engine/lookup-cache.ts)
 * must never outlive a change made anywhere: here the changes come from a second
 * connection to the same database, as the command line and the other processes make them.
 */
describe.each(dialects)('tokens and definitions kept by the API on %s', (dialect) => {
  let t: TestApp;
  let elsewhere: Database;
  let listener: PostgresWakeListener | null = null;
  let phones = 0;

  beforeEach(async () => {
    t = await createTestApp(dialect);
    elsewhere = openDatabase({ databaseUrl: t.ctx.database.databaseUrl ?? null, dataDir: t.ctx.database.dataDir });
    if (dialect === 'postgres') {
      // Reconnecting after 3 s, not the 1 s default: the outage test's steps while the
      // listener is gone must not race its return.
      listener = new PostgresWakeListener(t.ctx.database.databaseUrl!, new LocalWaker(), pino({ level: 'silent' }), t.ctx.lookups, reconnectDelayMs);
      await listener.start();
    }
  });

  afterEach(async () => {
    await listener?.stop();
    listener = null;
    await elsewhere.close();
    await t.close();
  });

  const trigger = (sequenceId: string, token = t.token) =>
    t.app.inject({ method: 'POST', url: '/api/v1/actions/trigger-sequence', headers: { authorization: `Bearer ${token}` }, payload: { sequence_id: sequenceId, phone: `+1415555${String(1000 + (phones += 1)).padStart(4, '0')}` } });

  /** PostgreSQL reports a change at its commit, through the listener: wait for it to arrive. */
  async function eventually(check: () => Promise<boolean>): Promise<boolean> {
    const until = Date.now() + (dialect === 'postgres' ? 3000 : 0);
    for (;;) {
      if (await check()) return true;
      if (Date.now() >= until) return false;
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  it('answers repeated requests from memory, and refuses a token revoked from another connection at once', async () => {
    const sequenceId = await enabledSequence(t, { name: 'Welcome', steps: [{ type: 'sms', text: 'Hi' }] });
    // The first use records when the token was used, a change to api_tokens: the next request
    // reads it again. Wait until that change has been reported and a request is answered from memory.
    const fromMemory = async () => {
      const { hits, misses } = t.ctx.lookups.stats;
      expect((await trigger(sequenceId)).statusCode).toBe(201);
      return t.ctx.lookups.stats.hits - hits === 2 && t.ctx.lookups.stats.misses === misses;
    };
    // (The token's last use is written off the request's path, on SQLite too: poll on both.)
    let settled = false;
    for (const until = Date.now() + 3000; !settled && Date.now() < until; await new Promise((r) => setTimeout(r, 20))) settled = (await fromMemory()) && (await fromMemory());
    expect(settled).toBe(true);
    const before = { ...t.ctx.lookups.stats };
    for (let n = 0; n < 5; n += 1) expect((await trigger(sequenceId)).statusCode).toBe(201);
    // Each request looks up its token and its sequence: all ten from memory.
    expect(t.ctx.lookups.stats.hits - before.hits).toBe(10);
    expect(t.ctx.lookups.stats.misses - before.misses).toBe(0);

    await sql`update api_tokens set revoked_at = ${Date.now()} where token_hash is not null and workspace_id = ${t.workspaceId}`.execute(elsewhere.db);
    expect(await eventually(async () => (await trigger(sequenceId)).statusCode === 401)).toBe(true);
    expect((await trigger(sequenceId)).statusCode).toBe(401);
  });

  it('sees a sequence disabled, archived or deleted from another connection', async () => {
    const sequenceId = await enabledSequence(t, { name: 'Drip', steps: [{ type: 'sms', text: 'Hi' }] });
    expect((await trigger(sequenceId)).statusCode).toBe(201);
    expect((await trigger(sequenceId)).statusCode).toBe(201);
    await sql`update definitions set status = 'paused' where id = ${sequenceId}`.execute(elsewhere.db);
    expect(await eventually(async () => (await trigger(sequenceId)).statusCode === 404)).toBe(true);
    await sql`update definitions set status = 'active' where id = ${sequenceId}`.execute(elsewhere.db);
    expect(await eventually(async () => (await trigger(sequenceId)).statusCode === 201)).toBe(true);
    await sql`delete from definitions where id = ${sequenceId}`.execute(elsewhere.db).catch(async () => {
      // Sessions refer to it: a soft delete, as the API does.
      await sql`update definitions set deleted_at = ${Date.now()} where id = ${sequenceId}`.execute(elsewhere.db);
    });
    expect(await eventually(async () => (await trigger(sequenceId)).statusCode === 404)).toBe(true);
  });

  it('keeps nothing that was read while a change was committed', async () => {
    const sequenceId = await enabledSequence(t, { name: 'Race', steps: [{ type: 'sms', text: 'Hi' }] });
    // A change lands between the read and the keeping of its result: the result is not kept.
    // On PostgreSQL the change is reported through the listener: the read lasts until it has been.
    const lookups = t.ctx.lookups;
    let reported = 0;
    const changed = lookups.changed.bind(lookups);
    lookups.changed = () => {
      reported += 1;
      changed();
    };
    const kept = await lookups.definition('race-key', async () => {
      await sql`update definitions set name = 'Race 2' where id = ${sequenceId}`.execute(elsewhere.db);
      if (dialect === 'postgres') expect(await eventually(async () => reported > 0)).toBe(true);
      return { marker: 'read before the change' } as never;
    }).finally(() => {
      lookups.changed = changed;
    });
    expect(kept).toEqual({ marker: 'read before the change' });
    const hits = t.ctx.lookups.stats.hits;
    const again = await t.ctx.lookups.definition('race-key', async () => ({ marker: 'read again' }) as never);
    expect(again).toEqual({ marker: 'read again' });
    expect(t.ctx.lookups.stats.hits).toBe(hits);
  });

  if (dialect === 'postgres') {
    it('reads the database on every request while no listener hears the changes, and keeps lookups again once it is back', async () => {
      const sequenceId = await enabledSequence(t, { name: 'Outage', steps: [{ type: 'sms', text: 'Hi' }] });
      /** Triggers once; whether its lookups were answered from memory. */
      const fromMemory = async () => {
        const before = t.ctx.lookups.stats.hits;
        expect((await trigger(sequenceId)).statusCode).toBe(201);
        return t.ctx.lookups.stats.hits > before;
      };
      const within = async (ms: number, check: () => Promise<boolean>) => {
        for (const until = Date.now() + ms; Date.now() < until; await new Promise((r) => setTimeout(r, 50))) if (await check()) return true;
        return false;
      };
      await trigger(sequenceId);
      expect(await fromMemory()).toBe(true);
      // The listener's connection is cut, as a PostgreSQL restart or a network fault would.
      await sql`select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and query like 'listen nudge_lookups%'`.execute(elsewhere.db);
      expect(await within(2000, async () => !(await fromMemory()))).toBe(true);
      // While it is gone, a change is seen by the very next request.
      await sql`update definitions set status = 'paused' where id = ${sequenceId}`.execute(elsewhere.db);
      expect((await trigger(sequenceId)).statusCode).toBe(404);
      await sql`update definitions set status = 'active' where id = ${sequenceId}`.execute(elsewhere.db);
      expect(await fromMemory()).toBe(false);
      // It connects again after its delay, and lookups are kept again.
      expect(await within(reconnectDelayMs + 5000, fromMemory)).toBe(true);
    });

    it('keeps nothing in a process without a listener', async () => {
      await listener!.stop();
      listener = null;
      const sequenceId = await enabledSequence(t, { name: 'Deaf', steps: [{ type: 'sms', text: 'Hi' }] });
      for (let n = 0; n < 3; n += 1) expect((await trigger(sequenceId)).statusCode).toBe(201);
      expect(t.ctx.lookups.stats.hits).toBe(0);
    });
  }
});

describe.each(dialects)('when a token was last used, on %s', (dialect) => {
  it('is recorded on its first use, then at most once a minute', async () => {
    const clock = new ManualClock(Date.UTC(2026, 11, 1, 9, 0, 0));
    const t = await createTestApp(dialect, { clock });
    try {
      const lastUsed = async () => {
        // Recorded off the request's path: give the write a moment to land.
        await new Promise((r) => setTimeout(r, 100));
        const row = await t.ctx.database.db.selectFrom('api_tokens').select('last_used_at').where('token_hash', '=', hashToken(t.token)).executeTakeFirstOrThrow();
        return row.last_used_at === null ? null : Number(row.last_used_at);
      };
      const me = () => t.app.inject({ method: 'GET', url: '/api/v1/me', headers: t.auth });
      expect(await lastUsed()).toBeNull();
      expect((await me()).statusCode).toBe(200);
      const first = clock.now();
      expect(await lastUsed()).toBe(first);
      clock.advance(30_000);
      expect((await me()).statusCode).toBe(200);
      expect(await lastUsed()).toBe(first);
      clock.advance(tokenUseResolutionMs);
      expect((await me()).statusCode).toBe(200);
      expect(await lastUsed()).toBe(first + 30_000 + tokenUseResolutionMs);
    } finally {
      await t.close();
    }
  });
});
