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
import { insertMessages } from '../../src/store/message-repository.js';
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
});
