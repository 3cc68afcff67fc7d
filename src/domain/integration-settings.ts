import { invalidFields, type FieldErrors } from './errors.js';
import { openJson } from './secret-box.js';
import { refusedPortProblem } from './outbound-ports.js';

/**
 * The commerce integrations a workspace connects for its discount steps (Stripe,
 * Shopify), and the validation of their settings. Pure: the service encrypts the
 * secrets, verifies them against the provider and stores the result.
 *
 * As with channel settings, `config` is shown back by the API and `secrets` never are.
 */

export type IntegrationProvider = 'stripe' | 'shopify';
export const integrationProviders: readonly IntegrationProvider[] = ['stripe', 'shopify'];

export interface IntegrationSpec {
  /** Config keys, in display order. */
  configKeys: readonly string[];
  secretKeys: readonly string[];
}

export const integrationSpecs: Record<IntegrationProvider, IntegrationSpec> = {
  stripe: { configKeys: ['base_url'], secretKeys: ['secret_key'] },
  shopify: { configKeys: ['shop_domain', 'api_version', 'base_url'], secretKeys: ['access_token'] },
};

export const integrationDefaults = {
  /** Shopify Admin API version sent when the settings name none. */
  shopifyApiVersion: '2024-10',
} as const;

export function isIntegrationProvider(value: string): value is IntegrationProvider {
  return (integrationProviders as readonly string[]).includes(value);
}

/** The authenticated context the secrets are sealed with: another row's blob never opens here. */
export function integrationSecretsContext(workspaceId: string, provider: string): string {
  return `${workspaceId}:integration:${provider}`;
}

export function openIntegrationSecrets(secretKey: string, row: { workspace_id: string; provider: string; secrets: string }): Record<string, string> {
  const opened = openJson(secretKey, row.secrets, integrationSecretsContext(row.workspace_id, row.provider));
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(opened)) if (typeof value === 'string') out[key] = value;
  return out;
}

/** `{ secret_key_set: true }`: which secrets are stored, never their values. */
export function integrationSecretFlags(provider: IntegrationProvider, secrets: Record<string, string> | null): Record<string, boolean> {
  return Object.fromEntries(integrationSpecs[provider].secretKeys.map((key) => [`${key}_set`, secrets?.[key] !== undefined]));
}

export type IntegrationSettingsInput = Record<string, unknown>;

export interface ValidIntegrationSettings {
  config: Record<string, string>;
  secrets: Record<string, string>;
}

const maxSecretLength = 4096;

/**
 * Checks every field of a PUT and fills defaults. A secret left out keeps the stored one
 * (`storedSecrets`), so the shop's API version can change without sending the token
 * again. Throws a 422 naming every bad field.
 *
 * @example
 * validateIntegrationSettings('shopify', { shop_domain: 'acme', access_token: 'shpat_…' }, {});
 * // { config: { shop_domain: 'acme.myshopify.com', api_version: '2024-10' }, secrets: { access_token: 'shpat_…' } }
 */
export function validateIntegrationSettings(
  provider: IntegrationProvider,
  input: IntegrationSettingsInput,
  options: { storedSecrets?: Record<string, string> | null; storedSecretsUnreadable?: boolean },
): ValidIntegrationSettings {
  const spec = integrationSpecs[provider];
  const errors: FieldErrors = {};
  const fail = (field: string, problem: string) => {
    (errors[field] ??= []).push(`${field} ${problem}`);
  };
  for (const key of Object.keys(input)) {
    if (!spec.configKeys.includes(key) && !spec.secretKeys.includes(key)) {
      fail(key, `is not a ${provider} setting (known: ${[...spec.configKeys, ...spec.secretKeys].join(', ')})`);
    }
  }
  const text = (key: string): string | undefined => {
    const value = input[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'string') {
      fail(key, `must be a string, got ${JSON.stringify(value)}`);
      return undefined;
    }
    const trimmed = value.trim();
    return trimmed === '' ? undefined : trimmed;
  };

  const config: Record<string, string> = {};
  if (provider === 'shopify') {
    const domain = text('shop_domain');
    if (domain === undefined) fail('shop_domain', 'is required: the shop\u2019s myshopify.com domain, e.g. acme.myshopify.com');
    else {
      // People paste the admin URL or the bare handle; both name the same shop.
      const bare = domain.toLowerCase().replace(/^https?:\/\//, '').replace(/\/.*$/, '');
      const host = bare.includes('.') ? bare : `${bare}.myshopify.com`;
      if (!/^[a-z0-9][a-z0-9-]{0,60}\.myshopify\.com$/.test(host)) fail('shop_domain', 'must be the shop\u2019s myshopify.com domain, e.g. acme.myshopify.com (the Admin API does not answer on custom domains)');
      else config.shop_domain = host;
    }
    const version = text('api_version') ?? integrationDefaults.shopifyApiVersion;
    if (!/^(\d{4}-(01|04|07|10)|unstable)$/.test(version)) fail('api_version', 'must be a Shopify Admin API version such as 2024-10');
    else config.api_version = version;
  }
  const base = text('base_url');
  if (base !== undefined) {
    let url: URL | null = null;
    try {
      url = new URL(base);
    } catch {
      fail('base_url', `must be an http(s) URL, e.g. ${provider === 'stripe' ? 'https://api.stripe.com' : 'https://acme.myshopify.com'}`);
    }
    if (url) {
      const port = refusedPortProblem(url);
      if (url.protocol !== 'https:' && url.protocol !== 'http:') fail('base_url', 'must be an http(s) URL');
      else if (url.username || url.password || url.search || url.hash) fail('base_url', 'must be a plain base URL without credentials, query or fragment');
      else if (port !== null) fail('base_url', port);
      else config.base_url = base.replace(/\/+$/, '');
    }
  }

  const secrets: Record<string, string> = {};
  for (const key of spec.secretKeys) {
    const value = input[key];
    if (value === undefined || value === null) {
      const stored = options.storedSecrets?.[key];
      if (stored !== undefined) secrets[key] = stored;
      else fail(key, options.storedSecretsUnreadable ? 'is required: the stored value cannot be decrypted with this NUDGE_SECRET_KEY' : 'is required');
      continue;
    }
    if (typeof value !== 'string') {
      fail(key, `must be a string, got ${JSON.stringify(value)}`);
      continue;
    }
    const trimmed = value.trim();
    if (trimmed === '') fail(key, 'is required');
    else if (trimmed.length > maxSecretLength) fail(key, `must be at most ${maxSecretLength} characters`);
    else if (/[\s]/.test(trimmed)) fail(key, 'must be one word without spaces or line breaks');
    else secrets[key] = trimmed;
  }
  const secretKey = secrets.secret_key;
  if (provider === 'stripe' && secretKey !== undefined && input.secret_key !== undefined) {
    if (/^pk_/.test(secretKey)) fail('secret_key', 'is a publishable key (pk_…); give a secret key (sk_live_…, sk_test_…) or a restricted key (rk_…) with write access to coupons and promotion codes');
    else if (!/^(sk|rk)_(live|test)_[A-Za-z0-9]{8,}$/.test(secretKey)) fail('secret_key', 'must be a Stripe secret key (sk_live_…, sk_test_…) or restricted key (rk_…)');
  }

  if (Object.keys(errors).length > 0) throw invalidFields(errors);
  return { config, secrets };
}
