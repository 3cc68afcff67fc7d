import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/domain/clock.js';
import { newId } from '../../src/domain/ids.js';
import { createWorkspace } from '../../src/engine/auth-service.js';
import { createBroadcast, queueBroadcastChunk, sendBroadcast } from '../../src/engine/broadcast-service.js';
import { SandboxOnlyRegistry } from '../../src/engine/channel-registry.js';
import { addTag, createOrUpsertContact } from '../../src/engine/contact-service.js';
import type { Context } from '../../src/engine/context.js';
import { Worker } from '../../src/engine/worker.js';
import { openDatabase } from '../../src/store/database.js';
import { insertTemplate } from '../../src/store/template-repository.js';
import { createTestContext, type TestContext } from '../support/app.js';
import { dialects } from '../support/databases.js';

/**
 * Broadcast expansion when workers die or run side by side: a chunk's messages and its
 * cursor commit together or not at all, so the next worker resumes exactly after the
 * last committed chunk, and no contact is ever queued twice.
 */
describe.each(dialects)('broadcast expansion under crashes and concurrency on %s', (dialect) => {
  const clock = new ManualClock(Date.UTC(2026, 4, 7, 8, 0, 0));
  let ctx: TestContext;
  let workspaceId: string;
  let templateId: string;

  beforeAll(async () => {
    ctx = await createTestContext(dialect, { clock });
    workspaceId = (await createWorkspace(ctx, 'Crashes')).id;
    templateId = newId();
    await insertTemplate(ctx.database.db, {
      id: templateId, workspace_id: workspaceId, name: 'notice', language: 'en', category: 'UTILITY', status: 'APPROVED',
      components: JSON.stringify({ body: 'Notice for {{1}}' }), provider_template_id: null, rejected_reason: null, created_at: clock.now(), updated_at: clock.now(),
    });
  });
  afterAll(async () => ctx.database.close());

  let phones = 0;
  async function audience(tag: string, size: number): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < size; i += 1) {
      phones += 1;
      const { contact } = await createOrUpsertContact(ctx, workspaceId, { phone: `+1415557${String(phones).padStart(4, '0')}`, first_name: `P${i}` }, { source: 'api' });
      await addTag(ctx, workspaceId, { contact_id: contact.id, tag });
      ids.push(contact.id);
    }
    return ids;
  }

  async function startBroadcast(tag: string): Promise<string> {
    const created = await createBroadcast(ctx, workspaceId, { template_id: templateId, variables: { '1': '{{first_name}}' }, audience: { tag } });
    await sendBroadcast(ctx, workspaceId, created.id);
    return created.id;
  }

  const messagesOf = (broadcastId: string) => ctx.database.db.selectFrom('messages').select(['contact_id', 'status']).where('broadcast_id', '=', broadcastId).execute();
  const broadcastRow = (id: string) => ctx.database.db.selectFrom('broadcasts').selectAll().where('id', '=', id).executeTakeFirstOrThrow();

  it('resumes after a worker dies mid-chunk exactly where the last commit left off, queueing no contact twice', async () => {
    const contacts = await audience('resume', 7);
    const id = await startBroadcast('resume');
    const channels = new SandboxOnlyRegistry({ inline: false });
    const options = { chunkSize: 3 };
    const killed = new Error('SIGKILL');

    // A worker queues its chunk and dies before committing: as if nothing happened.
    await expect(
      ctx.database.db.transaction().execute(async (trx) => {
        expect(await queueBroadcastChunk(ctx, trx, channels, options)).toMatchObject({ kind: 'queued', broadcastId: id, queued: 3 });
        throw killed;
      }),
    ).rejects.toBe(killed);
    expect(await messagesOf(id)).toEqual([]);
    expect(await broadcastRow(id)).toMatchObject({ status: 'sending', cursor: null, recipients: 0 });

    // The next worker commits the first chunk; another dies during the second.
    await ctx.database.db.transaction().execute((trx) => queueBroadcastChunk(ctx, trx, channels, options));
    const afterFirst = await broadcastRow(id);
    expect(afterFirst).toMatchObject({ recipients: 3, cursor: [...contacts].sort()[2] });
    await expect(
      ctx.database.db.transaction().execute(async (trx) => {
        await queueBroadcastChunk(ctx, trx, channels, options);
        throw killed;
      }),
    ).rejects.toBe(killed);
    expect(await messagesOf(id)).toHaveLength(3);
    expect(await broadcastRow(id)).toMatchObject({ recipients: 3, cursor: afterFirst.cursor });

    // A worker that carries on to the end: every contact once.
    const worker = new Worker(ctx, channels, ctx.versions, null, { batchSize: 100, pollIntervalMs: 50, dispatchConcurrency: 4, broadcastChunkSize: 3 });
    for (let i = 0; i < 10 && (await broadcastRow(id)).status !== 'completed'; i += 1) {
      await worker.drain();
      clock.advance(1000);
    }
    const messages = await messagesOf(id);
    expect(messages.map((m) => m.contact_id).sort()).toEqual([...contacts].sort());
    expect(messages.every((m) => m.status === 'delivered')).toBe(true);
    expect(await broadcastRow(id)).toMatchObject({ status: 'completed', recipients: 7, skipped: 0 });
  });

  it('keeps queueing when a chunk threw, after a pause, without holding up the other broadcasts', async () => {
    await audience('poisoned', 2);
    await audience('healthy', 2);
    const poisoned = await startBroadcast('poisoned');
    clock.advance(1);
    const healthy = await startBroadcast('healthy');
    let failures = 1;
    const flaky = new SandboxOnlyRegistry();
    const adapter = flaky.adapterFor();
    const send = adapter.send.bind(adapter);
    // An adapter that throws once (a bug, an outage): the poisoned broadcast's chunk rolls back.
    adapter.send = async (message) => {
      if (failures > 0) {
        failures -= 1;
        throw new Error('adapter exploded');
      }
      return send(message);
    };
    const worker = new Worker(ctx, flaky, ctx.versions, null, { batchSize: 100, pollIntervalMs: 50, dispatchConcurrency: 4 });
    await worker.runBroadcastsOnce();
    expect(await broadcastRow(poisoned)).toMatchObject({ status: 'sending', recipients: 0, error: 'adapter exploded', due_at: clock.now() + 60_000 });
    expect(await broadcastRow(healthy)).toMatchObject({ status: 'completed', recipients: 2 });
    clock.advance(60_000);
    await worker.runBroadcastsOnce();
    expect(await broadcastRow(poisoned)).toMatchObject({ status: 'completed', recipients: 2 });
    expect(await messagesOf(poisoned)).toHaveLength(2);
  });

  it.skipIf(dialect !== 'postgres')('shares one broadcast between two workers on separate connections, each contact queued once', async () => {
    const contacts = await audience('shared', 40);
    const id = await startBroadcast('shared');
    const other = openDatabase({ databaseUrl: ctx.database.databaseUrl, dataDir: ctx.database.dataDir });
    try {
      const channels = new SandboxOnlyRegistry();
      const options = { batchSize: 100, pollIntervalMs: 50, dispatchConcurrency: 4, broadcastChunkSize: 4 };
      const workers = [new Worker(ctx, channels, ctx.versions, null, options), new Worker({ ...ctx, database: other } as Context, channels, ctx.versions, null, options)];
      // Both claim at once, over and over: SKIP LOCKED hands each chunk to one of them.
      for (let round = 0; round < 10; round += 1) await Promise.all(workers.map((w) => w.runBroadcastsOnce()));
      const messages = await messagesOf(id);
      expect(messages).toHaveLength(40);
      expect(new Set(messages.map((m) => m.contact_id)).size).toBe(40);
      expect(messages.map((m) => m.contact_id).sort()).toEqual([...contacts].sort());
      expect(await broadcastRow(id)).toMatchObject({ status: 'completed', recipients: 40 });
    } finally {
      await other.close();
    }
  });
});
