import type { Logger } from 'pino';
import type { Clock } from '../domain/clock.js';
import type { Config } from '../domain/config.js';
import type { Database } from '../store/database.js';
import type { TokenRow } from '../store/workspace-repository.js';
import type { ChannelRegistry } from './channel-registry.js';
import type { KeptDefinition, LookupCache } from './lookup-cache.js';
import type { VersionCache } from './version-cache.js';
import type { WebhookSubscriptionCache } from './webhook-subscription-cache.js';

/**
 * Everything a service needs, built once at the entry point and passed down:
 * no module-level singletons.
 */
export interface Context {
  readonly config: Config;
  readonly database: Database;
  readonly clock: Clock;
  readonly log: Logger;
  /** Secret used to encrypt provider secrets and sign links. */
  readonly secretKey: string;
  /** Tells the local scheduler and dispatcher that work became due (and, on PostgreSQL, other processes). */
  readonly wake: Waker;
  /** Which adapter sends each workspace's messages on each channel. */
  readonly channels: ChannelRegistry;
  /** Published versions, parsed and compiled once per process. */
  readonly versions: VersionCache;
  /** Each workspace's webhook subscription filters, so emitting an event needs no query. */
  readonly webhooks: WebhookSubscriptionCache;
  /** API tokens and definitions looked up on every trigger request, kept while the database reports no change. */
  readonly lookups: LookupCache<TokenRow, KeptDefinition>;
}

export interface Waker {
  sessions(): void;
  messages(): void;
  /** Webhook deliveries were queued (called inside the queuing transaction: see WakeRelay). */
  webhooks(): void;
  /** A broadcast became due (sent now, or scheduled). */
  broadcasts(): void;
}

export const noopWaker: Waker = { sessions: () => undefined, messages: () => undefined, webhooks: () => undefined, broadcasts: () => undefined };
