import {
  callProvider,
  currencyDecimals,
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
  type StripeSettings,
  type VerifyOutcome,
} from './discount-provider.js';

/**
 * Discount codes at Stripe, over `fetch` (no SDK): a coupon (`POST /v1/coupons`) holds the
 * discount, a promotion code (`POST /v1/promotion_codes`) is the code a customer types.
 * Form-encoded bodies with bracket keys (`applies_to[products][]`), Bearer secret key.
 *
 * Crash safety: the caller retries a step with the same code and idempotency key. The
 * code is looked up first (`GET /v1/promotion_codes?code=`), which also covers retries
 * after Stripe has pruned the idempotency keys (24 hours); every POST carries
 * `Idempotency-Key: <key>:coupon | :promotion_code | :customer`, so a retry after a crash
 * between two calls gets the object the first attempt created instead of a second one.
 *
 * Outcomes, as values: 429, 409, 5xx, network errors and timeouts → retryable (Retry-After
 * honoured); other 4xx → permanent with Stripe's message.
 */

/**
 * Pinned so the account's default API version cannot change the wire format under us:
 * 2025-09-30.clover moved the promotion code's `coupon` parameter to `promotion[coupon]`.
 */
export const stripeApiVersion = '2025-03-31.basil';

/** Stripe's coupon `name` is at most 40 characters. */
const couponNameLength = 40;

type StripeCall = (method: 'GET' | 'POST', path: string, form?: URLSearchParams, idempotencyKey?: string) => Promise<ProviderResponse | DiscountFailure>;

function stripeClient(settings: StripeSettings, timeoutMs: number): StripeCall {
  const base = (settings.baseUrl || 'https://api.stripe.com').replace(/\/+$/, '');
  return (method, path, form, idempotencyKey) => {
    const headers: Record<string, string> = {
      authorization: `Bearer ${settings.secretKey}`,
      'stripe-version': stripeApiVersion,
      accept: 'application/json',
    };
    if (form) headers['content-type'] = 'application/x-www-form-urlencoded';
    if (idempotencyKey) headers['idempotency-key'] = idempotencyKey;
    return callProvider('Stripe', `${base}${path}`, { method, headers, body: form?.toString() }, timeoutMs);
  };
}

/** Stripe's error body: `{ error: { type, code, message, param } }`. */
function stripeFailure(response: ProviderResponse): DiscountFailure {
  const error = objectAt(response.body, 'error');
  const type = typeof error.type === 'string' ? error.type : null;
  const code = typeof error.code === 'string' ? error.code : null;
  const param = typeof error.param === 'string' ? error.param : null;
  const text = typeof error.message === 'string' ? error.message : response.text.slice(0, 200) || `HTTP ${response.status}`;
  const label = [code ?? type, param ? `param ${param}` : null].filter(Boolean).join(', ');
  const message = `Stripe ${response.status}${label ? ` (${label})` : ''}: ${text}`;
  const status = response.status;
  // Stripe can say outright whether a retry will help (its own libraries obey the header):
  // a same-key retry of a saved failure only replays it, and a lock timeout clears.
  const shouldRetry = response.headers.get('stripe-should-retry');
  const retryable = shouldRetry === 'true' ? true : shouldRetry === 'false' ? false : status === 429 || status === 409 || status >= 500;
  if (retryable) {
    return { ok: false, retryable: true, code: code ?? type ?? `http_${status}`, message, retryAfterMs: retryAfterMs(response.headers.get('retry-after')) };
  }
  if (status === 401) return { ok: false, retryable: false, code: 'auth_failed', message };
  if (type === 'idempotency_error') {
    return {
      ok: false,
      retryable: false,
      code: 'idempotency_error',
      message: `${message} (a retry of this step sent different parameters: the discount spec or the step's time changed since the first attempt)`,
    };
  }
  return { ok: false, retryable: false, code: code ?? type ?? `http_${status}`, message };
}

function badResponse(what: string): DiscountFailure {
  // A 200 without the fields every Stripe object has: something in between mangled it.
  // Retrying is safe, the POSTs are idempotent.
  return { ok: false, retryable: true, code: 'bad_response', message: `Stripe answered without ${what}` };
}

/** Major units (10 = $10.00) to Stripe's minor units (1000), by the currency's decimals. */
export function toStripeAmount(amount: number, currency: string): number {
  const decimals = currencyDecimals(currency);
  // Stripe wants three-decimal currencies (KWD, BHD…) in thousandths rounded to the tens.
  if (decimals === 3) return Math.round(amount * 100) * 10;
  return Math.round(amount * 10 ** decimals);
}

function fromStripeAmount(amount: number, currency: string): number {
  return amount / 10 ** currencyDecimals(currency);
}

const unixSeconds = (date: Date): string => String(Math.floor(date.getTime() / 1000));

function describeDiscount(promotionCode: Record<string, unknown>, coupon: Record<string, unknown>): CreatedDiscount | null {
  const promotionCodeId = idAt(promotionCode, 'id');
  const couponId = idAt(coupon, 'id');
  const code = typeof promotionCode.code === 'string' ? promotionCode.code : null;
  if (!promotionCodeId || !couponId || !code) return null;
  const currency = typeof coupon.currency === 'string' ? coupon.currency : null;
  const expiresAt = typeof promotionCode.expires_at === 'number' ? promotionCode.expires_at : typeof coupon.redeem_by === 'number' ? coupon.redeem_by : null;
  const providerRef: Record<string, string> = { couponId, promotionCodeId };
  const customerId = idAt(promotionCode, 'customer');
  if (customerId) providerRef.customerId = customerId;
  return {
    code,
    percentOff: typeof coupon.percent_off === 'number' ? coupon.percent_off : null,
    amountOff: typeof coupon.amount_off === 'number' && currency ? fromStripeAmount(coupon.amount_off, currency) : null,
    currency: currency ? currency.toUpperCase() : null,
    expiresAt: expiresAt !== null ? new Date(expiresAt * 1000).toISOString() : null,
    provider: 'stripe',
    providerRef,
  };
}

/** The coupon's form: the discount, how long it lasts on a subscription, and what it applies to. */
export function stripeCouponForm(request: DiscountRequest): URLSearchParams {
  const spec = request.spec;
  const form = new URLSearchParams();
  if (discountType(spec) === 'amount') {
    const currency = (spec.currency ?? '').toLowerCase();
    form.set('amount_off', String(toStripeAmount(spec.amountOff ?? 0, currency)));
    form.set('currency', currency);
  } else {
    form.set('percent_off', String(spec.percentOff));
  }
  const duration = spec.duration ?? 'once';
  form.set('duration', duration);
  if (duration === 'repeating' && spec.durationInMonths !== undefined) form.set('duration_in_months', String(spec.durationInMonths));
  const name = (spec.label ?? spec.name ?? '').trim();
  if (name !== '') form.set('name', name.slice(0, couponNameLength).trimEnd());
  const expiry = discountExpiry(spec, request.now);
  if (expiry) form.set('redeem_by', unixSeconds(expiry));
  // On the coupon as well as its code: each step run makes its own coupon, and the limit
  // then also holds for any promotion code someone adds to it in the Stripe dashboard.
  if (spec.maxRedemptions !== undefined) form.set('max_redemptions', String(spec.maxRedemptions));
  const planIds = (spec.planIds ?? []).filter((id): id is string => typeof id === 'string');
  if (spec.appliesToAllPlans !== true && planIds.length > 0) {
    for (const id of planIds) form.append('applies_to[products][]', id);
  }
  form.set('metadata[nudge_code]', request.code);
  return form;
}

/** The promotion code's form: the code itself and who may redeem it, how often, until when. */
export function stripePromotionCodeForm(request: DiscountRequest, couponId: string, customerId: string | null): URLSearchParams {
  const spec = request.spec;
  const form = new URLSearchParams();
  form.set('coupon', couponId);
  form.set('code', request.code);
  if (customerId) form.set('customer', customerId);
  if (spec.maxRedemptions !== undefined) form.set('max_redemptions', String(spec.maxRedemptions));
  const expiry = discountExpiry(spec, request.now);
  if (expiry) form.set('expires_at', unixSeconds(expiry));
  form.set('metadata[nudge_code]', request.code);
  return form;
}

/** The Stripe customer with the contact's email, created (idempotently) when there is none. */
async function stripeCustomerFor(stripe: StripeCall, email: string, idempotencyKey: string): Promise<string | DiscountFailure> {
  // Stripe matches `email` exactly, case included; a customer typed with other capitals is
  // not found and gets a twin. Acceptable: the twin only holds this code.
  const found = await stripe('GET', `/v1/customers?${new URLSearchParams({ email, limit: '1' })}`);
  if (!found.ok) return found;
  if (found.status !== 200) return stripeFailure(found);
  const list = Array.isArray(found.body.data) ? (found.body.data as unknown[]) : [];
  const existing = list.length > 0 ? idAt(list[0] as Record<string, unknown>, 'id') : null;
  if (existing) return existing;
  const form = new URLSearchParams({ email });
  form.set('metadata[created_by]', 'Nudge');
  const created = await stripe('POST', '/v1/customers', form, `${idempotencyKey}:customer`);
  if (!created.ok) return created;
  if (created.status !== 200) return stripeFailure(created);
  return idAt(created.body, 'id') ?? badResponse('a customer id');
}

/**
 * Creates (or, on a retry, finds) the Stripe coupon and promotion code for one step run.
 *
 * @example
 * const outcome = await createStripeDiscount(
 *   { baseUrl: 'https://api.stripe.com', secretKey: 'sk_live_…' },
 *   { spec: { percentOff: 20, duration: 'once', expiresInHours: 72 }, code: 'WINBACK-7Q2', idempotencyKey: 'session-1:node-3:1', customerEmail: 'ana@example.com', now: Date.now() },
 * );
 * if (outcome.ok) console.log(outcome.discount.code, outcome.discount.expiresAt);
 */
export async function createStripeDiscount(settings: StripeSettings, request: DiscountRequest, options: { timeoutMs?: number } = {}): Promise<DiscountOutcome> {
  const refused = refuseInvalidSpec(request);
  if (refused) return refused;
  if (request.spec.lockToSubscriber === true && !request.customerEmail) {
    return { ok: false, retryable: false, code: 'customer_email_required', message: 'The discount is locked to the contact, who has no email address to find them at Stripe' };
  }
  const stripe = stripeClient(settings, options.timeoutMs ?? defaultProviderTimeoutMs);

  // Stripe's `code` filter ignores case, as does code uniqueness at Stripe.
  const lookup = await stripe('GET', `/v1/promotion_codes?${new URLSearchParams({ code: request.code, limit: '1' })}`);
  if (!lookup.ok) return lookup;
  if (lookup.status !== 200) return stripeFailure(lookup);
  const listed = (Array.isArray(lookup.body.data) ? (lookup.body.data as unknown[]) : []).find(
    (item): item is Record<string, unknown> => item !== null && typeof item === 'object' && String((item as Record<string, unknown>).code).toLowerCase() === request.code.toLowerCase(),
  );
  if (listed) {
    const discount = describeDiscount(listed, objectAt(listed, 'coupon'));
    return discount ? { ok: true, discount } : badResponse('the promotion code and its coupon');
  }

  let customerId: string | null = null;
  if (request.spec.lockToSubscriber === true && request.customerEmail) {
    const customer = await stripeCustomerFor(stripe, request.customerEmail, request.idempotencyKey);
    if (typeof customer !== 'string') return customer;
    customerId = customer;
  }

  const coupon = await stripe('POST', '/v1/coupons', stripeCouponForm(request), `${request.idempotencyKey}:coupon`);
  if (!coupon.ok) return coupon;
  if (coupon.status !== 200) return stripeFailure(coupon);
  const couponId = idAt(coupon.body, 'id');
  if (!couponId) return badResponse('a coupon id');

  const promotionCode = await stripe('POST', '/v1/promotion_codes', stripePromotionCodeForm(request, couponId, customerId), `${request.idempotencyKey}:promotion_code`);
  if (!promotionCode.ok) return promotionCode;
  if (promotionCode.status !== 200) return stripeFailure(promotionCode);
  const discount = describeDiscount(promotionCode.body, coupon.body);
  return discount ? { ok: true, discount } : badResponse('a promotion code id');
}

/**
 * One cheap authenticated read (`GET /v1/coupons?limit=1`), so the settings API can tell a
 * user whether a secret key works. Coupons rather than the balance: a restricted key made
 * for Nudge needs coupon access and may have no balance access.
 */
export async function verifyStripe(settings: StripeSettings, options: { timeoutMs?: number } = {}): Promise<VerifyOutcome> {
  const response = await stripeClient(settings, options.timeoutMs ?? defaultProviderTimeoutMs)('GET', '/v1/coupons?limit=1');
  if (!response.ok) return { ok: false, retryable: true, message: response.message };
  if (response.status === 200) return { ok: true };
  const failure = stripeFailure(response);
  return { ok: false, retryable: failure.retryable, message: failure.message };
}
