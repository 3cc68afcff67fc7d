import { createServer } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { validateDiscountSpec, type DiscountRequest, type DiscountSpec, type ShopifySettings, type StripeSettings } from '../../src/channels/discount-provider.js';
import { createShopifyDiscount, verifyShopify } from '../../src/channels/shopify-discounts.js';
import { createStripeDiscount, stripeApiVersion, toStripeAmount, verifyStripe } from '../../src/channels/stripe-discounts.js';
import { startFakeShopify, type FakeShopify } from '../support/fake-shopify.js';
import { startFakeStripe, stripeError, type FakeStripe } from '../support/fake-stripe.js';

const secretKey = 'sk_test_51NudgeFake0000000000000000000000abcd';
const accessToken = 'shpat_0123456789abcdef0123456789abcdef';
const now = Date.now();
const hours = (h: number) => now + h * 3_600_000;
const seconds = (ms: number) => String(Math.floor(ms / 1000));

let run = 0;
/** A step run: the code and idempotency key are unique per test, as the engine derives them per session and node. */
function discountRequest(spec: DiscountSpec, overrides: Partial<DiscountRequest> = {}): DiscountRequest {
  run += 1;
  return { spec, code: `WINBACK-${run}Q${run * 7}`, idempotencyKey: `0193a1b2-session-${run}:coupon-node:1`, customerEmail: null, now, ...overrides };
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

describe('createStripeDiscount against a local fake of Stripe', () => {
  let stripe: FakeStripe;
  let settings: StripeSettings;
  beforeAll(async () => {
    stripe = await startFakeStripe(secretKey);
    settings = { baseUrl: stripe.baseUrl, secretKey };
  });
  afterEach(() => {
    expect(stripe.script, 'every scripted response was used').toEqual([]);
  });
  afterAll(async () => stripe.close());

  /** The requests one call made. */
  async function track<T>(call: () => Promise<T>): Promise<{ result: T; sent: FakeStripe['requests'] }> {
    const before = stripe.requests.length;
    const result = await call();
    return { result, sent: stripe.requests.slice(before) };
  }

  it('looks the code up, then creates a percent coupon and a promotion code with exactly these form fields', async () => {
    const request = discountRequest({ discountType: 'percent', percentOff: 20, duration: 'once', name: 'Spring winback: 20% off your next month of coffee' });
    const { result, sent } = await track(() => createStripeDiscount(settings, request));

    expect(sent.map((r) => `${r.method} ${r.path}`)).toEqual(['GET /v1/promotion_codes', 'POST /v1/coupons', 'POST /v1/promotion_codes']);
    for (const r of sent) {
      expect(r.authorization).toBe(`Bearer ${secretKey}`);
      expect(r.stripeVersion).toBe(stripeApiVersion);
    }
    expect(sent[0]!.query).toEqual({ code: request.code, limit: '1' });
    const [, coupon, promotionCode] = sent;
    expect(coupon!.contentType).toBe('application/x-www-form-urlencoded');
    expect(coupon!.idempotencyKey).toBe(`${request.idempotencyKey}:coupon`);
    // Stripe caps a coupon name at 40 characters.
    expect(coupon!.params).toEqual({ percent_off: '20', duration: 'once', name: 'Spring winback: 20% off your next month', metadata: { nudge_code: request.code } });
    expect(coupon!.raw).toContain('metadata%5Bnudge_code%5D=');
    const couponId = String(stripe.coupons.at(-1)!.id);
    expect(promotionCode!.idempotencyKey).toBe(`${request.idempotencyKey}:promotion_code`);
    expect(promotionCode!.params).toEqual({ coupon: couponId, code: request.code, metadata: { nudge_code: request.code } });

    expect(result).toEqual({
      ok: true,
      discount: {
        code: request.code,
        percentOff: 20,
        amountOff: null,
        currency: null,
        expiresAt: null,
        provider: 'stripe',
        providerRef: { couponId, promotionCodeId: String(stripe.promotionCodes.at(-1)!.id) },
      },
    });
  });

  it('sends a fixed amount in minor units with a lower-case currency, a repeating duration and the plans it applies to', async () => {
    const request = discountRequest({
      discountType: 'amount',
      amountOff: 12.5,
      currency: 'USD',
      duration: 'repeating',
      durationInMonths: 3,
      appliesToAllPlans: false,
      planIds: ['prod_Basic', 'prod_Pro'],
    });
    const { result, sent } = await track(() => createStripeDiscount(settings, request));

    const coupon = sent.find((r) => r.method === 'POST' && r.path === '/v1/coupons')!;
    expect(coupon.params).toEqual({
      amount_off: '1250',
      currency: 'usd',
      duration: 'repeating',
      duration_in_months: '3',
      applies_to: { products: ['prod_Basic', 'prod_Pro'] },
      metadata: { nudge_code: request.code },
    });
    expect(coupon.raw).toContain('applies_to%5Bproducts%5D%5B%5D=prod_Basic&applies_to%5Bproducts%5D%5B%5D=prod_Pro');
    expect(result).toMatchObject({ ok: true, discount: { percentOff: null, amountOff: 12.5, currency: 'USD' } });
  });

  it('converts by the currency’s decimals: none for JPY, three for KWD', async () => {
    expect(toStripeAmount(19.99, 'usd')).toBe(1999);
    expect(toStripeAmount(500, 'JPY')).toBe(500);
    expect(toStripeAmount(1.25, 'kwd')).toBe(1250);
    const request = discountRequest({ amountOff: 500, currency: 'jpy' });
    const { result, sent } = await track(() => createStripeDiscount(settings, request));
    expect(sent.find((r) => r.path === '/v1/coupons')!.params).toMatchObject({ amount_off: '500', currency: 'jpy' });
    expect(result).toMatchObject({ ok: true, discount: { amountOff: 500, currency: 'JPY' } });
  });

  it('maps expiresInHours to the coupon’s redeem_by and the code’s expires_at, and maxRedemptions to both', async () => {
    const request = discountRequest({ percentOff: 15, expiresInHours: 48, maxRedemptions: 1 });
    const { result, sent } = await track(() => createStripeDiscount(settings, request));
    const expiry = seconds(hours(48));
    expect(sent.find((r) => r.path === '/v1/coupons')!.params).toMatchObject({ redeem_by: expiry, max_redemptions: '1' });
    const promotionCode = sent.find((r) => r.method === 'POST' && r.path === '/v1/promotion_codes')!;
    expect(promotionCode.params).toMatchObject({ expires_at: expiry, max_redemptions: '1' });
    expect(result).toMatchObject({ ok: true, discount: { expiresAt: new Date(Number(expiry) * 1000).toISOString() } });
  });

  it('maps an ISO expiresAt to unix seconds', async () => {
    const request = discountRequest({ percentOff: 10, expiresAt: '2031-01-31T23:59:59Z' });
    const { result, sent } = await track(() => createStripeDiscount(settings, request));
    expect(sent.find((r) => r.method === 'POST' && r.path === '/v1/promotion_codes')!.params).toMatchObject({ expires_at: String(Date.UTC(2031, 0, 31, 23, 59, 59) / 1000) });
    expect(result).toMatchObject({ ok: true, discount: { expiresAt: '2031-01-31T23:59:59.000Z' } });
  });

  it('refuses an expiry that has already passed without calling Stripe', async () => {
    const { result, sent } = await track(() => createStripeDiscount(settings, discountRequest({ percentOff: 10, expiresAt: '2020-01-01T00:00:00Z' })));
    expect(result).toMatchObject({ ok: false, retryable: false, code: 'already_expired' });
    expect(sent).toEqual([]);
  });

  it('creates no second coupon or promotion code when the step is retried after success', async () => {
    const request = discountRequest({ percentOff: 25 });
    const first = await createStripeDiscount(settings, request);
    const counts = [stripe.coupons.length, stripe.promotionCodes.length];
    const { result: second, sent } = await track(() => createStripeDiscount(settings, request));
    expect(second).toEqual(first);
    expect(sent.map((r) => r.method)).toEqual(['GET']);
    expect([stripe.coupons.length, stripe.promotionCodes.length]).toEqual(counts);
  });

  it('gets the same coupon back through its idempotency key when a crash came between the coupon and the promotion code', async () => {
    const request = discountRequest({ percentOff: 30 });
    stripe.script.push({ match: 'POST /v1/promotion_codes', ...stripeError(500, 'api_error', 'An unknown error occurred while processing the request.') });
    const couponsBefore = stripe.coupons.length;
    const promotionCodesBefore = stripe.promotionCodes.length;

    const first = await createStripeDiscount(settings, request);
    expect(first).toMatchObject({ ok: false, retryable: true, code: 'api_error' });
    expect(stripe.coupons.length).toBe(couponsBefore + 1);
    const couponId = String(stripe.coupons.at(-1)!.id);

    const { result: second, sent } = await track(() => createStripeDiscount(settings, request));
    expect(second).toMatchObject({ ok: true, discount: { code: request.code, providerRef: { couponId } } });
    expect(sent.find((r) => r.path === '/v1/coupons')!.replayed).toBe(true);
    expect(stripe.coupons.length).toBe(couponsBefore + 1);
    expect(stripe.promotionCodes.length).toBe(promotionCodesBefore + 1);
  });

  it('finds the promotion code when Stripe created it but the answer was lost', async () => {
    const request = discountRequest({ percentOff: 35 });
    stripe.script.push({ match: 'POST /v1/promotion_codes', lose: true });
    const first = await createStripeDiscount(settings, request, { timeoutMs: 300 });
    expect(first).toMatchObject({ ok: false, retryable: true, code: 'timeout' });
    const created = stripe.promotionCodes.at(-1)!;
    expect(created.code).toBe(request.code);

    const { result: second, sent } = await track(() => createStripeDiscount(settings, request));
    expect(second).toMatchObject({ ok: true, discount: { code: request.code, percentOff: 35, providerRef: { promotionCodeId: created.id } } });
    expect(sent.map((r) => r.method)).toEqual(['GET']);
    expect(stripe.promotionCodes.filter((p) => p.code === request.code)).toHaveLength(1);
  });

  it('locks the code to the Stripe customer with the contact’s email', async () => {
    const customerId = stripe.addCustomer('ana@example.com');
    const customers = stripe.customers.length;
    const request = discountRequest({ percentOff: 20, lockToSubscriber: true }, { customerEmail: 'ana@example.com' });
    const { result, sent } = await track(() => createStripeDiscount(settings, request));
    expect(sent.map((r) => `${r.method} ${r.path}`)).toEqual(['GET /v1/promotion_codes', 'GET /v1/customers', 'POST /v1/coupons', 'POST /v1/promotion_codes']);
    expect(sent[1]!.query).toEqual({ email: 'ana@example.com', limit: '1' });
    expect(sent[3]!.params).toMatchObject({ customer: customerId });
    expect(result).toMatchObject({ ok: true, discount: { providerRef: { customerId } } });
    expect(stripe.customers.length).toBe(customers);
  });

  it('creates the customer once, under its own idempotency key, when Stripe has none with the email', async () => {
    const request = discountRequest({ percentOff: 20, lockToSubscriber: true }, { customerEmail: 'new-subscriber@example.com' });
    stripe.script.push({ match: 'POST /v1/coupons', ...stripeError(503, 'api_error', 'Service temporarily unavailable') });
    const { result: first, sent } = await track(() => createStripeDiscount(settings, request));
    expect(first).toMatchObject({ ok: false, retryable: true });
    const post = sent.find((r) => r.method === 'POST' && r.path === '/v1/customers')!;
    expect(post.idempotencyKey).toBe(`${request.idempotencyKey}:customer`);
    expect(post.params).toEqual({ email: 'new-subscriber@example.com', metadata: { created_by: 'Nudge' } });

    const second = await createStripeDiscount(settings, request);
    const matching = stripe.customers.filter((c) => c.email === 'new-subscriber@example.com');
    expect(matching).toHaveLength(1);
    expect(second).toMatchObject({ ok: true, discount: { providerRef: { customerId: matching[0]!.id } } });
    expect(stripe.promotionCodes.at(-1)!.customer).toBe(matching[0]!.id);
  });

  it('refuses a locked code for a contact without an email', async () => {
    const { result, sent } = await track(() => createStripeDiscount(settings, discountRequest({ percentOff: 20, lockToSubscriber: true })));
    expect(result).toMatchObject({ ok: false, retryable: false, code: 'customer_email_required' });
    expect(sent).toEqual([]);
  });

  it('reports a wrong secret key as a permanent auth failure with Stripe’s message', async () => {
    const result = await createStripeDiscount({ ...settings, secretKey: 'sk_test_wrongwrongwrong1234' }, discountRequest({ percentOff: 10 }));
    expect(result).toMatchObject({ ok: false, retryable: false, code: 'auth_failed' });
    expect(result.ok === false && result.message).toContain('Invalid API Key provided: sk_test_');
  });

  it('passes Stripe’s validation errors on as permanent failures with the code, parameter and message', async () => {
    // Stripe promotion codes take letters, digits and dashes only.
    const result = await createStripeDiscount(settings, discountRequest({ percentOff: 10 }, { code: 'SPRING_SALE_1' }));
    expect(result).toMatchObject({ ok: false, retryable: false, code: 'parameter_invalid' });
    expect(result.ok === false && result.message).toMatch(/^Stripe 400 \(parameter_invalid, param code\): Valid characters are/);
  });

  it('reports an idempotency key reused with other parameters as a permanent idempotency_error', async () => {
    const first = discountRequest({ percentOff: 20 });
    expect((await createStripeDiscount(settings, first)).ok).toBe(true);
    const changed = discountRequest({ percentOff: 40 }, { idempotencyKey: first.idempotencyKey });
    const result = await createStripeDiscount(settings, changed);
    expect(result).toMatchObject({ ok: false, retryable: false, code: 'idempotency_error' });
    expect(result.ok === false && result.message).toContain('Keys for idempotent requests can only be used with the same parameters');
  });

  it('retries 5xx and 429, honouring Retry-After', async () => {
    stripe.script.push(stripeError(500, 'api_error', 'An unknown error occurred'));
    expect(await createStripeDiscount(settings, discountRequest({ percentOff: 10 }))).toMatchObject({ ok: false, retryable: true, code: 'api_error' });

    stripe.script.push({ ...stripeError(429, 'invalid_request_error', 'Request rate limit exceeded.', { code: 'rate_limit' }), headers: { 'retry-after': '7' } });
    expect(await createStripeDiscount(settings, discountRequest({ percentOff: 10 }))).toMatchObject({ ok: false, retryable: true, code: 'rate_limit', retryAfterMs: 7000 });

    stripe.script.push({ status: 502, body: '<html>Bad gateway</html>' });
    expect(await createStripeDiscount(settings, discountRequest({ percentOff: 10 }))).toMatchObject({ ok: false, retryable: true, code: 'http_502' });
  });

  it('does not retry what Stripe says a retry cannot fix (Stripe-Should-Retry: false)', async () => {
    stripe.script.push({ ...stripeError(500, 'api_error', 'An unknown error occurred'), headers: { 'stripe-should-retry': 'false' } });
    expect(await createStripeDiscount(settings, discountRequest({ percentOff: 10 }))).toMatchObject({ ok: false, retryable: false, code: 'api_error' });
  });

  it('retries a timeout', async () => {
    stripe.script.push({ hang: true });
    expect(await createStripeDiscount(settings, discountRequest({ percentOff: 10 }), { timeoutMs: 200 })).toMatchObject({ ok: false, retryable: true, code: 'timeout' });
  });

  it('retries when Stripe cannot be reached', async () => {
    const unreachable = { ...settings, baseUrl: `http://127.0.0.1:${await freePort()}` };
    expect(await createStripeDiscount(unreachable, discountRequest({ percentOff: 10 }))).toMatchObject({ ok: false, retryable: true, code: 'network_error' });
  });

  it('refuses an invalid spec before calling Stripe', async () => {
    const { result, sent } = await track(() => createStripeDiscount(settings, discountRequest({ discountType: 'amount', amountOff: 10 })));
    expect(result).toEqual({ ok: false, retryable: false, code: 'invalid_discount', message: 'discount.currency is required for an amount discount' });
    expect(sent).toEqual([]);
  });

  it('verifies credentials with one authenticated read', async () => {
    const { result, sent } = await track(() => verifyStripe(settings));
    expect(result).toEqual({ ok: true });
    expect(sent.map((r) => `${r.method} ${r.path}?limit=${r.query.limit}`)).toEqual(['GET /v1/coupons?limit=1']);
    const wrong = await verifyStripe({ ...settings, secretKey: 'sk_test_nope' });
    expect(wrong.ok).toBe(false);
    expect(!wrong.ok && wrong.message).toContain('Invalid API Key provided');
    // Refused credentials are a verdict; an unreachable Stripe is not one.
    expect(!wrong.ok && wrong.retryable).toBe(false);
    const unreachable = await verifyStripe({ ...settings, baseUrl: `http://127.0.0.1:${await freePort()}` });
    expect(!unreachable.ok && unreachable.message).toContain('Stripe request failed');
    expect(!unreachable.ok && unreachable.retryable).toBe(true);
  });
});

describe('createShopifyDiscount against a local fake of the Shopify Admin API', () => {
  let shopify: FakeShopify;
  let settings: ShopifySettings;
  const api = '/admin/api/2024-10';
  beforeAll(async () => {
    shopify = await startFakeShopify(accessToken);
    settings = { baseUrl: shopify.baseUrl, accessToken };
  });
  afterEach(() => {
    expect(shopify.script, 'every scripted response was used').toEqual([]);
  });
  afterAll(async () => shopify.close());

  async function track<T>(call: () => Promise<T>): Promise<{ result: T; sent: FakeShopify['requests'] }> {
    const before = shopify.requests.length;
    const result = await call();
    return { result, sent: shopify.requests.slice(before) };
  }
  const startsAt = new Date(Math.floor(now / 1000) * 1000).toISOString();

  it('looks the code up, then creates a percent price rule titled with the code, and the code', async () => {
    const request = discountRequest({ percentOff: 20 });
    const { result, sent } = await track(() => createShopifyDiscount(settings, request));
    const rule = shopify.priceRules.at(-1)!;
    const code = shopify.discountCodes.at(-1)!;

    expect(sent.map((r) => `${r.method} ${r.path}`)).toEqual([
      `GET ${api}/discount_codes/lookup.json`,
      `GET ${api}/price_rules.json`,
      `POST ${api}/price_rules.json`,
      `POST ${api}/price_rules/${String(rule.id)}/discount_codes.json`,
    ]);
    for (const r of sent) expect(r.accessToken).toBe(accessToken);
    expect(sent[0]!.query).toEqual({ code: request.code });
    expect(sent[1]!.query).toEqual({ starts_at_min: startsAt, starts_at_max: startsAt, limit: '250' });
    expect(sent[2]!.contentType).toBe('application/json');
    expect(sent[2]!.json).toEqual({
      price_rule: {
        title: request.code,
        target_type: 'line_item',
        target_selection: 'all',
        allocation_method: 'across',
        value_type: 'percentage',
        value: '-20.0',
        customer_selection: 'all',
        once_per_customer: false,
        usage_limit: null,
        starts_at: startsAt,
        ends_at: null,
      },
    });
    expect(sent[3]!.json).toEqual({ discount_code: { code: request.code } });
    expect(result).toEqual({
      ok: true,
      discount: {
        code: request.code,
        percentOff: 20,
        amountOff: null,
        currency: null,
        expiresAt: null,
        provider: 'shopify',
        providerRef: { priceRuleId: String(rule.id), discountCodeId: String(code.id) },
      },
    });
  });

  it('creates a fixed amount in the shop’s currency with the expiry and usage limit', async () => {
    const request = discountRequest({ discountType: 'amount', amountOff: 10, currency: 'usd', expiresInHours: 72, maxRedemptions: 1 });
    const { result, sent } = await track(() => createShopifyDiscount(settings, request));
    expect(sent[0]!.path).toBe(`${api}/shop.json`);
    const post = sent.find((r) => r.method === 'POST' && r.path === `${api}/price_rules.json`)!;
    expect(post.json).toMatchObject({ price_rule: { value_type: 'fixed_amount', value: '-10.0', usage_limit: 1, ends_at: new Date(hours(72)).toISOString() } });
    expect(result).toMatchObject({ ok: true, discount: { amountOff: 10, percentOff: null, currency: 'USD', expiresAt: new Date(hours(72)).toISOString() } });
  });

  it('refuses a fixed amount in another currency than the shop sells in', async () => {
    const rules = shopify.priceRules.length;
    const result = await createShopifyDiscount(settings, discountRequest({ amountOff: 10, currency: 'eur' }));
    expect(result).toMatchObject({ ok: false, retryable: false, code: 'currency_mismatch' });
    expect(result.ok === false && result.message).toContain('EUR');
    expect(shopify.priceRules.length).toBe(rules);
  });

  it('returns the existing code on a retry, reading it through the 303 instead of creating another', async () => {
    const request = discountRequest({ percentOff: 15, expiresAt: '2031-01-31T23:59:59Z' });
    const first = await createShopifyDiscount(settings, request);
    expect(first.ok).toBe(true);
    const counts = [shopify.priceRules.length, shopify.discountCodes.length];
    const rule = shopify.priceRules.at(-1)!;
    const code = shopify.discountCodes.at(-1)!;

    const { result: second, sent } = await track(() => createShopifyDiscount(settings, request));
    expect(second).toEqual(first);
    expect(second).toMatchObject({ ok: true, discount: { percentOff: 15, expiresAt: '2031-01-31T23:59:59.000Z' } });
    expect(sent.map((r) => `${r.method} ${r.path}`)).toEqual([
      `GET ${api}/discount_codes/lookup.json`,
      `GET ${api}/price_rules/${String(rule.id)}/discount_codes/${String(code.id)}.json`,
      `GET ${api}/price_rules/${String(rule.id)}.json`,
    ]);
    expect([shopify.priceRules.length, shopify.discountCodes.length]).toEqual(counts);
  });

  it('follows a Location naming another host only on the configured shop origin', async () => {
    const elsewhere = await startFakeShopify(accessToken, { redirectOrigin: 'https://nudge-test.myshopify.com' });
    try {
      const shop = { baseUrl: elsewhere.baseUrl, accessToken };
      const request = discountRequest({ percentOff: 5 });
      expect((await createShopifyDiscount(shop, request)).ok).toBe(true);
      const again = await createShopifyDiscount(shop, request);
      expect(again).toMatchObject({ ok: true, discount: { code: request.code } });
      expect(elsewhere.discountCodes).toHaveLength(1);
    } finally {
      await elsewhere.close();
    }
  });

  it('gives the code to the price rule a crash left without one, instead of making a second rule', async () => {
    const request = discountRequest({ percentOff: 12 });
    shopify.script.push({ match: `POST ${api}/price_rules/`, status: 503, body: { errors: 'Service Unavailable' } });
    const rules = shopify.priceRules.length;
    const codes = shopify.discountCodes.length;

    const first = await createShopifyDiscount(settings, request);
    expect(first).toMatchObject({ ok: false, retryable: true, code: 'http_503' });
    expect(shopify.priceRules.length).toBe(rules + 1);
    expect(shopify.discountCodes.length).toBe(codes);
    const orphan = shopify.priceRules.at(-1)!;

    const second = await createShopifyDiscount(settings, request);
    expect(second).toMatchObject({ ok: true, discount: { code: request.code, providerRef: { priceRuleId: String(orphan.id) } } });
    expect(shopify.priceRules.length).toBe(rules + 1);
    expect(shopify.discountCodes.length).toBe(codes + 1);
  });

  it('limits the code to the Shopify customer with the contact’s email', async () => {
    const customerId = shopify.addCustomer('Ana.Lopez@Example.com');
    const request = discountRequest({ percentOff: 20, lockToSubscriber: true }, { customerEmail: 'ana.lopez@example.com' });
    const { result, sent } = await track(() => createShopifyDiscount(settings, request));
    const search = sent.find((r) => r.path === `${api}/customers/search.json`)!;
    expect(search.query).toEqual({ query: 'email:"ana.lopez@example.com"', fields: 'id,email' });
    const post = sent.find((r) => r.method === 'POST' && r.path === `${api}/price_rules.json`)!;
    expect(post.json).toMatchObject({ price_rule: { customer_selection: 'prerequisite', prerequisite_customer_ids: [customerId], once_per_customer: true } });
    expect(result).toMatchObject({ ok: true, discount: { providerRef: { customerId: String(customerId) } } });
  });

  it('falls back to once per customer when the contact is not a Shopify customer', async () => {
    const request = discountRequest({ percentOff: 20, lockToSubscriber: true }, { customerEmail: 'nobody@example.com' });
    const { result, sent } = await track(() => createShopifyDiscount(settings, request));
    const rule = (sent.find((r) => r.method === 'POST' && r.path === `${api}/price_rules.json`)!.json as { price_rule: Record<string, unknown> }).price_rule;
    expect(rule).toMatchObject({ customer_selection: 'all', once_per_customer: true });
    expect(rule).not.toHaveProperty('prerequisite_customer_ids');
    expect(result.ok).toBe(true);
  });

  it('reports a wrong access token as a permanent auth failure with Shopify’s message', async () => {
    const result = await createShopifyDiscount({ ...settings, accessToken: 'shpat_wrong' }, discountRequest({ percentOff: 10 }));
    expect(result).toMatchObject({ ok: false, retryable: false, code: 'auth_failed' });
    expect(result.ok === false && result.message).toContain('[API] Invalid API key or access token');
  });

  it('passes 422 field errors on as permanent failures', async () => {
    shopify.script.push({ match: `POST ${api}/price_rules.json`, status: 422, body: { errors: { ends_at: ['must be after starts_at'], usage_limit: ['must be greater than 0'] } } });
    const result = await createShopifyDiscount(settings, discountRequest({ percentOff: 10 }));
    expect(result).toEqual({
      ok: false,
      retryable: false,
      code: 'invalid',
      message: 'Shopify 422 creating the price rule: ends_at: must be after starts_at; usage_limit: must be greater than 0',
    });
  });

  it('retries 5xx and 429, honouring Retry-After', async () => {
    shopify.script.push({ status: 500, body: { errors: 'Internal Server Error' } });
    expect(await createShopifyDiscount(settings, discountRequest({ percentOff: 10 }))).toMatchObject({ ok: false, retryable: true, code: 'http_500' });
    shopify.script.push({ status: 429, body: { errors: 'Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service.' }, headers: { 'retry-after': '7' } });
    const limited = await createShopifyDiscount(settings, discountRequest({ percentOff: 10 }));
    expect(limited).toMatchObject({ ok: false, retryable: true, code: 'http_429', retryAfterMs: 7000 });
    expect(limited.ok === false && limited.message).toContain('Exceeded 2 calls per second');
  });

  it('retries a timeout', async () => {
    shopify.script.push({ hang: true });
    expect(await createShopifyDiscount(settings, discountRequest({ percentOff: 10 }), { timeoutMs: 200 })).toMatchObject({ ok: false, retryable: true, code: 'timeout' });
  });

  it('retries when the shop cannot be reached', async () => {
    const unreachable = { ...settings, baseUrl: `http://127.0.0.1:${await freePort()}` };
    expect(await createShopifyDiscount(unreachable, discountRequest({ percentOff: 10 }))).toMatchObject({ ok: false, retryable: true, code: 'network_error' });
  });

  it('verifies credentials with one authenticated read of the shop', async () => {
    const { result, sent } = await track(() => verifyShopify(settings));
    expect(result).toEqual({ ok: true });
    expect(sent.map((r) => `${r.method} ${r.path}`)).toEqual([`GET ${api}/shop.json`]);
    const wrong = await verifyShopify({ ...settings, accessToken: 'shpat_nope' });
    expect(!wrong.ok && wrong.message).toContain('[API] Invalid API key or access token');
    expect(!wrong.ok && wrong.retryable).toBe(false);
    expect(await verifyShopify({ ...settings, apiVersion: '2025-01' })).toEqual({ ok: true });
    expect(shopify.requests.at(-1)!.path).toBe('/admin/api/2025-01/shop.json');
  });
});

describe('validateDiscountSpec', () => {
  it('accepts complete percent and amount discounts', () => {
    expect(validateDiscountSpec({ discountType: 'percent', percentOff: 12.5, duration: 'repeating', durationInMonths: 3, codePrefix: 'WINBACK', maxRedemptions: 1, expiresInHours: 72, lockToSubscriber: true })).toEqual([]);
    expect(validateDiscountSpec({ provider: 'shopify', amountOff: 10, currency: 'usd', expiresAt: '2031-01-31T23:59:59Z', codePrefix: 'SPRING_SALE' })).toEqual([]);
    expect(validateDiscountSpec({ percentOff: 100, appliesToAllPlans: false, planIds: ['prod_Basic'] })).toEqual([]);
  });

  it.each<[string, unknown, string]>([
    ['percent without percentOff', { discountType: 'percent' }, 'discount.percentOff is required for a percent discount'],
    ['percentOff 0', { percentOff: 0 }, 'discount.percentOff must be a number above 0 and at most 100, got 0'],
    ['percentOff 150', { percentOff: 150 }, 'discount.percentOff must be a number above 0 and at most 100, got 150'],
    ['percentOff as text', { percentOff: '20' }, 'discount.percentOff must be a number above 0 and at most 100, got "20"'],
    ['amount without currency', { discountType: 'amount', amountOff: 10 }, 'discount.currency is required for an amount discount'],
    ['amount without amountOff', { discountType: 'amount', currency: 'usd' }, 'discount.amountOff is required for an amount discount'],
    ['an unknown discountType', { discountType: 'bogo', percentOff: 10 }, 'discount.discountType must be one of "percent", "amount", got "bogo"'],
    ['negative maxRedemptions', { percentOff: 10, maxRedemptions: -1 }, 'discount.maxRedemptions must be a positive whole number, got -1'],
    ['fractional maxRedemptions', { percentOff: 10, maxRedemptions: 1.5 }, 'discount.maxRedemptions must be a positive whole number, got 1.5'],
    ['a bad expiresAt', { percentOff: 10, expiresAt: 'next tuesday' }, 'discount.expiresAt must be an ISO 8601 date such as "2030-01-31T23:59:59Z", got "next tuesday"'],
    ['both expiries', { percentOff: 10, expiresAt: '2031-01-01T00:00:00Z', expiresInHours: 4 }, 'discount has both expiresAt and expiresInHours; give one'],
    ['cents in yen', { amountOff: 1.5, currency: 'jpy' }, 'discount.amountOff has more decimal places than JPY allows (0), got 1.5'],
    ['a bad currency', { amountOff: 10, currency: 'dollars' }, 'discount.currency must be a three-letter currency code such as "usd", got "dollars"'],
    ['both amounts', { percentOff: 10, amountOff: 5, currency: 'usd' }, 'discount has both percentOff and amountOff; give one'],
    ['neither amount', { duration: 'once' }, 'discount needs percentOff (a percent discount) or amountOff with currency (an amount discount)'],
    ['repeating without months', { percentOff: 10, duration: 'repeating' }, 'discount.durationInMonths is required when duration is "repeating"'],
    ['months without repeating', { percentOff: 10, duration: 'once', durationInMonths: 3 }, 'discount.durationInMonths applies only when duration is "repeating"'],
    ['no plans for a plan-limited coupon', { percentOff: 10, appliesToAllPlans: false }, 'discount.planIds must list at least one product id when appliesToAllPlans is false'],
    ['an underscore in a Stripe prefix', { percentOff: 10, codePrefix: 'SPRING_SALE' }, 'discount.codePrefix may contain only letters, digits and "-" (Stripe promotion codes)'],
    ['an unknown provider', { percentOff: 10, provider: 'paypal' }, 'discount.provider must be one of "stripe", "shopify", "builtin", got "paypal"'],
    ['an unknown field', { percentOff: 10, coupon: 'X' }, 'discount.coupon is not a discount field (known: label, name, provider, discountType, percentOff, amountOff, currency, duration, durationInMonths, appliesToAllPlans, planIds, codePrefix, maxRedemptions, lockToSubscriber, expiresAt, expiresInHours)'],
    ['a non-object', 'twenty percent', 'discount must be an object like {"discountType": "percent", "percentOff": 20}, got "twenty percent"'],
  ])('names the field for %s', (_name, spec, problem) => {
    expect(validateDiscountSpec(spec)).toContain(problem);
  });
});
