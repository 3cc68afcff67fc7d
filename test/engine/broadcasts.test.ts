import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/domain/clock.js';
import { newId } from '../../src/domain/ids.js';
import { createWorkspace } from '../../src/engine/auth-service.js';
import { createBroadcast, queueBroadcastChunk, sendBroadcast } from '../../src/engine/broadcast-service.js';
import { SandboxOnlyRegistry } from '../../src/engine/channel-registry.js';
import { addTag, createOrUpsertContact } from '../../src/engine/contact-service.js';
import type { Context } from '../../src/engine/context.js';
import { LocalWaker } from '../../src/engine/waker.js';
import { Worker } from '../../src/engine/worker.js';
import { openDatabase, type Dialect } from '../../src/store/database.js';
import { insertTemplate } from '../../src/store/template-repository.js';
import { createTestContext, type TestContext } from '../support/app.js';
import { dialects } from '../support/databases.js';

/**
 * Broadcast expansion when workers die or run side by side: a chunk's messages and its
 * cursor commit together or not at all, so the next worker resumes exactly after the
 * last committed chunk, and no contact is ever queued twice.
 */
/** A workspace with an approved template, and helpers to tag an audience and start a broadcast to it. */
function broadcastFixture(dialect: Dialect) {
  const clock = new ManualClock(Date.UTC(2026, 4, 7, 8, 0, 0));
  const f = {
    clock,
    ctx: null as unknown as TestContext,
    workspaceId: '',
    templateId: newId(),
    phones: 0,
    async setUp() {
      f.ctx = await createTestContext(dialect, { clock });
      f.workspaceId = (await createWorkspace(f.ctx, 'Broadcasts')).id;
      await insertTemplate(f.ctx.database.db, {
        id: f.templateId, workspace_id: f.workspaceId, name: 'notice', language: 'en', category: 'UTILITY', status: 'APPROVED',
        components: JSON.stringify({ body: 'Notice for {{1}}' }), provider_template_id: null, rejected_reason: null, created_at: clock.now(), updated_at: clock.now(),
      });
    },
    async audience(tag: string, size: number): Promise<string[]> {
      const ids: string[] = [];
      for (let i = 0; i < size; i += 1) {
        f.phones += 1;
        const { contact } = await createOrUpsertContact(f.ctx, f.workspaceId, { phone: `+1415557${String(f.phones).padStart(4, '0')}`, first_name: `P${i}` }, { source: 'api' });
        await addTag(f.ctx, f.workspaceId, { contact_id: contact.id, tag });
        ids.push(contact.id);
      }
      return ids;
    },
    async startBroadcast(tag: string): Promise<string> {
      const created = await createBroadcast(f.ctx, f.workspaceId, { template_id: f.templateId, variables: { '1': '{{first_name}}' }, audience: { tag } });
      await sendBroadcast(f.ctx, f.workspaceId, created.id);
      return created.id;
    },
    messagesOf: (broadcastId: string) => f.ctx.database.db.selectFrom('messages').select(['contact_id', 'status']).where('broadcast_id', '=', broadcastId).execute(),
    broadcastRow: (id: string) => f.ctx.database.db.selectFrom('broadcasts').selectAll().where('id', '=', id).executeTakeFirstOrThrow(),
  };
  return f;
}

describe.each(dialects)('broadcast expansion under crashes on %s', (dialect) => {
  const f = broadcastFixture(dialect);
  const { clock, audience, startBroadcast, messagesOf, broadcastRow } = f;
  beforeAll(() => f.setUp());
  afterAll(() => f.ctx.database.close());

  it('resumes after a worker dies mid-chunk exactly where the last commit left off, queueing no contact twice', async () => {
    const contacts = await audience('resume', 7);
    const id = await startBroadcast('resume');
    const channels = new SandboxOnlyRegistry({ inline: false });
    const options = { chunkSize: 3 };
    const killed = new Error('SIGKILL');

    // A worker queues its chunk and dies before committing: as if nothing happened.
    await expect(
      f.ctx.database.db.transaction().execute(async (trx) => {
        expect(await queueBroadcastChunk(f.ctx, trx, channels, options)).toMatchObject({ kind: 'queued', broadcastId: id, queued: 3 });
        throw killed;
      }),
    ).rejects.toBe(killed);
    expect(await messagesOf(id)).toEqual([]);
    expect(await broadcastRow(id)).toMatchObject({ status: 'sending', cursor: null, recipients: 0 });

    // The next worker commits the first chunk; another dies during the second.
    await f.ctx.database.db.transaction().execute((trx) => queueBroadcastChunk(f.ctx, trx, channels, options));
    const afterFirst = await broadcastRow(id);
    expect(afterFirst).toMatchObject({ recipients: 3, cursor: [...contacts].sort()[2] });
    await expect(
      f.ctx.database.db.transaction().execute(async (trx) => {
        await queueBroadcastChunk(f.ctx, trx, channels, options);
        throw killed;
      }),
    ).rejects.toBe(killed);
    expect(await messagesOf(id)).toHaveLength(3);
    expect(await broadcastRow(id)).toMatchObject({ recipients: 3, cursor: afterFirst.cursor });

    // A worker that carries on to the end: every contact once.
    const worker = new Worker(f.ctx, channels, f.ctx.versions, null, { batchSize: 100, pollIntervalMs: 50, dispatchConcurrency: 4, broadcastChunkSize: 3 });
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
    const worker = new Worker(f.ctx, flaky, f.ctx.versions, null, { batchSize: 100, pollIntervalMs: 50, dispatchConcurrency: 4 });
    await worker.runBroadcastsOnce();
    expect(await broadcastRow(poisoned)).toMatchObject({ status: 'sending', recipients: 0, error: 'adapter exploded', due_at: clock.now() + 60_000 });
    expect(await broadcastRow(healthy)).toMatchObject({ status: 'completed', recipients: 2 });
    clock.advance(60_000);
    await worker.runBroadcastsOnce();
    expect(await broadcastRow(poisoned)).toMatchObject({ status: 'completed', recipients: 2 });
    expect(await messagesOf(poisoned)).toHaveLength(2);
  });
});

/** PostgreSQL only: SQLite has one writer, so two workers there never overlap. */
describe.each(dialects.filter((d) => d === 'postgres'))('two broadcast workers at once on %s', (dialect) => {
  const f = broadcastFixture(dialect);
  const { audience, startBroadcast, messagesOf, broadcastRow } = f;
  beforeAll(() => f.setUp());
  afterAll(() => f.ctx.database.close());

  it('shares one broadcast between two workers on separate connections, each contact queued once', async () => {
    const contacts = await audience('shared', 40);
    const id = await startBroadcast('shared');
    const other = openDatabase({ databaseUrl: f.ctx.database.databaseUrl, dataDir: f.ctx.database.dataDir });
    try {
      const channels = new SandboxOnlyRegistry();
      const options = { batchSize: 100, pollIntervalMs: 50, dispatchConcurrency: 4, broadcastChunkSize: 4 };
      const workers = [new Worker(f.ctx, channels, f.ctx.versions, null, options), new Worker({ ...f.ctx, database: other } as Context, channels, f.ctx.versions, null, options)];
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

describe.each(dialects)('the broadcast loop of a running worker on %s', (dialect) => {
  const waker = new LocalWaker();
  let ctx: TestContext;
  beforeAll(async () => {
    ctx = { ...(await createTestContext(dialect)), wake: waker };
  });
  afterAll(async () => ctx.database.close());

  it('sends a scheduled broadcast at its time, woken by the scheduling rather than by a poll', async () => {
    const workspaceId = (await createWorkspace(ctx, 'Live')).id;
    const templateId = newId();
    await insertTemplate(ctx.database.db, {
      id: templateId, workspace_id: workspaceId, name: 'live', language: 'en', category: 'UTILITY', status: 'APPROVED',
      components: JSON.stringify({ body: 'Live' }), provider_template_id: null, rejected_reason: null, created_at: Date.now(), updated_at: Date.now(),
    });
    const { contact } = await createOrUpsertContact(ctx, workspaceId, { phone: '+14155559001' });
    // A poll interval of a minute: only the wake-up and the due time can explain a send within seconds.
    const worker = new Worker(ctx, ctx.channels, ctx.versions, waker, { batchSize: 100, pollIntervalMs: 60_000, dispatchConcurrency: 4 });
    worker.start();
    try {
      await new Promise((r) => setTimeout(r, 200));
      const at = Date.now() + 1500;
      const created = await createBroadcast(ctx, workspaceId, { template_id: templateId, audience: { contact_ids: [contact.id] }, scheduled_at: new Date(at).toISOString() });
      const deadline = Date.now() + 15_000;
      let sentAt: number | null = null;
      while (sentAt === null && Date.now() < deadline) {
        const message = await ctx.database.db.selectFrom('messages').select('sent_at').where('broadcast_id', '=', created.id).executeTakeFirst();
        sentAt = message?.sent_at ?? null;
        if (sentAt === null) await new Promise((r) => setTimeout(r, 50));
      }
      expect(sentAt, 'the broadcast was not sent').not.toBeNull();
      expect(sentAt!).toBeGreaterThanOrEqual(at);
    } finally {
      await worker.stop();
    }
  }, 30_000);
});
