import type { Logger } from 'pino';
import type { ChannelAdapter, SendResult } from '../channels/channel.js';
import { SandboxChannel } from '../channels/sandbox-channel.js';
import type { Channel } from '../domain/definition.js';
import { parseJson } from '../domain/json.js';
import { openProviderSecrets } from '../domain/provider-settings.js';
import { SecretBoxError } from '../domain/secret-box.js';
import type { Database } from '../store/database.js';
import { listAllProviderSettings, type ProviderSettingsRow } from '../store/provider-settings-repository.js';

/**
 * Which adapter sends a workspace's messages on a channel. Every channel without
 * provider settings uses the sandbox.
 */
export interface ChannelRegistry {
  adapterFor(workspaceId: string, channel: Channel, provider: string): ChannelAdapter;
  providerFor(workspaceId: string, channel: Channel): string;
  /**
   * Loads the settings when the cache is stale (a no-op otherwise). Call it before a
   * batch so adapterFor and providerFor stay synchronous on the hot path.
   */
  refresh?(): Promise<void>;
  /** Forgets the cache: the next refresh reloads (called after a settings change in this process). */
  invalidate?(): void;
  /** The shared per-second send limit of this workspace's sender on the channel, or null when it has none. */
  rateLimitFor?(workspaceId: string, channel: Channel): { key: string; perSecond: number } | null;
  /** The recorded status of the channel's settings (unverified, ok, error), or null on the sandbox. */
  statusOf?(workspaceId: string, channel: Channel): string | null;
}

export class SandboxOnlyRegistry implements ChannelRegistry {
  private readonly sandbox: SandboxChannel;
  constructor(options: { inline?: boolean } = {}) {
    this.sandbox = new SandboxChannel(options);
  }
  adapterFor(): ChannelAdapter {
    return this.sandbox;
  }
  providerFor(): string {
    return 'sandbox';
  }
}

/** What a provider factory receives besides the workspace's config and decrypted secrets. */
export interface ProviderEnvironment {
  workspaceId: string;
  /** Nudge's public base URL (status callbacks, unsubscribe links). */
  publicUrl: string;
  /** Timeout of provider HTTP calls. */
  timeoutMs: number;
}

/** Builds a provider's adapter from one workspace's settings. */
export type ProviderFactory = (config: Record<string, unknown>, secrets: Record<string, string>, env: ProviderEnvironment) => ChannelAdapter;

export interface SettingsChannelRegistryOptions {
  database: Database;
  secretKey: string;
  log: Logger;
  publicUrl: string;
  timeoutMs: number;
  /** Messages per second per WhatsApp phone number, shared by every worker. */
  whatsappRatePerSecond: number;
  /** Sandbox delivery inline (in the queuing transaction) or through the dispatcher. */
  sandboxInline?: boolean;
  /** How long loaded settings are trusted before the next refresh reads them again. */
  ttlMs?: number;
}

interface Entry {
  row: ProviderSettingsRow;
  config: Record<string, unknown>;
  adapter: ChannelAdapter | null;
}

/**
 * Resolves each (workspace, channel) from the workspace's provider settings: the
 * sandbox when it has none, otherwise the adapter the provider's factory builds.
 *
 * Settings are loaded in bulk (one small table) by `refresh()`, which the worker calls
 * at the start of each batch and which reads again only when the cache is older than
 * the TTL, so a change made through another process applies within `ttlMs` without a
 * restart, and a change made in this process applies at once (`invalidate`). An
 * adapter is built on first use and kept while its row is unchanged (`updated_at`),
 * so adapters holding connections (SMTP) are not rebuilt every refresh.
 *
 * The current settings decide, not the provider recorded on a queued message: a
 * message queued just before the settings changed goes out through the provider the
 * workspace configured last, which is what its owner asked for most recently.
 */
export class SettingsChannelRegistry implements ChannelRegistry {
  private readonly factories = new Map<string, ProviderFactory>();
  private readonly sandbox: SandboxChannel;
  private readonly ttlMs: number;
  private entries = new Map<string, Entry>();
  private loadedAt: number | null = null;
  private loading: Promise<void> | null = null;

  constructor(private readonly options: SettingsChannelRegistryOptions) {
    this.sandbox = new SandboxChannel({ inline: options.sandboxInline ?? true });
    this.ttlMs = options.ttlMs ?? 30_000;
  }

  /** Registers the factory of a provider name (`whatsapp-cloud`, `twilio`, `smtp`). */
  registerProvider(provider: string, factory: ProviderFactory): this {
    this.factories.set(provider, factory);
    // Adapters built before the factory existed are rebuilt on next use.
    for (const entry of this.entries.values()) if (entry.row.provider === provider) entry.adapter = null;
    return this;
  }

  async refresh(): Promise<void> {
    if (this.loadedAt !== null && performance.now() - this.loadedAt < this.ttlMs) return;
    this.loading ??= this.load().finally(() => {
      this.loading = null;
    });
    await this.loading;
  }

  invalidate(): void {
    this.loadedAt = null;
  }

  providerFor(workspaceId: string, channel: Channel): string {
    return this.entry(workspaceId, channel)?.row.provider ?? 'sandbox';
  }

  adapterFor(workspaceId: string, channel: Channel): ChannelAdapter {
    const entry = this.entry(workspaceId, channel);
    if (!entry) return this.sandbox;
    entry.adapter ??= this.build(entry);
    return entry.adapter;
  }

  rateLimitFor(workspaceId: string, channel: Channel): { key: string; perSecond: number } | null {
    const entry = this.entry(workspaceId, channel);
    if (!entry || entry.row.provider !== 'whatsapp-cloud') return null;
    const phoneNumberId = entry.config.phone_number_id;
    return typeof phoneNumberId === 'string' ? { key: `whatsapp:${phoneNumberId}`, perSecond: this.options.whatsappRatePerSecond } : null;
  }

  statusOf(workspaceId: string, channel: Channel): string | null {
    return this.entry(workspaceId, channel)?.row.status ?? null;
  }

  /** Closes adapters that hold connections (those with a `close()`), e.g. on shutdown. */
  async close(): Promise<void> {
    const adapters = [...this.entries.values()].map((e) => e.adapter).filter((a): a is ChannelAdapter => a !== null);
    this.entries = new Map();
    this.loadedAt = null;
    await Promise.all(adapters.map((a) => closeAdapter(a)));
  }

  private everLoaded = false;

  private entry(workspaceId: string, channel: Channel): Entry | undefined {
    // Resolving before the first load would send real customers' messages to the
    // sandbox (and mark them delivered): a loud bug is better than a silent one.
    if (!this.everLoaded) {
      throw new Error('SettingsChannelRegistry used before refresh(): await registry.refresh() first');
    }
    return this.entries.get(`${workspaceId}:${channel}`);
  }

  private async load(): Promise<void> {
    const rows = await listAllProviderSettings(this.options.database.db);
    const next = new Map<string, Entry>();
    const retired: ChannelAdapter[] = [];
    for (const row of rows) {
      const key = `${row.workspace_id}:${row.channel}`;
      const previous = this.entries.get(key);
      const unchanged = previous && previous.row.provider === row.provider && previous.row.updated_at === row.updated_at;
      next.set(key, { row, config: parseJson<Record<string, unknown>>(row.config, {}), adapter: unchanged ? previous.adapter : null });
      if (previous?.adapter && !unchanged) retired.push(previous.adapter);
    }
    for (const [key, entry] of this.entries) if (!next.has(key) && entry.adapter) retired.push(entry.adapter);
    this.entries = next;
    this.loadedAt = performance.now();
    this.everLoaded = true;
    for (const adapter of retired) void closeAdapter(adapter);
  }

  private build(entry: Entry): ChannelAdapter {
    const { row } = entry;
    const factory = this.factories.get(row.provider);
    if (!factory) {
      return failingAdapter(row.provider, { ok: false, retryable: false, code: 'provider_not_available', message: `This Nudge build has no adapter for the provider "${row.provider}"` });
    }
    let secrets: Record<string, string>;
    try {
      secrets = openProviderSecrets(this.options.secretKey, row);
    } catch (error) {
      if (!(error instanceof SecretBoxError)) throw error;
      this.options.log.error({ workspace_id: row.workspace_id, channel: row.channel }, error.message);
      // Retryable: restoring the right key (and restarting) lets the queued messages go out.
      return failingAdapter(row.provider, { ok: false, retryable: true, code: 'secrets_unreadable', message: error.message });
    }
    try {
      return factory(entry.config, secrets, { workspaceId: row.workspace_id, publicUrl: this.options.publicUrl, timeoutMs: this.options.timeoutMs });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      return failingAdapter(row.provider, { ok: false, retryable: false, code: 'provider_misconfigured', message });
    }
  }
}

function failingAdapter(provider: string, result: SendResult): ChannelAdapter {
  return { provider, send: async () => result };
}

async function closeAdapter(adapter: ChannelAdapter): Promise<void> {
  const closable = adapter as ChannelAdapter & { close?: () => unknown };
  if (typeof closable.close === 'function') {
    try {
      await closable.close();
    } catch {
      // Closing is best effort: the adapter is no longer used either way.
    }
  }
}
