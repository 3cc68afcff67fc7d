import { describe, expect, it } from 'vitest';
import type { ChannelAdapter, OutboundMessage } from '../../src/channels/channel.js';
import { createWorkspace } from '../../src/engine/auth-service.js';
import { SettingsChannelRegistry } from '../../src/engine/channel-registry.js';
import { findOrCreateContactByPhone } from '../../src/engine/contact-service.js';
import type { Context } from '../../src/engine/context.js';
import { setProviderSettings } from '../../src/engine/provider-settings-service.js';
import { Worker } from '../../src/engine/worker.js';
import { newId } from '../../src/domain/ids.js';
import { openDatabase } from '../../src/store/database.js';
import { claimDueMessages, insertMessages } from '../../src/store/message-repository.js';
import { limitSendRate } from '../../src/engine/send-rate-limit.js';
import { queueDirectMessage } from '../../src/engine/messaging-service.js';
import type { Clock } from '../../src/domain/clock.js';
import { createTestContext } from '../support/app.js';
import { dialects } from '../support/databases.js';

describe.each(dialects)('the shared per-number WhatsApp rate limit on %s', (dialect) => {
  it('never lets two workers together send more than the limit in any second, and defers without counting attempts', async () => {
    const limit = 10;
    const total = 34;
    const ctx = await createTestContext(dialect, { env: { NUDGE_WHATSAPP_RATE_PER_SECOND: String(limit) } });
    // The second worker stands for another process: its own registry and, on PostgreSQL, its own
    // pool. Two SQLite handles cannot share one process (better-sqlite3 waits for a lock
    // synchronously, blocking the very event loop that would release it), so on SQLite the
    // workers share the handle, as a single `nudge start` process does.
    const otherDatabase = dialect === 'postgres' ? openDatabase({ databaseUrl: ctx.database.databaseUrl, dataDir: ctx.database.dataDir }) : ctx.database;
    const sends: Array<{ at: number; id: string }> = [];
    const fakeCloud = (): ChannelAdapter => ({
      provider: 'whatsapp-cloud',
      send: async (message: OutboundMessage) => {
        sends.push({ at: Date.now(), id: message.id });
        return { ok: true, providerMessageId: `wamid.${message.id}`, status: 'sent' };
      },
    });
    const registry = (database: Context['database']) =>
      new SettingsChannelRegistry({ database, secretKey: ctx.secretKey, log: ctx.log, publicUrl: 'http://localhost', timeoutMs: 1000, whatsappRatePerSecond: limit }).registerProvider(
        'whatsapp-cloud',
        fakeCloud,
      );
    const registryA = registry(ctx.database);
    const registryB = registry(otherDatabase);
    const ctxB: Context = { ...ctx, database: otherDatabase, channels: registryB };
    const options = { batchSize: 25, pollIntervalMs: 20, dispatchConcurrency: 8 };
    const workers = [new Worker({ ...ctx, channels: registryA }, registryA, ctx.versions, null, options), new Worker(ctxB, registryB, ctx.versions, null, options)];
    try {
      const ws = await createWorkspace(ctx, 'Rate');
      await setProviderSettings(ctx, ws.id, 'whatsapp', { phone_number_id: '106540352242922', access_token: 'token' });
      const { contact } = await findOrCreateContactByPhone(ctx, ws.id, '+14155550301', { source: 'api', optedIn: true });
      const now = Date.now();
      await insertMessages(
        { db: ctx.database.db, raw: ctx.database.sqlite },
        Array.from({ length: total }, (_, i) => ({
          id: newId(now + i),
          workspace_id: ws.id, contact_id: contact.id, session_id: null, definition_id: null, node_id: null, dedupe_key: null,
          direction: 'outbound' as const, channel: 'whatsapp' as const, provider: 'whatsapp-cloud', recipient: contact.phone, kind: 'text',
          content: JSON.stringify({ kind: 'text', text: `message ${i}` }), marketing: 0, status: 'queued', provider_message_id: null,
          error_code: null, error_message: null, attempts: 0, next_attempt_at: now, lease_until: null, on_failure: 'continue',
          created_at: now, updated_at: now, sent_at: null, delivered_at: null, read_at: null, failed_at: null,
        })),
      );

      for (const worker of workers) worker.start();
      const deadline = Date.now() + 20_000;
      while (sends.length < total && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      await Promise.all(workers.map((w) => w.stop()));

      expect(sends).toHaveLength(total);
      expect(new Set(sends.map((s) => s.id)).size).toBe(total);
      const perSecond = new Map<number, number>();
      for (const s of sends) perSecond.set(Math.floor(s.at / 1000), (perSecond.get(Math.floor(s.at / 1000)) ?? 0) + 1);
      expect(Math.max(...perSecond.values())).toBeLessThanOrEqual(limit);
      expect(perSecond.size).toBeGreaterThanOrEqual(Math.ceil(total / limit));

      const rows = await ctx.database.db.selectFrom('messages').select(['status', 'attempts']).where('workspace_id', '=', ws.id).execute();
      expect(rows.every((r) => r.status === 'sent' && r.attempts === 1)).toBe(true);
      const buckets = await ctx.database.db.selectFrom('rate_buckets').selectAll().where('key', '=', 'whatsapp:106540352242922').execute();
      expect(buckets.reduce((n, b) => n + Number(b.count), 0)).toBe(total);
      expect(buckets.every((b) => Number(b.count) <= limit)).toBe(true);
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
      await registryA.close();
      await registryB.close();
      if (otherDatabase !== ctx.database) await otherDatabase.close();
      await ctx.database.close();
    }
  });

  it('holds back the sends whose slots were taken too late in their second, so they cannot land in the next one', async () => {
    const limit = 10;
    const second = Date.UTC(2026, 5, 1, 9, 0, 0);
    // limitSendRate reads the clock before it takes the slots and again after their commit:
    // each case says where in the second those two readings fall.
    const readings: number[] = [];
    const clock: Clock = { now: () => readings.shift() ?? second };
    const ctx = await createTestContext(dialect, { clock, env: { NUDGE_WHATSAPP_RATE_PER_SECOND: String(limit) } });
    const registry = ctx.channels as SettingsChannelRegistry;
    registry.registerProvider('whatsapp-cloud', () => ({ provider: 'whatsapp-cloud', send: async () => ({ ok: true, providerMessageId: 'wamid.x', status: 'sent' }) }));
    try {
      const ws = await createWorkspace(ctx, 'Late slots');
      await setProviderSettings(ctx, ws.id, 'whatsapp', { phone_number_id: '106540352242923', access_token: 'token' });
      await registry.refresh();
      const { contact } = await findOrCreateContactByPhone(ctx, ws.id, '+14155550302', { source: 'api', optedIn: true });
      const claim = async (count: number, at: number) => {
        const ids = Array.from({ length: count }, (_, i) => newId(at + i));
        await insertMessages(
          { db: ctx.database.db, raw: ctx.database.sqlite },
          ids.map((id) => ({
            id, workspace_id: ws.id, contact_id: contact.id, session_id: null, definition_id: null, node_id: null, dedupe_key: null,
            direction: 'outbound' as const, channel: 'whatsapp' as const, provider: 'whatsapp-cloud', recipient: contact.phone, kind: 'text',
            content: JSON.stringify({ kind: 'text', text: 'hi' }), marketing: 0, status: 'queued', provider_message_id: null,
            error_code: null, error_message: null, attempts: 0, next_attempt_at: at, lease_until: null, on_failure: 'continue',
            created_at: at, updated_at: at, sent_at: null, delivered_at: null, read_at: null, failed_at: null,
          })),
        );
        return ctx.database.db.transaction().execute((trx) => claimDueMessages(trx, ctx.database.sqlite, dialect, at, 100, 30_000));
      };
      const stored = (ids: string[]) => ctx.database.db.selectFrom('messages').select(['status', 'attempts', 'next_attempt_at']).where('id', 'in', ids).execute();

      // Taken at 500 ms and committed at 600 ms: sent now.
      const onTime = await claim(4, second + 500);
      readings.push(second + 500, second + 600);
      expect((await limitSendRate(ctx, registry, onTime)).map((m) => m.id).sort()).toEqual(onTime.map((m) => m.id).sort());

      // Taken at 700 ms, committed at 950 ms (in the last 100 ms of the second): held back to the
      // next second without an attempt counted, their slots in this second left unused.
      const late = await claim(3, second + 700);
      readings.push(second + 700, second + 950);
      expect(await limitSendRate(ctx, registry, late)).toEqual([]);
      expect(await stored(late.map((m) => m.id))).toEqual(late.map(() => ({ status: 'queued', attempts: 0, next_attempt_at: second + 1000 })));

      // Committed after the second had ended: due again at once, in the second it is now.
      const overdue = await claim(2, second + 800);
      readings.push(second + 800, second + 1_250);
      expect(await limitSendRate(ctx, registry, overdue)).toEqual([]);
      expect(await stored(overdue.map((m) => m.id))).toEqual(overdue.map(() => ({ status: 'queued', attempts: 0, next_attempt_at: second + 1_250 })));

      // Taking the slots took longer than any window leaves (950 ms): held back, they would be
      // late again at every try, so they are sent rather than starved.
      // (The claim also takes the five held back above, due since.)
      const slow = await claim(2, second + 2_050);
      expect(slow).toHaveLength(7);
      readings.push(second + 2_050, second + 3_000);
      expect((await limitSendRate(ctx, registry, slow)).map((m) => m.id).sort()).toEqual(slow.map((m) => m.id).sort());

      const buckets = await ctx.database.db.selectFrom('rate_buckets').select(['window_start', 'count']).where('key', '=', 'whatsapp:106540352242923').orderBy('window_start').execute();
      expect(buckets.map((b) => ({ window_start: Number(b.window_start), count: Number(b.count) }))).toEqual([{ window_start: second, count: 9 }, { window_start: second + 2_000, count: 7 }]);
    } finally {
      await registry.close();
      await ctx.database.close();
    }
  });

  it('never sends a direct message whose slot was taken in a second that ended before its commit', async () => {
    const second = Date.UTC(2026, 5, 1, 10, 0, 0);
    // The clock reads 700 ms into the second, then jumps to 950 ms (its last 100 ms) after
    // `jumpAfter` readings; each send moves the jump one reading later, so that in turn it
    // falls before the slot is taken, between the slot and the send, and after the send.
    let readings = 0;
    let jumpAfter = 0;
    const clock: Clock = { now: () => (readings++ < jumpAfter ? second + 700 : second + 950) };
    const ctx = await createTestContext(dialect, { clock, env: { NUDGE_WHATSAPP_RATE_PER_SECOND: '80' } });
    const registry = ctx.channels as SettingsChannelRegistry;
    const sent: string[] = [];
    registry.registerProvider('whatsapp-cloud', () => ({
      provider: 'whatsapp-cloud',
      send: async (m: OutboundMessage) => {
        sent.push(m.id);
        return { ok: true, providerMessageId: `wamid.${m.id}`, status: 'sent' };
      },
    }));
    try {
      const ws = await createWorkspace(ctx, 'Direct late');
      await setProviderSettings(ctx, ws.id, 'whatsapp', { phone_number_id: '106540352242924', access_token: 'token' });
      await registry.refresh();
      const { contact } = await findOrCreateContactByPhone(ctx, ws.id, '+14155550303', { source: 'api', optedIn: true });
      const slots = async () => Number((await ctx.database.db.selectFrom('rate_buckets').select('count').where('key', '=', 'whatsapp:106540352242924').where('window_start', '=', second).executeTakeFirst())?.count ?? 0);
      const outcomes = new Set<string>();
      for (jumpAfter = 0; jumpAfter <= 12; jumpAfter += 1) {
        readings = 0;
        const before = await slots();
        const outcome = await queueDirectMessage(ctx, { workspaceId: ws.id, contactId: contact.id, channel: 'whatsapp', content: { kind: 'text', text: `try ${jumpAfter}` }, marketing: false });
        const slotTaken = (await slots()) - before;
        const row = await ctx.database.db.selectFrom('messages').select(['status', 'attempts', 'next_attempt_at']).where('id', '=', outcome.messageId).executeTakeFirstOrThrow();
        if (sent.includes(outcome.messageId)) {
          expect(slotTaken).toBe(1);
          outcomes.add('sent');
        } else if (slotTaken === 0) {
          // Refused before a slot was taken: in the tail already. The dispatcher sends it.
          expect(row).toMatchObject({ status: 'queued', attempts: 0 });
          outcomes.add('refused');
        } else {
          // A slot taken at 700 ms, the commit seen at 950 ms: held back to the next second.
          expect(row).toEqual({ status: 'queued', attempts: 0, next_attempt_at: second + 1000 });
          expect(outcome.status).toBe('queued');
          outcomes.add('held back');
        }
      }
      expect([...outcomes].sort()).toEqual(['held back', 'refused', 'sent']);
    } finally {
      await registry.close();
      await ctx.database.close();
    }
  });
});
