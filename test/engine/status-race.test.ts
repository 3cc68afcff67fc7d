import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../../src/domain/ids.js';
import { createWorkspace } from '../../src/engine/auth-service.js';
import { applyProviderStatus, settleParkedStatuses } from '../../src/engine/message-status.js';
import { Worker } from '../../src/engine/worker.js';
import type { Dialect } from '../../src/store/database.js';
import { upsertContactByPhone } from '../../src/store/engine-contact-repository.js';
import { insertMessages, type NewMessageRow } from '../../src/store/message-repository.js';
import { insertPendingStatus } from '../../src/store/message-status-repository.js';
import { createTestContext, type TestContext } from '../support/app.js';
import { dialects } from '../support/databases.js';
import { sleep } from '../support/processes.js';


/** A database of the dialect with one workspace and one contact, for the tests of a describe block. */
function workspaceWithContact(dialect: Dialect, name: string): { ctx: TestContext; workspaceId: string; contactId: string } {
  const f = {} as { ctx: TestContext; workspaceId: string; contactId: string };
  beforeAll(async () => {
    f.ctx = await createTestContext(dialect);
    f.workspaceId = (await createWorkspace(f.ctx, name)).id;
    f.contactId = (await upsertContactByPhone(f.ctx.database.db, { id: newId(), workspace_id: f.workspaceId, phone: '+14155550123', source: 'api', now: Date.now(), optedIn: true })).contact.id;
  });
  afterAll(async () => f.ctx.database.close());
  return f;
}

function outboundRow(workspaceId: string, contactId: string, id: string, now: number, fields: Partial<NewMessageRow>): NewMessageRow {
  return {
    id, workspace_id: workspaceId, contact_id: contactId, session_id: null, definition_id: null, node_id: null, dedupe_key: null,
    direction: 'outbound', channel: 'whatsapp', provider: 'whatsapp-cloud', recipient: '+14155550123', kind: 'text', content: '{"kind":"text","text":"hi"}',
    marketing: 0, status: 'sending', provider_message_id: null, error_code: null, error_message: null, attempts: 1, next_attempt_at: now + 60_000, lease_until: now + 60_000,
    on_failure: 'continue', created_at: now, updated_at: now, sent_at: null, delivered_at: null, read_at: null, failed_at: null, segments: null, encoding: null,
    ...fields,
  };
}

/** The dispatcher's transaction, on its own connection: the send's result written, not committed yet. */
async function recordSendUncommitted(ctx: TestContext, id: string, providerMessageId: string, now: number): Promise<pg.Client> {
  const dispatcher = new pg.Client({ connectionString: ctx.database.databaseUrl! });
  await dispatcher.connect();
  await dispatcher.query('begin');
  await dispatcher.query(`update messages set status = 'sent', provider_message_id = $1, sent_at = $2, next_attempt_at = null, lease_until = null where id = $3`, [providerMessageId, now, id]);
  return dispatcher;
}

/**
 * Provider statuses arriving while the dispatcher records the same send's result in
 * another transaction. Only PostgreSQL runs the two at once (SQLite has one writer).
 */
describe.runIf(dialects.includes('postgres'))('a status racing the send result on postgres', () => {
  const f = workspaceWithContact('postgres', 'Race');

  // A status naming Nudge's message id waits for the row.
  it('is applied when the result commits while the status waits for the row, not parked for ever', async () => {
    const now = Date.now();
    const id = newId(now);
    await insertMessages({ db: f.ctx.database.db, raw: null }, [outboundRow(f.workspaceId, f.contactId, id, now, {})]);
    const dispatcher = await recordSendUncommitted(f.ctx, id, 'wamid.RACE1', now);
    // Meta's `delivered`, naming the message, arrives meanwhile and waits for the row.
    const applying = applyProviderStatus(f.ctx, { workspaceId: f.workspaceId, provider: 'whatsapp-cloud', providerMessageId: 'wamid.RACE1', status: 'delivered', timestamp: now + 1000, errorCode: null, errorMessage: null, nudgeMessageId: id });
    await sleep(300);
    await dispatcher.query('commit');
    await dispatcher.end();
    expect(await applying).toBe(true);
    const row = await f.ctx.database.db.selectFrom('messages').select(['status', 'delivered_at', 'provider_message_id']).where('id', '=', id).executeTakeFirstOrThrow();
    expect(row).toEqual({ status: 'delivered', delivered_at: now + 1000, provider_message_id: 'wamid.RACE1' });
    const parked = await f.ctx.database.db.selectFrom('pending_statuses').selectAll().where('provider_message_id', '=', 'wamid.RACE1').execute();
    expect(parked).toEqual([]);
  });

  // A status without Nudge's id that crosses the send result: it finds no row with the
  // provider's id (the result is not committed) and parks, after the dispatcher has
  // looked for parked statuses. The worker's periodic pass applies it.

  it('parks, and the next periodic pass of a worker applies it once', async () => {
    const now = Date.now();
    const id = newId(now);
    await insertMessages({ db: f.ctx.database.db, raw: null }, [outboundRow(f.workspaceId, f.contactId, id, now, {})]);
    const dispatcher = await recordSendUncommitted(f.ctx, id, 'wamid.CROSS1', now);
    // The dispatcher looks for statuses parked for this send: none yet.
    expect((await dispatcher.query(`delete from pending_statuses where provider = 'whatsapp-cloud' and provider_message_id = 'wamid.CROSS1' returning id`)).rowCount).toBe(0);
    // Meta's `delivered`, without Nudge's id (a template sent before biz_opaque_callback_data was set, say).
    expect(await applyProviderStatus(f.ctx, { workspaceId: f.workspaceId, provider: 'whatsapp-cloud', providerMessageId: 'wamid.CROSS1', status: 'delivered', timestamp: now + 1000, errorCode: null, errorMessage: null })).toBe(false);
    await dispatcher.query('commit');
    await dispatcher.end();
    const before = await f.ctx.database.db.selectFrom('messages').select(['status', 'delivered_at']).where('id', '=', id).executeTakeFirstOrThrow();
    expect(before).toEqual({ status: 'sent', delivered_at: null });

    const worker = new Worker(f.ctx, f.ctx.channels, f.ctx.versions, null, { batchSize: 100, pollIntervalMs: 50, dispatchConcurrency: 4 });
    expect(await worker.runAutomationOnce()).toBe(1);
    const after = await f.ctx.database.db.selectFrom('messages').select(['status', 'delivered_at']).where('id', '=', id).executeTakeFirstOrThrow();
    expect(after).toEqual({ status: 'delivered', delivered_at: now + 1000 });
    expect(await f.ctx.database.db.selectFrom('pending_statuses').select('id').where('provider_message_id', '=', 'wamid.CROSS1').execute()).toEqual([]);
    expect(await worker.runAutomationOnce()).toBe(0);
  });

  it('is applied by one of two sweeps running at once, never by both', async () => {
    const now = Date.now();
    const id = newId(now);
    await insertMessages({ db: f.ctx.database.db, raw: null }, [outboundRow(f.workspaceId, f.contactId, id, now, { status: 'sent', provider_message_id: 'wamid.CROSS2', sent_at: now, next_attempt_at: null, lease_until: null })]);
    await insertPendingStatus(f.ctx.database.db, { id: newId(now), workspace_id: f.workspaceId, provider: 'whatsapp-cloud', provider_message_id: 'wamid.CROSS2', status: 'read', occurred_at: now + 2000, error_code: null, error_message: null, created_at: now });
    const counts = await Promise.all([settleParkedStatuses(f.ctx), settleParkedStatuses(f.ctx), settleParkedStatuses(f.ctx)]);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(1);
    const row = await f.ctx.database.db.selectFrom('messages').select(['status', 'delivered_at', 'read_at']).where('id', '=', id).executeTakeFirstOrThrow();
    expect(row).toEqual({ status: 'read', delivered_at: now + 2000, read_at: now + 2000 });
  });
});

describe.each(dialects)('the sweep of parked statuses on %s', (dialect: Dialect) => {
  const f = workspaceWithContact(dialect, 'Sweep');

  it('applies a parked status whose message is recorded, and leaves the others parked', async () => {
    const now = Date.now();
    const id = newId(now);
    await insertMessages({ db: f.ctx.database.db, raw: f.ctx.database.sqlite }, [outboundRow(f.workspaceId, f.contactId, id, now, { status: 'sent', provider_message_id: 'wamid.SWEEP1', sent_at: now, next_attempt_at: null, lease_until: null })]);
    const park = (providerMessageId: string, createdAt: number, status = 'delivered') =>
      insertPendingStatus(f.ctx.database.db, { id: newId(createdAt), workspace_id: f.workspaceId, provider: 'whatsapp-cloud', provider_message_id: providerMessageId, status, occurred_at: now + 1000, error_code: null, error_message: null, created_at: createdAt });
    await park('wamid.SWEEP1', now);
    await park('wamid.ELSEWHERE', now); // a message sent from elsewhere: nothing to apply it to
    await park('wamid.SWEEP1', now - 3_600_000, 'failed'); // parked an hour ago: outside the sweep's window
    expect(await settleParkedStatuses(f.ctx)).toBe(1);
    const row = await f.ctx.database.db.selectFrom('messages').select(['status', 'delivered_at', 'failed_at']).where('id', '=', id).executeTakeFirstOrThrow();
    expect(row).toEqual({ status: 'delivered', delivered_at: now + 1000, failed_at: null });
    const left = await f.ctx.database.db.selectFrom('pending_statuses').select(['provider_message_id', 'status']).orderBy('provider_message_id').execute();
    expect(left).toEqual([{ provider_message_id: 'wamid.ELSEWHERE', status: 'delivered' }, { provider_message_id: 'wamid.SWEEP1', status: 'failed' }]);
    expect(await settleParkedStatuses(f.ctx)).toBe(0);
  });
});
