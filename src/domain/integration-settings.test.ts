import { describe, expect, it } from 'vitest';
import { AppError } from './errors.js';
import { validateIntegrationSettings } from './integration-settings.js';

function problems(run: () => unknown): Record<string, string[]> {
  try {
    run();
  } catch (error) {
    if (error instanceof AppError) return error.errors ?? {};
    throw error;
  }
  throw new Error('expected a validation error');
}

describe('validateIntegrationSettings', () => {
  it('takes a Stripe secret or restricted key and an optional base URL without its trailing slash', () => {
    expect(validateIntegrationSettings('stripe', { secret_key: ' sk_live_51Habc0123456789 ' }, {})).toEqual({ config: {}, secrets: { secret_key: 'sk_live_51Habc0123456789' } });
    expect(validateIntegrationSettings('stripe', { secret_key: 'rk_test_51Habc0123456789', base_url: 'http://127.0.0.1:4010/' }, {})).toEqual({
      config: { base_url: 'http://127.0.0.1:4010' },
      secrets: { secret_key: 'rk_test_51Habc0123456789' },
    });
  });

  it('names a publishable key, a missing key and fields of the other provider', () => {
    expect(problems(() => validateIntegrationSettings('stripe', { secret_key: 'pk_live_51Habc0123456789' }, {})).secret_key![0]).toContain('publishable key');
    expect(Object.keys(problems(() => validateIntegrationSettings('stripe', { access_token: 'x' }, {})))).toEqual(['access_token', 'secret_key']);
  });

  it('keeps a stored secret that is left out, and says so when it cannot be read', () => {
    expect(validateIntegrationSettings('stripe', {}, { storedSecrets: { secret_key: 'sk_test_stored0000' } }).secrets).toEqual({ secret_key: 'sk_test_stored0000' });
    expect(problems(() => validateIntegrationSettings('stripe', {}, { storedSecretsUnreadable: true })).secret_key![0]).toContain('cannot be decrypted');
  });

  it('reads a Shopify shop from its handle, domain or admin URL, with the default API version', () => {
    for (const shop of ['acme', 'ACME.myshopify.com', 'https://acme.myshopify.com/admin/discounts']) {
      expect(validateIntegrationSettings('shopify', { shop_domain: shop, access_token: 'shpat_abc' }, {})).toEqual({
        config: { shop_domain: 'acme.myshopify.com', api_version: '2024-10' },
        secrets: { access_token: 'shpat_abc' },
      });
    }
    const bad = problems(() => validateIntegrationSettings('shopify', { shop_domain: 'shop.acme.com', access_token: 'shpat_abc', api_version: '2024-11' }, {}));
    expect(Object.keys(bad)).toEqual(['shop_domain', 'api_version']);
  });
});
