import { isoTime } from '../domain/clock.js';
import { AppError } from '../domain/errors.js';
import { parseJson, toJson } from '../domain/json.js';
import {
  isProviderChannel,
  openProviderSecrets,
  providerSecretsContext,
  providerSpecs,
  secretFlags,
  validateProviderSettings,
  type ProviderChannel,
  type ProviderSettingsInput,
} from '../domain/provider-settings.js';
import { sealJson, SecretBoxError } from '../domain/secret-box.js';
import * as repo from '../store/provider-settings-repository.js';
import type { ProviderSettingsRow } from '../store/provider-settings-repository.js';
import type { Context } from './context.js';

export type { ProviderChannel, ProviderSettingsInput } from '../domain/provider-settings.js';

/**
 * Each workspace's provider settings per channel. Secrets are sealed with the
 * workspace and channel as authenticated context (see domain/secret-box.ts), and no
 * function here returns them except `getProviderSettings`, which the engine and the
 * provider adapters' wiring use; the API shows `channelSettingsView` only.
 */

export interface ProviderSettings {
  provider: string;
  config: Record<string, unknown>;
  /** Decrypted. Never returned by the API. */
  secrets: Record<string, string>;
  /** unverified | ok | error */
  status: string;
}

/** What the API and the CLI show: never a secret, only which are set. */
export interface ChannelSettingsView {
  channel: ProviderChannel;
  /** `sandbox` when the workspace has no settings for the channel. */
  provider: string;
  config: Record<string, unknown>;
  /** `{ access_token_set: true, … }`. */
  secrets: Record<string, boolean>;
  /** sandbox | unverified | ok | error */
  status: string;
  last_error: string | null;
  status_at: string | null;
  updated_at: string | null;
}

/** Decrypts a stored row's secrets; throws SecretBoxError when NUDGE_SECRET_KEY changed. */
export function openSecrets(secretKey: string, row: { workspace_id: string; channel: string; secrets: string }): Record<string, string> {
  return openProviderSecrets(secretKey, row);
}

function checkChannel(channel: string): ProviderChannel {
  if (!isProviderChannel(channel)) {
    throw new AppError('validation_failed', `channel must be one of whatsapp, sms, email (got "${channel}")`, {
      errors: { channel: ['channel must be one of whatsapp, sms, email'] },
    });
  }
  return channel;
}

/**
 * The workspace's settings for a channel with the secrets decrypted, or null when the
 * channel uses the sandbox. Throws a clear error when the secrets were sealed with
 * another NUDGE_SECRET_KEY.
 *
 * @example
 * const wa = await getProviderSettings(ctx, workspaceId, 'whatsapp');
 * if (wa) new WhatsAppCloudChannel({ phoneNumberId: String(wa.config.phone_number_id), accessToken: wa.secrets.access_token!, … });
 */
export async function getProviderSettings(ctx: Context, workspaceId: string, channel: ProviderChannel): Promise<ProviderSettings | null> {
  const row = await repo.findProviderSettings(ctx.database.db, workspaceId, checkChannel(channel));
  if (!row) return null;
  return { provider: row.provider, config: parseJson<Record<string, unknown>>(row.config, {}), secrets: openProviderSecrets(ctx.secretKey, row), status: row.status };
}

/**
 * The workspace whose settings for `channel` have `config[key] === value`: how an
 * inbound webhook (which names a phone number id or an account SID) finds its
 * workspace. Scans the channel's rows, which are few (one per workspace).
 */
export async function findWorkspaceByProviderConfig(ctx: Context, channel: ProviderChannel, key: string, value: string): Promise<string | null> {
  const rows = await repo.listProviderSettingsByChannel(ctx.database.db, checkChannel(channel));
  for (const row of rows) {
    const config = parseJson<Record<string, unknown>>(row.config, {});
    if (config[key] === value) return row.workspace_id;
  }
  return null;
}

/**
 * Sets (or replaces) the channel's provider settings after validating every field.
 * A secret left out keeps its stored value for the same provider; `""` removes an
 * optional one. The channel status starts `unverified` again. Returns the public view.
 *
 * @example
 * await setProviderSettings(ctx, workspaceId, 'sms', { account_sid: 'AC…', auth_token: '…', from: '+14155550100' });
 */
export async function setProviderSettings(ctx: Context, workspaceId: string, channel: ProviderChannel, input: ProviderSettingsInput): Promise<ChannelSettingsView> {
  checkChannel(channel);
  const db = ctx.database.db;
  const view = await db.transaction().execute(async (trx) => {
    const existing = await repo.findProviderSettings(trx, workspaceId, channel);
    let storedSecrets: Record<string, string> | null = null;
    let unreadable = false;
    if (existing && existing.provider === (input.provider ?? providerSpecs[channel].provider)) {
      try {
        storedSecrets = openProviderSecrets(ctx.secretKey, existing);
      } catch (error) {
        if (!(error instanceof SecretBoxError)) throw error;
        unreadable = true;
      }
    }
    const valid = validateProviderSettings(channel, input, { defaultCountry: ctx.config.defaultCountry, storedSecrets, storedSecretsUnreadable: unreadable });
    const now = ctx.clock.now();
    await repo.upsertProviderSettings(trx, {
      workspace_id: workspaceId,
      channel,
      provider: valid.provider,
      config: toJson(valid.config),
      secrets: sealJson(ctx.secretKey, valid.secrets, providerSecretsContext(workspaceId, channel)),
      now,
    });
    return toView(ctx.secretKey, channel, (await repo.findProviderSettings(trx, workspaceId, channel))!);
  });
  ctx.channels.invalidate?.();
  return view;
}

/** Removes the channel's settings: it uses the sandbox again. Returns the (sandbox) view. */
export async function deleteProviderSettings(ctx: Context, workspaceId: string, channel: ProviderChannel): Promise<ChannelSettingsView> {
  await repo.deleteProviderSettings(ctx.database.db, workspaceId, checkChannel(channel));
  ctx.channels.invalidate?.();
  return toView(ctx.secretKey, channel, undefined);
}

/**
 * Records how the provider last answered: `error` with its message after an
 * authentication failure (shown in GET /settings/channels), `ok` after a success.
 * A channel without settings (the sandbox) has no status to record.
 */
export async function recordChannelStatus(ctx: Context, workspaceId: string, channel: ProviderChannel, status: 'ok' | 'error', error?: string): Promise<void> {
  await repo.updateProviderStatus(ctx.database.db, workspaceId, checkChannel(channel), status, status === 'error' ? (error ?? 'error').slice(0, 1000) : null, ctx.clock.now());
  ctx.channels.invalidate?.();
}

/** Every channel of the workspace, in the order whatsapp, sms, email, as the API shows them. */
export async function listChannelSettings(ctx: Context, workspaceId: string): Promise<ChannelSettingsView[]> {
  const rows = await repo.listProviderSettings(ctx.database.db, workspaceId);
  return (['whatsapp', 'sms', 'email'] as const).map((channel) => toView(ctx.secretKey, channel, rows.find((r) => r.channel === channel)));
}

export async function getChannelSettings(ctx: Context, workspaceId: string, channel: ProviderChannel): Promise<ChannelSettingsView> {
  return toView(ctx.secretKey, channel, await repo.findProviderSettings(ctx.database.db, workspaceId, checkChannel(channel)));
}

/**
 * The public view of a row. The secrets are opened only to tell which are set; when
 * they cannot be (NUDGE_SECRET_KEY changed) the view says so in `status` and
 * `last_error` rather than failing the whole settings page.
 */
function toView(secretKey: string, channel: ProviderChannel, row: ProviderSettingsRow | undefined): ChannelSettingsView {
  if (!row) {
    return { channel, provider: 'sandbox', config: {}, secrets: secretFlags(channel, null), status: 'sandbox', last_error: null, status_at: null, updated_at: null };
  }
  let secrets: Record<string, string> | null = null;
  let status = row.status;
  let lastError = row.status_error;
  try {
    secrets = openProviderSecrets(secretKey, row);
  } catch (error) {
    if (!(error instanceof SecretBoxError)) throw error;
    status = 'error';
    lastError = error.message;
  }
  return {
    channel,
    provider: row.provider,
    config: parseJson<Record<string, unknown>>(row.config, {}),
    secrets: secretFlags(channel, secrets),
    status,
    last_error: lastError,
    status_at: isoTime(row.status_at),
    updated_at: isoTime(row.updated_at),
  };
}
