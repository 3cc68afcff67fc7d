import { verifyShopify } from '../channels/shopify-discounts.js';
import { verifyStripe } from '../channels/stripe-discounts.js';
import type { ShopifySettings, StripeSettings, VerifyOutcome } from '../channels/discount-provider.js';
import { isoTime } from '../domain/clock.js';
import { AppError, invalid } from '../domain/errors.js';
import {
  integrationDefaults,
  integrationProviders,
  integrationSecretFlags,
  integrationSecretsContext,
  isIntegrationProvider,
  openIntegrationSecrets,
  validateIntegrationSettings,
  type IntegrationProvider,
  type IntegrationSettingsInput,
} from '../domain/integration-settings.js';
import { parseJson, toJson } from '../domain/json.js';
import { sealJson, SecretBoxError } from '../domain/secret-box.js';
import * as repo from '../store/integration-repository.js';
import type { IntegrationRow } from '../store/integration-repository.js';
import type { Db } from '../store/database.js';
import type { Context } from './context.js';

export type { IntegrationProvider } from '../domain/integration-settings.js';

/**
 * The commerce integrations (Stripe, Shopify) that discount steps create codes at. Each
 * PUT validates the settings, checks the credentials with one authenticated read at the
 * provider, and stores the secrets sealed with the workspace and provider as context
 * together with what the provider said (`ok`, `error`, or `unverified` when it could not
 * be reached). Nothing here returns a secret to the API.
 */

/** What the API and the CLI show: never a secret, only which are set. */
export interface IntegrationView {
  provider: IntegrationProvider;
  connected: boolean;
  /** The non-secret settings with defaults filled in; {} when not connected. */
  config: Record<string, unknown>;
  secrets: Record<string, boolean>;
  /** not_connected | unverified | ok | error */
  status: string;
  last_error: string | null;
  status_at: string | null;
  updated_at: string | null;
}

/** Credentials ready for a provider client, and the sealed blob they came from (to guard status updates). */
export type IntegrationCredentials =
  | { provider: 'stripe'; settings: StripeSettings; sealed: string; status: string }
  | { provider: 'shopify'; settings: ShopifySettings; sealed: string; status: string };

function checkProvider(provider: string): IntegrationProvider {
  if (!isIntegrationProvider(provider)) throw invalid('provider', `must be one of ${integrationProviders.join(', ')} (got "${provider}")`);
  return provider;
}

/** The settings a provider client takes, from a row's config and opened secrets. */
function clientSettings(ctx: Context, provider: IntegrationProvider, config: Record<string, unknown>, secrets: Record<string, string>): StripeSettings | ShopifySettings {
  const base = typeof config.base_url === 'string' ? config.base_url : null;
  if (provider === 'stripe') return { baseUrl: base ?? ctx.config.stripeBaseUrl, secretKey: secrets.secret_key ?? '' };
  return {
    baseUrl: base ?? `https://${String(config.shop_domain)}`,
    accessToken: secrets.access_token ?? '',
    apiVersion: typeof config.api_version === 'string' ? config.api_version : integrationDefaults.shopifyApiVersion,
  };
}

async function verify(ctx: Context, provider: IntegrationProvider, settings: StripeSettings | ShopifySettings): Promise<VerifyOutcome> {
  const options = { timeoutMs: ctx.config.webhookTimeoutMs };
  return provider === 'stripe' ? verifyStripe(settings as StripeSettings, options) : verifyShopify(settings as ShopifySettings, options);
}

/** `ok`; `error` when the provider refused the credentials; `unverified` when it could not say. */
function statusOf(outcome: VerifyOutcome): { status: 'ok' | 'error' | 'unverified'; error: string | null } {
  if (outcome.ok) return { status: 'ok', error: null };
  return { status: outcome.retryable ? 'unverified' : 'error', error: outcome.message.slice(0, 1000) };
}

/**
 * Connects (or reconnects) a provider. A secret left out keeps the stored one. The
 * credentials are checked at the provider before the row is written, outside any
 * transaction, and the answer is stored as the status. Returns the public view.
 *
 * @example
 * await setIntegration(ctx, workspaceId, 'stripe', { secret_key: 'sk_live_…' });
 * // { provider: 'stripe', connected: true, status: 'ok', secrets: { secret_key_set: true }, … }
 */
export async function setIntegration(ctx: Context, workspaceId: string, provider: string, input: IntegrationSettingsInput): Promise<IntegrationView> {
  const name = checkProvider(provider);
  const db = ctx.database.db;
  const existing = await repo.findIntegration(db, workspaceId, name);
  let storedSecrets: Record<string, string> | null = null;
  let unreadable = false;
  if (existing) {
    try {
      storedSecrets = openIntegrationSecrets(ctx.secretKey, existing);
    } catch (error) {
      if (!(error instanceof SecretBoxError)) throw error;
      unreadable = true;
    }
  }
  const valid = validateIntegrationSettings(name, input, { storedSecrets, storedSecretsUnreadable: unreadable });
  const { status, error } = statusOf(await verify(ctx, name, clientSettings(ctx, name, valid.config, valid.secrets)));
  await repo.upsertIntegration(db, {
    workspace_id: workspaceId,
    provider: name,
    config: toJson(valid.config),
    secrets: sealJson(ctx.secretKey, valid.secrets, integrationSecretsContext(workspaceId, name)),
    status,
    status_error: error,
    now: ctx.clock.now(),
  });
  return toView(ctx, name, await repo.findIntegration(db, workspaceId, name));
}

/** Disconnects a provider and forgets its secrets. Removing one that is not connected is harmless. */
export async function deleteIntegration(ctx: Context, workspaceId: string, provider: string): Promise<IntegrationView> {
  const name = checkProvider(provider);
  await repo.deleteIntegration(ctx.database.db, workspaceId, name);
  return toView(ctx, name, undefined);
}

/** Both providers, connected or not, in the order stripe, shopify. */
export async function listIntegrations(ctx: Context, workspaceId: string): Promise<IntegrationView[]> {
  const rows = await repo.listIntegrations(ctx.database.db, workspaceId);
  return integrationProviders.map((provider) => toView(ctx, provider, rows.find((r) => r.provider === provider)));
}

export async function getIntegration(ctx: Context, workspaceId: string, provider: string): Promise<IntegrationView> {
  const name = checkProvider(provider);
  return toView(ctx, name, await repo.findIntegration(ctx.database.db, workspaceId, name));
}

/**
 * The provider's credentials with the secrets opened, or null when it is not connected.
 * Throws SecretBoxError when NUDGE_SECRET_KEY is not the key they were sealed with.
 */
export async function getIntegrationCredentials(ctx: Context, workspaceId: string, provider: IntegrationProvider): Promise<IntegrationCredentials | null> {
  const row = await repo.findIntegration(ctx.database.db, workspaceId, provider);
  if (!row) return null;
  const settings = clientSettings(ctx, provider, parseJson<Record<string, unknown>>(row.config, {}), openIntegrationSecrets(ctx.secretKey, row));
  return { provider, settings, sealed: row.secrets, status: row.status } as IntegrationCredentials;
}

/**
 * Records what the provider said while a step used the credentials in `sealed`: the
 * status of settings replaced in the meantime is left alone.
 */
export async function recordIntegrationStatus(ctx: Context, db: Db, workspaceId: string, provider: IntegrationProvider, status: 'ok' | 'error', error: string | null, sealed: string): Promise<void> {
  await repo.updateIntegrationStatus(db, workspaceId, provider, status, error === null ? null : error.slice(0, 1000), ctx.clock.now(), sealed);
}

/**
 * Refuses, with a 422 `provider_not_connected` naming the provider, unless every provider
 * is connected with credentials that work. A provider whose status is not `ok` is
 * checked again first (its outage may be over, or its key fixed at the provider), and
 * the answer is recorded.
 */
export async function requireWorkingIntegrations(ctx: Context, workspaceId: string, providers: readonly string[]): Promise<void> {
  for (const provider of providers) {
    if (!isIntegrationProvider(provider)) continue;
    const row = await repo.findIntegration(ctx.database.db, workspaceId, provider);
    if (!row) throw notConnected(provider, `The discount provider ${provider} is not connected; connect it with PUT /api/v1/settings/integrations/${provider} or use provider "builtin"`);
    if (row.status === 'ok') continue;
    let credentials: IntegrationCredentials | null;
    try {
      credentials = await getIntegrationCredentials(ctx, workspaceId, provider);
    } catch (error) {
      if (!(error instanceof SecretBoxError)) throw error;
      throw notConnected(provider, `The ${provider} credentials cannot be decrypted with this NUDGE_SECRET_KEY; set them again with PUT /api/v1/settings/integrations/${provider}`);
    }
    const outcome = statusOf(await verify(ctx, provider, credentials!.settings));
    await repo.updateIntegrationStatus(ctx.database.db, workspaceId, provider, outcome.status, outcome.error, ctx.clock.now(), row.secrets);
    if (outcome.status !== 'ok') {
      const why = outcome.status === 'error' ? `refuses the stored credentials (${outcome.error})` : `could not be reached to check the credentials (${outcome.error})`;
      throw notConnected(provider, `The discount provider ${provider} is not working: it ${why}; fix it with PUT /api/v1/settings/integrations/${provider}`);
    }
  }
}

function notConnected(provider: string, message: string): AppError {
  return new AppError('provider_not_connected', message, { errors: { steps: [`discount provider ${provider} is not connected`] }, extra: { provider } });
}

/**
 * The public view of a row. The secrets are opened only to tell which are set; when they
 * cannot be (NUDGE_SECRET_KEY changed) the view says so instead of failing the page.
 */
function toView(ctx: Context, provider: IntegrationProvider, row: IntegrationRow | undefined): IntegrationView {
  if (!row) {
    return { provider, connected: false, config: {}, secrets: integrationSecretFlags(provider, null), status: 'not_connected', last_error: null, status_at: null, updated_at: null };
  }
  let secrets: Record<string, string> | null = null;
  let status = row.status;
  let lastError = row.status_error;
  try {
    secrets = openIntegrationSecrets(ctx.secretKey, row);
  } catch (error) {
    if (!(error instanceof SecretBoxError)) throw error;
    status = 'error';
    lastError = error.message;
  }
  const config = parseJson<Record<string, unknown>>(row.config, {});
  const effective = clientSettings(ctx, provider, config, {});
  return {
    provider,
    connected: true,
    config: { ...config, base_url: effective.baseUrl },
    secrets: integrationSecretFlags(provider, secrets),
    status,
    last_error: lastError,
    status_at: isoTime(row.status_at),
    updated_at: isoTime(row.updated_at),
  };
}
