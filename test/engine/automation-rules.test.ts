import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VersionCache } from '../../src/engine/version-cache.js';
import type { Context } from '../../src/engine/context.js';
import { createSubscriber } from '../../src/engine/subscriber-service.js';
import { openDatabase, type Database } from '../../src/store/database.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { dialects } from '../support/databases.js';

/**
 * Each process keeps a workspace's triggers and segments in memory and re-reads them
 * only when the workspace's automation counter moves. A second handle on the same
 * database stands for a second process: what one publishes, the other must act on at
 * its next change.
 */
describe.each(dialects)('automation rules across processes on %s', (dialect) => {
  let t: TestApp;
  let second: Database;
  let other: Context;

  beforeAll(async () => {
    t = await createTestApp(dialect);
    second = openDatabase({ databaseUrl: t.ctx.database.databaseUrl, dataDir: t.ctx.database.dataDir });
    other = { ...t.ctx, database: second, versions: new VersionCache() };
  });
  afterAll(async () => {
    await second.close();
    await t.close();
  });

  it('starts a sequence published by another process at the next tag change, and stops starting it once disabled', async () => {
    const subscriber = (ctx: Context, email: string, tags: string[]) => createSubscriber(ctx, t.workspaceId, { email, tags });
    const sessions = () => t.ctx.database.db.selectFrom('sessions').select('contact_id').execute();

    // The second process reads (and caches) the workspace's rules: none yet.
    await subscriber(other, 'before@example.com', ['vip']);
    expect(await sessions()).toHaveLength(0);

    const created = await t.app.inject({ method: 'POST', url: '/api/v1/sequences', headers: t.auth, payload: { name: 'VIP', trigger: 'tag_added', tagName: 'vip', steps: [{ subject: 'Hi', html: '<p>Hi</p>' }] } });
    const id = created.json().sequence.id as string;
    expect((await t.app.inject({ method: 'POST', url: `/api/v1/sequences/${id}/enable`, headers: t.auth })).statusCode).toBe(200);

    await subscriber(other, 'after@example.com', ['vip']);
    expect(await sessions()).toHaveLength(1);

    expect((await t.app.inject({ method: 'POST', url: `/api/v1/sequences/${id}/disable`, headers: t.auth })).statusCode).toBe(200);
    await subscriber(other, 'later@example.com', ['vip']);
    expect(await sessions()).toHaveLength(1);
  });
});
