import {
  callProvider,
  defaultProviderTimeoutMs,
  discountExpiry,
  discountType,
  idAt,
  objectAt,
  refuseInvalidSpec,
  retryAfterMs,
  type CreatedDiscount,
  type DiscountFailure,
  type DiscountOutcome,
  type DiscountRequest,
  type ProviderResponse,
  type ShopifySettings,
  type VerifyOutcome,
} from './discount-provider.js';

/**
 * Discount codes at Shopify through the Admin REST API, over `fetch`: a price rule
 * (`POST /admin/api/{version}/price_rules.json`) holds the discount, a discount code
 * (`POST …/price_rules/{id}/discount_codes.json`) is what the customer types. JSON bodies,
 * `X-Shopify-Access-Token` header, errors as `{ "errors": "…" | { field: ["…"] } }`.
 *
 * Crash safety without idempotency keys (Shopify has none): the code is looked up first
 * (`GET discount_codes/lookup.json?code=`, 303 See Other when it exists, 404 when not) and
 * only created when absent. A crash after the price rule but before its code leaves a rule
 * with no code; price_rules.json cannot be filtered by title, so the retry lists the rules
 * starting at the exact second this step run's rule starts at (starts_at_min = starts_at_max,
 * derived from the request's `now`) and reuses the one titled with the code. If `now` differs
 * on the retry, the orphan is not found and stays behind, unused and harmless.
 *
 * Outcomes, as values: 429, 5xx, network errors and timeouts → retryable (Retry-After
 * honoured); other 4xx → permanent with Shopify's message.
 */

export const defaultShopifyApiVersion = '2024-10';

type ShopifyCall = (method: 'GET' | 'POST', path: string, body?: unknown) => Promise<ProviderResponse | DiscountFailure>;

function shopifyClient(settings: ShopifySettings, timeoutMs: number): { call: ShopifyCall; origin: string } {
  const origin = settings.baseUrl.replace(/\/+$/, '');
  const prefix = `/admin/api/${settings.apiVersion ?? defaultShopifyApiVersion}`;
  const call: ShopifyCall = (method, path, body) => {
    const headers: Record<string, string> = { 'x-shopify-access-token': settings.accessToken, accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const url = path.startsWith('/') ? `${origin}${path}` : `${origin}${prefix}/${path}`;
    return callProvider('Shopify', url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) }, timeoutMs);
  };
  return { call, origin };
}

/** Shopify's `errors` is a string, a list, or an object of field → messages. */
function describeErrors(errors: unknown): string | null {
  if (typeof errors === 'string') return errors;
  if (Array.isArray(errors)) return errors.map(String).join('; ');
  if (errors && typeof errors === 'object') {
    return Object.entries(errors as Record<string, unknown>)
      .map(([field, messages]) => `${field}: ${Array.isArray(messages) ? messages.map(String).join(', ') : String(messages)}`)
      .join('; ');
  }
  return null;
}

const permanentCodes: Record<number, string> = {
  400: 'bad_request',
  401: 'auth_failed',
  402: 'shop_frozen',
  403: 'forbidden',
  404: 'not_found',
  406: 'not_acceptable',
  422: 'invalid',
  423: 'shop_locked',
};

function shopifyFailure(response: ProviderResponse, during: string): DiscountFailure {
  const detail = describeErrors(response.body.errors) ?? (typeof response.body.error === 'string' ? response.body.error : null) ?? (response.text.slice(0, 200) || `HTTP ${response.status}`);
  const message = `Shopify ${response.status} ${during}: ${detail}`;
  const status = response.status;
  if (status === 429 || status >= 500) {
    return { ok: false, retryable: true, code: `http_${status}`, message, retryAfterMs: retryAfterMs(response.headers.get('retry-after')) };
  }
  if (status >= 300 && status < 400) {
    return { ok: false, retryable: false, code: 'unexpected_redirect', message: `Shopify ${status} ${during}: redirected to ${response.headers.get('location') ?? 'nowhere'}; is the base URL the shop's admin origin (https://<shop>.myshopify.com)?` };
  }
  return { ok: false, retryable: false, code: permanentCodes[status] ?? `http_${status}`, message };
}

function badResponse(what: string): DiscountFailure {
  return { ok: false, retryable: true, code: 'bad_response', message: `Shopify answered without ${what}` };
}

/** Shopify wants a negative decimal string: 20 % off is "-20.0". */
export function shopifyValue(amount: number): string {
  return `-${Number.isInteger(amount) ? amount.toFixed(1) : String(amount)}`;
}

/** starts_at for a step run: whole seconds, so the retry's starts_at_min/max filter matches what Shopify stored. */
export function shopifyStartsAt(now: number): string {
  return new Date(Math.floor(now / 1000) * 1000).toISOString();
}

function describeDiscount(priceRule: Record<string, unknown>, discountCode: Record<string, unknown>, currency: string | null): CreatedDiscount | null {
  const priceRuleId = idAt(priceRule, 'id');
  const discountCodeId = idAt(discountCode, 'id');
  const code = typeof discountCode.code === 'string' ? discountCode.code : null;
  if (!priceRuleId || !discountCodeId || !code) return null;
  const value = Math.abs(Number(priceRule.value));
  const percent = priceRule.value_type === 'percentage';
  const endsAt = typeof priceRule.ends_at === 'string' ? new Date(priceRule.ends_at) : null;
  const providerRef: Record<string, string> = { priceRuleId, discountCodeId };
  const customers = Array.isArray(priceRule.prerequisite_customer_ids) ? priceRule.prerequisite_customer_ids : [];
  if (customers.length === 1) providerRef.customerId = String(customers[0]);
  return {
    code,
    percentOff: percent && Number.isFinite(value) ? value : null,
    amountOff: !percent && Number.isFinite(value) ? value : null,
    currency: percent ? null : currency,
    expiresAt: endsAt && !Number.isNaN(endsAt.getTime()) ? endsAt.toISOString() : null,
    provider: 'shopify',
    providerRef,
  };
}

/** The price rule for a step run; `customerId` restricts it to that customer. */
export function shopifyPriceRule(request: DiscountRequest, customerId: string | null): Record<string, unknown> {
  const spec = request.spec;
  const percent = discountType(spec) === 'percent';
  const expiry = discountExpiry(spec, request.now);
  const locked = spec.lockToSubscriber === true;
  return {
    title: request.code,
    target_type: 'line_item',
    target_selection: 'all',
    allocation_method: 'across',
    value_type: percent ? 'percentage' : 'fixed_amount',
    value: shopifyValue(percent ? (spec.percentOff ?? 0) : (spec.amountOff ?? 0)),
    customer_selection: customerId ? 'prerequisite' : 'all',
    ...(customerId ? { prerequisite_customer_ids: [Number(customerId)] } : {}),
    // A locked code whose contact is not a Shopify customer yet cannot name them: once per
    // customer is the closest Shopify gets, so a forwarded code serves one order per person.
    once_per_customer: locked,
    usage_limit: spec.maxRedemptions ?? null,
    starts_at: shopifyStartsAt(request.now),
    ends_at: expiry ? expiry.toISOString() : null,
  };
}

/** GETs a JSON resource and returns the object under `key`. */
async function getResource(shopify: ShopifyCall, path: string, key: string, during: string): Promise<Record<string, unknown> | DiscountFailure> {
  const response = await shopify('GET', path);
  if (!response.ok) return response;
  if (response.status !== 200) return shopifyFailure(response, during);
  return objectAt(response.body, key);
}

const isFailure = (value: unknown): value is DiscountFailure => value !== null && typeof value === 'object' && (value as { ok?: unknown }).ok === false;

/**
 * Creates (or, on a retry, finds) the Shopify price rule and discount code for one step run.
 *
 * @example
 * const outcome = await createShopifyDiscount(
 *   { baseUrl: 'https://my-shop.myshopify.com', accessToken: 'shpat_…' },
 *   { spec: { percentOff: 15, expiresInHours: 48, maxRedemptions: 1 }, code: 'COMEBACK-7Q2', idempotencyKey: 'session-1:node-3:1', customerEmail: 'ana@example.com', now: Date.now() },
 * );
 */
export async function createShopifyDiscount(settings: ShopifySettings, request: DiscountRequest, options: { timeoutMs?: number } = {}): Promise<DiscountOutcome> {
  const refused = refuseInvalidSpec(request);
  if (refused) return refused;
  const { call: shopify, origin } = shopifyClient(settings, options.timeoutMs ?? defaultProviderTimeoutMs);

  // A fixed amount is in the shop's currency whatever the spec says: $10 off must not
  // become ¥10 off, so an amount discount needs the shop to use the spec's currency.
  let currency: string | null = null;
  if (discountType(request.spec) === 'amount') {
    const shop = await getResource(shopify, 'shop.json', 'shop', 'reading the shop');
    if (isFailure(shop)) return shop;
    const shopCurrency = typeof shop.currency === 'string' ? shop.currency.toUpperCase() : null;
    const wanted = (request.spec.currency ?? '').toUpperCase();
    if (shopCurrency === null) return badResponse("the shop's currency");
    if (shopCurrency !== wanted) {
      return { ok: false, retryable: false, code: 'currency_mismatch', message: `The discount is in ${wanted} but the Shopify shop sells in ${shopCurrency}; Shopify applies fixed amounts in the shop's currency` };
    }
    currency = shopCurrency;
  }

  const lookup = await shopify('GET', `discount_codes/lookup.json?${new URLSearchParams({ code: request.code })}`);
  if (!lookup.ok) return lookup;
  if (lookup.status === 303) {
    const location = lookup.headers.get('location');
    if (!location) return badResponse('a Location for the existing code');
    // Only the path is taken: the token goes to the configured shop origin, never to a host
    // named in a response.
    const target = new URL(location, origin);
    const discountCode = await getResource(shopify, `${target.pathname}${target.search}`, 'discount_code', 'reading the existing discount code');
    if (isFailure(discountCode)) return discountCode;
    const priceRuleId = idAt(discountCode, 'price_rule_id');
    if (!priceRuleId) return badResponse("the existing code's price rule id");
    const priceRule = await getResource(shopify, `price_rules/${priceRuleId}.json`, 'price_rule', 'reading the existing price rule');
    if (isFailure(priceRule)) return priceRule;
    const discount = describeDiscount(priceRule, discountCode, currency);
    return discount ? { ok: true, discount } : badResponse('the existing discount code');
  }
  if (lookup.status !== 404) return shopifyFailure(lookup, 'looking up the code');

  let customerId: string | null = null;
  if (request.spec.lockToSubscriber === true && request.customerEmail) {
    const email = request.customerEmail;
    const search = await shopify('GET', `customers/search.json?${new URLSearchParams({ query: `email:"${email}"`, fields: 'id,email' })}`);
    if (!search.ok) return search;
    if (search.status !== 200) return shopifyFailure(search, 'searching customers');
    const customers = Array.isArray(search.body.customers) ? (search.body.customers as Array<Record<string, unknown>>) : [];
    // The search is full text; only an exact (case-insensitive) email match is the contact.
    const match = customers.find((c) => typeof c.email === 'string' && c.email.toLowerCase() === email.toLowerCase());
    customerId = match ? idAt(match, 'id') : null;
  }

  const rule = shopifyPriceRule(request, customerId);
  const startsAt = String(rule.starts_at);
  const orphans = await shopify('GET', `price_rules.json?${new URLSearchParams({ starts_at_min: startsAt, starts_at_max: startsAt, limit: '250' })}`);
  if (!orphans.ok) return orphans;
  if (orphans.status !== 200) return shopifyFailure(orphans, 'listing price rules');
  let priceRule = (Array.isArray(orphans.body.price_rules) ? (orphans.body.price_rules as Array<Record<string, unknown>>) : []).find((r) => r.title === request.code) ?? null;

  if (!priceRule) {
    const created = await shopify('POST', 'price_rules.json', { price_rule: rule });
    if (!created.ok) return created;
    if (created.status !== 201 && created.status !== 200) return shopifyFailure(created, 'creating the price rule');
    priceRule = objectAt(created.body, 'price_rule');
  }
  const priceRuleId = idAt(priceRule, 'id');
  if (!priceRuleId) return badResponse('a price rule id');

  const code = await shopify('POST', `price_rules/${priceRuleId}/discount_codes.json`, { discount_code: { code: request.code } });
  if (!code.ok) return code;
  if (code.status !== 201 && code.status !== 200) return shopifyFailure(code, 'creating the discount code');
  const discount = describeDiscount(priceRule, objectAt(code.body, 'discount_code'), currency);
  return discount ? { ok: true, discount } : badResponse('a discount code id');
}

/** One cheap authenticated read (`GET /admin/api/{version}/shop.json`), so the settings API can tell a user whether a token works. */
export async function verifyShopify(settings: ShopifySettings, options: { timeoutMs?: number } = {}): Promise<VerifyOutcome> {
  const { call } = shopifyClient(settings, options.timeoutMs ?? defaultProviderTimeoutMs);
  const response = await call('GET', 'shop.json');
  if (!response.ok) return { ok: false, retryable: true, message: response.message };
  if (response.status === 200) return { ok: true };
  const failure = shopifyFailure(response, 'reading the shop');
  return { ok: false, retryable: failure.retryable, message: failure.message };
}
