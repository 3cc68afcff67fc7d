import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../../src/domain/ids.js';
import { createWorkspace } from '../../src/engine/auth-service.js';
import { applyProviderStatus } from '../../src/engine/message-status.js';
import { upsertContactByPhone } from '../../src/store/engine-contact-repository.js';
import { insertMessages } from '../../src/store/message-repository.js';
import { createTestContext, type TestContext } from '../support/app.js';
import { dialects } from '../support/databases.js';
import { sleep } from '../support/processes.js';

/**
 * A provider's status that names Nudge's message id, arriving while the dispatcher
 * records the same send's result in another transaction. Only PostgreSQL runs the two
 * at once (SQLite has one writer).
 */
describe.runIf(dialects.includes('postgres'))('a status racing the send result on postgres', () => {
  let ctx: TestContext;
  let workspaceId: string;
  let contactId: string;
  beforeAll(async () => {
    ctx = await createTestContext('postgres');
    workspaceId = (await createWorkspace(ctx, 'Race')).id;
    contactId = (await upsertContactByPhone(ctx.database.db, { id: newId(), workspace_id: workspaceId, phone: '+14155550123', source: 'api', now: Date.now(), optedIn: true })).contact.id;
  });
  afterAll(async () => ctx.database.close());

  it('is applied when the result commits while the status waits for the row, not parked for ever', async () => {
    const now = Date.now();
    const id = newId(now);
    await insertMessages({ db: ctx.database.db, raw: null }, [
      {
        id, workspace_id: workspaceId, contact_id: contactId, session_id: null, definition_id: null, node_id: null, dedupe_key: null,
        direction: 'outbound', channel: 'whatsapp', provider: 'whatsapp-cloud', recipient: '+14155550123', kind: 'text', content: '{"kind":"text","text":"hi"}',
        marketing: 0, status: 'sending', provider_message_id: null, error_code: null, error_message: null, attempts: 1, next_attempt_at: now + 60_000, lease_until: now + 60_000,
        on_failure: 'continue', created_at: now, updated_at: now, sent_at: null, delivered_at: null, read_at: null, failed_at: null, segments: null, encoding: null,
      },
    ]);
    // The dispatcher's transaction: the send's result written, not committed yet.
    const dispatcher = new pg.Client({ connectionString: ctx.database.databaseUrl! });
    await dispatcher.connect();
    await dispatcher.query('begin');
    await dispatcher.query(`update messages set status = 'sent', provider_message_id = 'wamid.RACE1', sent_at = $1, next_attempt_at = null, lease_until = null where id = $2`, [now, id]);
    // Meta's `delivered`, naming the message, arrives meanwhile and waits for the row.
    const applying = applyProviderStatus(ctx, { workspaceId, provider: 'whatsapp-cloud', providerMessageId: 'wamid.RACE1', status: 'delivered', timestamp: now + 1000, errorCode: null, errorMessage: null, nudgeMessageId: id });
    await sleep(300);
    await dispatcher.query('commit');
    await dispatcher.end();
    expect(await applying).toBe(true);
    const row = await ctx.database.db.selectFrom('messages').select(['status', 'delivered_at', 'provider_message_id']).where('id', '=', id).executeTakeFirstOrThrow();
    expect(row).toEqual({ status: 'delivered', delivered_at: now + 1000, provider_message_id: 'wamid.RACE1' });
    const parked = await ctx.database.db.selectFrom('pending_statuses').selectAll().where('provider_message_id', '=', 'wamid.RACE1').execute();
    expect(parked).toEqual([]);
  });
});
