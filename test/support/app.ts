import pino from 'pino';
import { buildApp, type App } from '../../src/api/app.js';
import { ManualClock, systemClock, type Clock } from '../../src/domain/clock.js';
import { loadConfig, type Config } from '../../src/domain/config.js';
import type { Dialect } from '../../src/store/database.js';
import { createToken, createWorkspace } from '../../src/engine/auth-service.js';
import { noopWaker, type Context } from '../../src/engine/context.js';
import { SettingsChannelRegistry, type ChannelRegistry } from '../../src/engine/channel-registry.js';
import { registerProviders } from '../../src/engine/providers.js';
import { VersionCache } from '../../src/engine/version-cache.js';
import { WebhookSubscriptionCache } from '../../src/engine/webhook-subscription-cache.js';
import { createTestDatabase, type TestDatabase } from './databases.js';
import { LookupCache } from '../../src/engine/lookup-cache.js';

export interface TestContext extends Context {
  readonly database: TestDatabase;
}

export async function createTestContext(
  dialect: Dialect,
  options: { env?: Record<string, string>; clock?: Clock; secretKey?: string; channels?: ChannelRegistry } = {},
): Promise<TestContext> {
  const database = await createTestDatabase(dialect);
  const config: Config = loadConfig({ LOG_LEVEL: 'silent', ...options.env });
  const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const secretKey = options.secretKey ?? 'test-secret-key-that-is-long-enough-0123456789';
  // As in production: each workspace's channels come from its provider settings, the sandbox without them.
  const channels =
    options.channels ??
    registerProviders(
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
  return {
    config,
    database,
    clock: options.clock ?? systemClock,
    log,
    secretKey,
    wake: noopWaker,
    channels,
    versions: new VersionCache(),
    webhooks: new WebhookSubscriptionCache(),
    lookups: new LookupCache(database),
  };
}

export interface TestApp {
  ctx: TestContext;
  app: App;
  token: string;
  workspaceId: string;
  /** A second workspace and its token, for isolation checks. */
  other: { token: string; workspaceId: string };
  /** Headers with the first workspace's token. */
  auth: Record<string, string>;
  close(): Promise<void>;
}

export async function createTestApp(
  dialect: Dialect,
  options: {
    env?: Record<string, string>;
    clock?: Clock;
    secretKey?: string;
    channels?: ChannelRegistry;
    scopes?: string[];
    /** Runs after the real routes are registered and before `ready()`: add test-only routes here. */
    beforeReady?: (app: App, ctx: TestContext) => void | Promise<void>;
  } = {},
): Promise<TestApp> {
  const ctx = await createTestContext(dialect, options);
  const workspace = await createWorkspace(ctx, 'Acme');
  const token = await createToken(ctx, { workspaceId: workspace.id, name: 'test', scopes: options.scopes ?? ['*'], rateLimit: 1_000_000 });
  const otherWorkspace = await createWorkspace(ctx, 'Globex');
  const otherToken = await createToken(ctx, { workspaceId: otherWorkspace.id, name: 'other', rateLimit: 1_000_000 });
  const app = await buildApp(ctx);
  await options.beforeReady?.(app, ctx);
  await app.ready();
  return {
    ctx,
    app,
    token: token.token,
    workspaceId: workspace.id,
    other: { token: otherToken.token, workspaceId: otherWorkspace.id },
    auth: { authorization: `Bearer ${token.token}` },
    close: async () => {
      await app.close();
      if (ctx.channels instanceof SettingsChannelRegistry) await ctx.channels.close();
      await ctx.database.close();
    },
  };
}

/** Creates a sequence through the API and enables it; throws, failing the test, if either is refused. */
export async function enabledSequence(t: TestApp, body: object): Promise<string> {
  const created = await t.app.inject({ method: 'POST', url: '/api/v1/sequences', headers: t.auth, payload: body });
  if (created.statusCode !== 201) throw new Error(`creating the sequence answered ${created.statusCode}: ${created.body}`);
  const id = created.json().sequence.id as string;
  const enable = await t.app.inject({ method: 'POST', url: `/api/v1/sequences/${id}/enable`, headers: t.auth, payload: {} });
  if (enable.statusCode !== 200) throw new Error(`enabling the sequence answered ${enable.statusCode}: ${enable.body}`);
  return id;
}

export { ManualClock };
