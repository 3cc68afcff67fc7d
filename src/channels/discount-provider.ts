import { currencyDecimals, discountExpiry, discountType, validateDiscountSpec, type DiscountSpec } from '../domain/discount-spec.js';

export { currencyDecimals, discountExpiry, discountType, validateDiscountSpec, type DiscountSpec };

/**
 * What the `create_discount` step asks of a commerce provider (Stripe, Shopify), and the
 * pieces both provider clients share: validation of the step's discount spec, expiry and
 * currency arithmetic, and one `fetch` wrapper that turns every transport failure into a
 * value. Providers never throw for expected failures; they return a {@link DiscountOutcome}.
 */

export interface DiscountRequest {
  spec: DiscountSpec;
  /** Chosen by the caller, deterministic for the step run and already prefixed: a retry sends the same code. */
  code: string;
  /** Stable for the step run, like the code: Stripe uses it to recognise a retry. */
  idempotencyKey: string;
  customerEmail: string | null;
  /**
   * Epoch ms of the step run. Pass the same value on a retry: expiries are computed from it,
   * and Stripe refuses an idempotency key reused with different parameters.
   */
  now: number;
}

export interface CreatedDiscount {
  code: string;
  percentOff: number | null;
  /** Major units, like DiscountSpec.amountOff. */
  amountOff: number | null;
  /** ISO 4217, upper case. */
  currency: string | null;
  /** ISO 8601. */
  expiresAt: string | null;
  provider: 'stripe' | 'shopify';
  /** Stripe: couponId, promotionCodeId, customerId (when locked). Shopify: priceRuleId, discountCodeId, customerId (when locked). */
  providerRef: Record<string, string>;
}

export type DiscountFailure = { ok: false; retryable: boolean; code: string; message: string; retryAfterMs?: number };
export type DiscountOutcome = { ok: true; discount: CreatedDiscount } | DiscountFailure;

export interface StripeSettings {
  /** https://api.stripe.com unless tests point it at a fake. */
  baseUrl: string;
  secretKey: string;
}

export interface ShopifySettings {
  /** The shop's admin origin, e.g. https://my-shop.myshopify.com. */
  baseUrl: string;
  accessToken: string;
  /** Default 2024-10. */
  apiVersion?: string;
}

/** `retryable`: the provider could not be reached or had a fault, so the credentials are neither good nor bad yet. */
export type VerifyOutcome = { ok: true } | { ok: false; retryable: boolean; message: string };

export const defaultProviderTimeoutMs = 10_000;

/** Checks the spec again at run time and turns problems into a permanent failure. */
export function refuseInvalidSpec(request: DiscountRequest): DiscountFailure | null {
  const problems = validateDiscountSpec(request.spec);
  if (problems.length > 0) return { ok: false, retryable: false, code: 'invalid_discount', message: problems.join('; ') };
  if (request.code.trim() === '') return { ok: false, retryable: false, code: 'invalid_discount', message: 'The discount code is empty' };
  const expiry = discountExpiry(request.spec, request.now);
  if (expiry !== null && expiry.getTime() <= request.now) {
    return { ok: false, retryable: false, code: 'already_expired', message: `The discount would expire at ${expiry.toISOString()}, which has passed` };
  }
  return null;
}

/** Parses Retry-After (seconds or an HTTP date) into milliseconds. Same rule as the Twilio channel's. */
export function retryAfterMs(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const text = value.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

export interface ProviderResponse {
  ok: true;
  status: number;
  headers: Headers;
  /** The parsed JSON object, or {} when the body was not a JSON object (a proxy's HTML page). */
  body: Record<string, unknown>;
  text: string;
}

/**
 * One HTTP call to a provider. Network errors and timeouts come back as retryable failures;
 * every HTTP status comes back as a response for the caller to judge.
 *
 * Redirects are never followed: fetch would carry our credential headers to wherever the
 * Location points, and Shopify's code lookup answers 303 on purpose.
 */
export async function callProvider(providerName: string, url: string, init: { method: string; headers: Record<string, string>; body?: string }, timeoutMs: number): Promise<ProviderResponse | DiscountFailure> {
  let response: Response;
  try {
    response = await fetch(url, { ...init, redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) });
  } catch (error) {
    const timedOut = error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError');
    const detail = error instanceof Error ? (error.cause instanceof Error ? `${error.message} (${error.cause.message})` : error.message) : String(error);
    return { ok: false, retryable: true, code: timedOut ? 'timeout' : 'network_error', message: `${providerName} request failed: ${detail}` };
  }
  let text: string;
  try {
    text = await response.text();
  } catch (error) {
    // The body was cut off (or timed out) after the headers: the outcome is unknown, so retry.
    return { ok: false, retryable: true, code: 'network_error', message: `${providerName} response was cut off: ${error instanceof Error ? error.message : String(error)}` };
  }
  let body: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) body = parsed as Record<string, unknown>;
  } catch {
    // Not JSON: judged by the status code alone.
  }
  return { ok: true, status: response.status, headers: response.headers, body, text };
}

/** An object field of a JSON body, or {} when absent. */
export function objectAt(owner: unknown, key: string): Record<string, unknown> {
  if (owner === null || typeof owner !== 'object') return {};
  const value = (owner as Record<string, unknown>)[key];
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

/** Provider ids arrive as strings (Stripe) or numbers (Shopify); Nudge keeps them as strings. */
export function idAt(owner: Record<string, unknown>, key: string): string | null {
  const value = owner[key];
  if (typeof value === 'string' && value !== '') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return null;
}
