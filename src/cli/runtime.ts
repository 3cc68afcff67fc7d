import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { systemClock } from '../domain/clock.js';
import { loadConfig, type Config } from '../domain/config.js';
import type { Context } from '../engine/context.js';
import { LocalWaker, WakeRelay } from '../engine/waker.js';
import { SettingsChannelRegistry } from '../engine/channel-registry.js';
import { registerProviders } from '../engine/providers.js';
import { VersionCache } from '../engine/version-cache.js';
import { WebhookSubscriptionCache } from '../engine/webhook-subscription-cache.js';
import { openDatabase } from '../store/database.js';
import { migrateToLatest } from '../store/migrate.js';
import { LookupCache } from '../engine/lookup-cache.js';

/**
 * The secret key comes from NUDGE_SECRET_KEY; without it a random key is generated
 * once into the data folder, so `npm start` works with nothing set and secrets
 * stay decryptable across restarts.
 */
function resolveSecretKey(config: Config): string {
  if (config.secretKey) return config.secretKey;
  const dir = resolve(config.dataDir);
  const file = join(dir, 'secret.key');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  mkdirSync(dir, { recursive: true });
  const key = randomBytes(32).toString('hex');
  writeFileSync(file, `${key}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return key;
}

export interface Runtime {
  ctx: Context;
  /** Wakes this process's worker loops; ctx.wake also relays to other processes on PostgreSQL. */
  local: LocalWaker;
  close(): Promise<void>;
}

export async function createRuntime(env: Record<string, string | undefined>, options: { migrate?: boolean; poolSize?: number } = {}): Promise<Runtime> {
  const config = loadConfig(env);
  // Logs go to stderr: stdout carries what a command prints for the user and for scripts
  // (`TOKEN=$(nudge token create …)`, the first-start banner), and a log line there would
  // corrupt it. pino.destination is synchronous, so nothing is lost on process.exit.
  const log = pino({ level: config.logLevel, base: { service: 'nudge' } }, pino.destination(2));
  const database = openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: options.poolSize, backgroundCheckpoints: true });
  try {
    if (options.migrate !== false) {
      const applied = await migrateToLatest(database.db);
      if (applied.length > 0) log.info({ migrations: applied }, 'database migrated');
    }
  } catch (error) {
    await database.close();
    throw error;
  }
  const local = new LocalWaker();
  const secretKey = resolveSecretKey(config);
  // Each workspace's channels come from its provider settings; without them, the sandbox.
  const channels = registerProviders(
    new SettingsChannelRegistry({
      database,
      secretKey,
      log,
      publicUrl: config.publicUrl,
      timeoutMs: config.webhookTimeoutMs,
      whatsappRatePerSecond: config.whatsappRatePerSecond,
      sandboxInline: config.sandboxDelivery === 'inline',
    }),
  );
  const ctx: Context = {
    config,
    database,
    clock: systemClock,
    log,
    secretKey,
    wake: new WakeRelay(local, database, log),
    channels,
    versions: new VersionCache(),
    webhooks: new WebhookSubscriptionCache(),
    lookups: new LookupCache(database),
  };
  return {
    ctx,
    local,
    close: async () => {
      await channels.close();
      await database.close();
    },
  };
}
