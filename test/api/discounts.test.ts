import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createToken } from '../../src/engine/auth-service.js';
import { getIntegrationCredentials } from '../../src/engine/integration-service.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { dialects } from '../support/databases.js';
import { startFakeShopify, type FakeShopify } from '../support/fake-shopify.js';
import { startFakeStripe, type FakeStripe } from '../support/fake-stripe.js';

const secretKey = 'sk_test_51NudgeFake0000000000000000000000abcd';
const accessToken = 'shpat_0123456789abcdef0123456789abcdef';

async function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

const winback = {
  name: 'Win-back Discount',
  trigger: 'tag_added',
  tagName: 'cancelled',
  steps: [
    { type: 'create_discount', discount: { label: 'Create win-back discount', discountType: 'percent', percentOff: 20, duration: 'once', appliesToAllPlans: true, maxRedemptions: 1, lockToSubscriber: true, codePrefix: 'WINBACK' } },
    { subject: 'Come back with {{discount.code}}', delay: { days: 1 }, html: '<p>Use {{discount.code}} for {{discount.percentOff}}% off your next subscription.</p>' },
  ],
};

/** The integrations settings API, the enable check it feeds, and bad input to the discount routes. */
describe.each(dialects)('discount integrations and routes on %s', (dialect) => {
  let t: TestApp;
  let stripe: FakeStripe;
  let shopify: FakeShopify;
  const send = (method: 'GET' | 'PUT' | 'POST' | 'DELETE', url: string, payload?: unknown) =>
    t.app.inject({ method, url, headers: t.auth, ...(payload === undefined ? {} : { payload: payload as object }) });

  beforeAll(async () => {
    stripe = await startFakeStripe(secretKey);
    shopify = await startFakeShopify(accessToken);
    // Stripe's default base URL comes from the configuration.
    t = await createTestApp(dialect, { env: { NUDGE_STRIPE_BASE_URL: stripe.baseUrl, NUDGE_WEBHOOK_TIMEOUT_MS: '2000' } });
  });
  afterAll(async () => {
    await t.close();
    await stripe.close();
    await shopify.close();
  });

  async function draft(body: object): Promise<string> {
    const created = await send('POST', '/api/v1/sequences', body);
    expect(created.statusCode, created.body).toBe(201);
    return created.json().sequence.id as string;
  }

  it('refuses to enable a discount sequence until its provider (Stripe when none is named) is connected and working', async () => {
    const id = await draft(winback);
    const before = await send('POST', `/api/v1/sequences/${id}/enable`, {});
    expect(before.statusCode).toBe(422);
    expect(before.json()).toMatchObject({ code: 'provider_not_connected', provider: 'stripe' });
    expect(before.json().message).toContain('stripe is not connected');
    expect((await send('GET', `/api/v1/sequences/${id}`)).json().sequence.status).toBe('draft');

    const refused = await send('PUT', '/api/v1/settings/integrations/stripe', { secret_key: 'sk_test_51WrongKey000000000000' });
    expect(refused.statusCode, refused.body).toBe(200);
    expect(refused.json()).toMatchObject({ connected: true, status: 'error', config: { base_url: stripe.baseUrl } });
    expect(refused.json().last_error).toContain('Invalid API Key provided');
    const stillRefused = await send('POST', `/api/v1/sequences/${id}/enable`, {});
    expect(stillRefused.statusCode).toBe(422);
    expect(stillRefused.json()).toMatchObject({ code: 'provider_not_connected', provider: 'stripe' });
    expect(stillRefused.json().message).toContain('refuses the stored credentials');

    const unreachable = await send('PUT', '/api/v1/settings/integrations/stripe', { secret_key: secretKey, base_url: `http://127.0.0.1:${await closedPort()}` });
    expect(unreachable.json()).toMatchObject({ status: 'unverified', last_error: expect.stringContaining('Stripe request failed') });
    expect((await send('POST', `/api/v1/sequences/${id}/enable`, {})).json()).toMatchObject({ code: 'provider_not_connected', message: expect.stringContaining('could not be reached') });

    // Without base_url the configured NUDGE_STRIPE_BASE_URL is used; the stored key is kept.
    const working = await send('PUT', '/api/v1/settings/integrations/stripe', {});
    expect(working.json()).toMatchObject({ status: 'ok', last_error: null, config: { base_url: stripe.baseUrl }, secrets: { secret_key_set: true } });
    const enabled = await send('POST', `/api/v1/sequences/${id}/enable`, {});
    expect(enabled.statusCode, enabled.body).toBe(200);

    const shop = await draft({ name: 'Shop', steps: [{ type: 'create_discount', discount: { provider: 'shopify', percentOff: 10 } }, { subject: 'x', html: '<p>{{discount.code}}</p>' }] });
    expect((await send('POST', `/api/v1/sequences/${shop}/enable`, {})).json()).toMatchObject({ code: 'provider_not_connected', provider: 'shopify' });
    const builtin = await draft({ name: 'Own', steps: [{ type: 'create_discount', discount: { provider: 'builtin', percentOff: 10 } }, { subject: 'x', html: '<p>{{discount.code}}</p>' }] });
    expect((await send('POST', `/api/v1/sequences/${builtin}/enable`, {})).statusCode).toBe(200);
  });

  it('re-checks an integration in error at enable time and enables once the provider accepts it', async () => {
    const id = await draft({ ...winback, name: 'Recheck' });
    stripe.script.push({ match: 'GET /v1/coupons', status: 500, body: { error: { type: 'api_error', message: 'Try again later.' } } });
    expect((await send('PUT', '/api/v1/settings/integrations/stripe', {})).json().status).toBe('unverified');
    // The outage is over: the check at enable passes and is recorded.
    expect((await send('POST', `/api/v1/sequences/${id}/enable`, {})).statusCode).toBe(200);
    expect((await send('GET', '/api/v1/settings/integrations/stripe')).json()).toMatchObject({ status: 'ok', last_error: null });
  });

  it('connects Shopify, never shows a secret, stores it encrypted, keeps it when left out, and disconnects', async () => {
    const put = await send('PUT', '/api/v1/settings/integrations/shopify', { shop_domain: 'https://Nudge-Test.myshopify.com/admin', access_token: accessToken, base_url: `${shopify.baseUrl}/` });
    expect(put.statusCode, put.body).toBe(200);
    expect(put.json()).toEqual({
      provider: 'shopify',
      connected: true,
      config: { shop_domain: 'nudge-test.myshopify.com', api_version: '2024-10', base_url: shopify.baseUrl },
      secrets: { access_token_set: true },
      status: 'ok',
      last_error: null,
      status_at: expect.any(String),
      updated_at: expect.any(String),
    });
    const list = await send('GET', '/api/v1/settings/integrations');
    expect(list.json().data.map((i: { provider: string; status: string }) => `${i.provider}:${i.status}`)).toEqual(['stripe:ok', 'shopify:ok']);
    for (const body of [put.body, list.body, (await send('GET', '/api/v1/settings/integrations/shopify')).body]) {
      expect(body).not.toContain(accessToken);
      expect(body).not.toContain(secretKey);
    }
    const row = await t.ctx.database.db.selectFrom('integrations').selectAll().where('workspace_id', '=', t.workspaceId).where('provider', '=', 'shopify').executeTakeFirstOrThrow();
    expect(row.secrets).not.toContain(accessToken);

    const newer = await send('PUT', '/api/v1/settings/integrations/shopify', { shop_domain: 'nudge-test', api_version: '2025-01', base_url: shopify.baseUrl });
    expect(newer.json()).toMatchObject({ status: 'ok', config: { api_version: '2025-01' } });
    expect(shopify.requests.at(-1)!.path).toBe('/admin/api/2025-01/shop.json');
    const credentials = await getIntegrationCredentials(t.ctx, t.workspaceId, 'shopify');
    expect(credentials).toMatchObject({ provider: 'shopify', settings: { accessToken, apiVersion: '2025-01', baseUrl: shopify.baseUrl } });

    const removed = await send('DELETE', '/api/v1/settings/integrations/shopify');
    expect(removed.json()).toMatchObject({ connected: false, status: 'not_connected', secrets: { access_token_set: false } });
    expect(await getIntegrationCredentials(t.ctx, t.workspaceId, 'shopify')).toBeNull();
    expect((await send('DELETE', '/api/v1/settings/integrations/shopify')).statusCode).toBe(200);
  });

  it('refuses bad settings and bad discount requests with a 4xx naming the field, and writes nothing', async () => {
    const db = t.ctx.database.db;
    const snapshot = async () => ({
      integrations: await db.selectFrom('integrations').selectAll().where('workspace_id', '=', t.workspaceId).orderBy('provider').execute(),
      codes: Number((await db.selectFrom('discount_codes').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n),
      redemptions: Number((await db.selectFrom('discount_redemptions').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n),
    });
    const before = await snapshot();
    const cases: Array<{ method: 'PUT' | 'POST' | 'GET'; url: string; payload?: unknown; field: string; status?: number }> = [
      { method: 'PUT', url: '/api/v1/settings/integrations/stripe', payload: { secret_key: 123 }, field: 'secret_key' },
      { method: 'PUT', url: '/api/v1/settings/integrations/stripe', payload: { secret_key: 'pk_test_51Publishable000000' }, field: 'secret_key' },
      { method: 'PUT', url: '/api/v1/settings/integrations/stripe', payload: { secret_key: 'sk_test_has spaces 0000' }, field: 'secret_key' },
      { method: 'PUT', url: '/api/v1/settings/integrations/stripe', payload: { secret_key: secretKey, shop_domain: 'acme' }, field: 'shop_domain' },
      { method: 'PUT', url: '/api/v1/settings/integrations/stripe', payload: { secret_key: secretKey, base_url: 'ftp://files.example.com' }, field: 'base_url' },
      { method: 'PUT', url: '/api/v1/settings/integrations/stripe', payload: { secret_key: secretKey, base_url: 'https://user:pw@api.stripe.com' }, field: 'base_url' },
      { method: 'PUT', url: '/api/v1/settings/integrations/stripe', payload: { secret_key: secretKey, webhook: 'x' }, field: 'webhook' },
      { method: 'PUT', url: '/api/v1/settings/integrations/shopify', payload: { access_token: accessToken }, field: 'shop_domain' },
      { method: 'PUT', url: '/api/v1/settings/integrations/shopify', payload: { shop_domain: 'shop.example.com', access_token: accessToken }, field: 'shop_domain' },
      { method: 'PUT', url: '/api/v1/settings/integrations/shopify', payload: { shop_domain: 'acme', access_token: accessToken, api_version: 'latest' }, field: 'api_version' },
      { method: 'PUT', url: '/api/v1/settings/integrations/shopify', payload: { shop_domain: 'acme' }, field: 'access_token' },
      { method: 'PUT', url: '/api/v1/settings/integrations/shopify', payload: { shop_domain: ['acme'], access_token: accessToken }, field: 'shop_domain' },
      { method: 'PUT', url: '/api/v1/settings/integrations/paypal', payload: { secret_key: secretKey }, field: 'provider' },
      { method: 'GET', url: '/api/v1/settings/integrations/paypal', field: 'provider' },
      { method: 'POST', url: '/api/v1/discounts/redeem', payload: { code: 5 }, field: 'code' },
      { method: 'POST', url: '/api/v1/discounts/redeem', payload: {}, field: 'code' },
      { method: 'POST', url: '/api/v1/discounts/redeem', payload: { code: '' }, field: 'code' },
      { method: 'POST', url: '/api/v1/discounts/redeem', payload: { code: 'X', email: 'not an email' }, field: 'email' },
      { method: 'POST', url: '/api/v1/discounts/redeem', payload: { code: 'X', contactId: 'not-a-uuid' }, field: 'contactId' },
      { method: 'POST', url: '/api/v1/discounts/redeem', payload: { code: 'X', email: 'a@example.com', contactId: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a61' }, field: 'email' },
      { method: 'POST', url: '/api/v1/discounts/redeem', payload: { code: 'X', coupon: 'Y' }, field: 'coupon' },
      { method: 'POST', url: '/api/v1/discounts/redeem', payload: { code: 'X', email: 42 }, field: 'email' },
      { method: 'GET', url: '/api/v1/discounts?contactId=nope', field: 'contactId' },
      { method: 'GET', url: '/api/v1/discounts?cursor=garbage!', field: 'cursor' },
      { method: 'GET', url: '/api/v1/discounts?limit=0', field: 'limit' },
      { method: 'GET', url: '/api/v1/discounts?provider=paypal', field: 'provider' },
      { method: 'POST', url: '/api/v1/sequences', payload: { name: 'Bad', steps: [{ type: 'create_discount', on_failure: 'explode', discount: { percentOff: 5 } }] }, field: 'steps[0].on_failure' },
    ];
    for (const c of cases) {
      const res = await send(c.method, c.url, c.payload);
      const label = `${c.method} ${c.url} ${JSON.stringify(c.payload)}`;
      expect(res.statusCode, `${label}: ${res.body}`).toBe(c.status ?? 422);
      const body = res.json();
      expect(Object.keys(body.errors ?? {}).some((f) => f === c.field || f.startsWith(`${c.field}.`) || f.replace(/\.(\d+)/g, '[$1]').startsWith(c.field)), `${label}: ${res.body}`).toBe(true);
    }
    expect(await snapshot()).toEqual(before);
  });
});

describe.each(dialects)('discount routes without the scope on %s', (dialect) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(dialect);
  });
  afterAll(async () => t.close());

  it('answers 403 naming the missing scope', async () => {
    const reader = await createToken(t.ctx, { workspaceId: t.workspaceId, name: 'reader', scopes: ['sequences:read', 'discounts:read'] });
    const auth = { authorization: `Bearer ${reader.token}` };
    const calls: Array<[string, string, string, object?]> = [
      ['POST', '/api/v1/discounts/redeem', 'discounts:write', { code: 'X' }],
      ['GET', '/api/v1/settings/integrations', 'settings:read'],
      ['GET', '/api/v1/settings/integrations/stripe', 'settings:read'],
      ['PUT', '/api/v1/settings/integrations/stripe', 'settings:write', { secret_key: secretKey }],
      ['DELETE', '/api/v1/settings/integrations/stripe', 'settings:write'],
    ];
    for (const [method, url, scope, payload] of calls) {
      const res = await t.app.inject({ method: method as 'GET', url, headers: auth, ...(payload ? { payload } : {}) });
      expect({ url, status: res.statusCode, scope: res.json().missing_scope }).toEqual({ url, status: 403, scope });
    }
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/discounts', headers: auth })).statusCode).toBe(200);
    const none = await createToken(t.ctx, { workspaceId: t.workspaceId, name: 'none', scopes: ['sequences:read'] });
    const list = await t.app.inject({ method: 'GET', url: '/api/v1/discounts/ANY', headers: { authorization: `Bearer ${none.token}` } });
    expect(list.statusCode).toBe(403);
    expect(list.json().error).toContain('discounts:read');
  });
});
