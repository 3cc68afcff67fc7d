import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local stand-in for the parts of Stripe's API that discount codes use, speaking its wire
 * format: form-encoded bodies with bracket keys (`applies_to[products][]=prod_1`,
 * `metadata[k]=v`), `Authorization: Bearer <secret key>`, `Idempotency-Key` (same key and
 * parameters → the saved response again with `Idempotent-Replayed: true`; same key, other
 * parameters → 400 idempotency_error), lists as `{ object: 'list', data, has_more, url }`,
 * errors as `{ error: { type, code, message, param } }`.
 *
 * Routes: GET/POST /v1/coupons, GET/POST /v1/promotion_codes (GET filters by `code`, case
 * ignored), GET/POST /v1/customers (GET filters by exact `email`).
 *
 * Requests without a `Stripe-Version` header get the account's default version, by default
 * a 2025-09-30.clover one, which no longer knows the promotion code's `coupon` parameter.
 */

export type StripeParams = Record<string, unknown>;

export interface StripeRequest {
  method: string;
  /** Path without the query. */
  path: string;
  query: Record<string, string>;
  authorization: string | undefined;
  contentType: string | undefined;
  idempotencyKey: string | undefined;
  stripeVersion: string | undefined;
  /** The body as sent. */
  raw: string;
  /** The body decoded, bracket keys nested: `a[b][]=1&a[b][]=2` → `{ a: { b: ['1', '2'] } }`. */
  params: StripeParams;
  /** Whether the answer was a replay of a saved idempotent response. */
  replayed: boolean;
}

export interface ScriptedResponse {
  /** Only for a request like 'POST /v1/promotion_codes' (method and path prefix); the next request otherwise. */
  match?: string;
  status?: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** Never answer (to test timeouts); nothing is created. */
  hang?: boolean;
  /** Handle the request as usual, then never answer: Stripe did the work, the response was lost. */
  lose?: boolean;
}

export interface FakeStripe {
  baseUrl: string;
  requests: StripeRequest[];
  coupons: Array<Record<string, unknown>>;
  promotionCodes: Array<Record<string, unknown>>;
  customers: Array<Record<string, unknown>>;
  script: ScriptedResponse[];
  /** Adds a customer as if made in the Stripe dashboard; returns its id. */
  addCustomer(email: string): string;
  close(): Promise<void>;
}

export function stripeError(status: number, type: string, message: string, extra: { code?: string; param?: string } = {}): ScriptedResponse {
  return { status, body: { error: { type, message, ...extra } } };
}

/** Decodes a form body the way Stripe does, nesting bracket keys. */
export function parseStripeForm(raw: string): StripeParams {
  const root: StripeParams = {};
  for (const [key, value] of new URLSearchParams(raw)) {
    const match = /^([^[\]]+)((?:\[[^[\]]*\])*)$/.exec(key);
    const path = match ? [match[1]!, ...[...match[2]!.matchAll(/\[([^[\]]*)\]/g)].map((m) => m[1]!)] : [key];
    let node: unknown = root;
    path.forEach((segment, i) => {
      const last = i === path.length - 1;
      const fresh = () => (path[i + 1] === '' ? [] : {});
      if (Array.isArray(node)) {
        // `[]`: append; the fake has no `a[][b]` shapes (Stripe uses `a[0][b]` for those).
        if (last) node.push(value);
        else {
          const child = fresh();
          node.push(child);
          node = child;
        }
        return;
      }
      const object = node as Record<string, unknown>;
      if (last) object[segment] = value;
      else {
        object[segment] ??= fresh();
        node = object[segment];
      }
    });
  }
  return root;
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

const randomId = (prefix: string, length: number) =>
  `${prefix}${randomBytes(length)
    .toString('base64')
    .replace(/[^A-Za-z0-9]/g, '')
    .slice(0, length)
    .padEnd(length, 'x')}`;

const nowSeconds = () => Math.floor(Date.now() / 1000);

interface Answer {
  status: number;
  body: unknown;
}

const invalid = (message: string, param?: string, code = 'parameter_invalid'): Answer => ({
  status: 400,
  body: { error: { type: 'invalid_request_error', code, message, ...(param ? { param } : {}) } },
});

export async function startFakeStripe(secretKey: string, options: { accountApiVersion?: string } = {}): Promise<FakeStripe> {
  const accountApiVersion = options.accountApiVersion ?? '2025-10-29.clover';
  const requests: StripeRequest[] = [];
  const coupons: FakeStripe['coupons'] = [];
  const promotionCodes: FakeStripe['promotionCodes'] = [];
  const customers: FakeStripe['customers'] = [];
  const script: ScriptedResponse[] = [];
  const saved = new Map<string, { fingerprint: string; answer: Answer }>();
  const hanging = new Set<ServerResponse>();

  const list = (url: string, data: unknown[]): Answer => ({ status: 200, body: { object: 'list', data, has_more: false, url } });

  const integer = (params: StripeParams, key: string): number | undefined | Answer => {
    const value = params[key];
    if (value === undefined) return undefined;
    if (typeof value !== 'string' || !/^\d+$/.test(value)) return invalid(`Invalid integer: ${String(value)}`, key, 'parameter_invalid_integer');
    return Number(value);
  };
  const isAnswer = (value: unknown): value is Answer => value !== null && typeof value === 'object' && 'status' in value;

  function createCoupon(params: StripeParams): Answer {
    const known = ['amount_off', 'applies_to', 'currency', 'duration', 'duration_in_months', 'id', 'max_redemptions', 'metadata', 'name', 'percent_off', 'redeem_by'];
    const unknown = Object.keys(params).find((key) => !known.includes(key));
    if (unknown) return invalid(`Received unknown parameter: ${unknown}`, unknown, 'parameter_unknown');
    const amountOff = integer(params, 'amount_off');
    if (isAnswer(amountOff)) return amountOff;
    const percentOff = params.percent_off === undefined ? undefined : Number(params.percent_off);
    if (percentOff !== undefined && (!Number.isFinite(percentOff) || percentOff <= 0 || percentOff > 100)) return invalid('Percent off must be between 0 and 100.', 'percent_off');
    if (amountOff === undefined && percentOff === undefined) return invalid('Missing required param: percent_off.', 'percent_off', 'parameter_missing');
    if (amountOff !== undefined && percentOff !== undefined) return invalid('You may only specify one of these parameters: amount_off, percent_off.', 'amount_off');
    const currency = typeof params.currency === 'string' ? params.currency : undefined;
    if (amountOff !== undefined && !currency) return invalid('You must pass currency when passing amount_off', 'currency', 'parameter_missing');
    if (currency !== undefined && currency !== currency.toLowerCase()) return invalid(`Invalid currency: ${currency}. Stripe currencies are lower case.`, 'currency');
    const duration = params.duration ?? 'once';
    if (duration !== 'once' && duration !== 'repeating' && duration !== 'forever') return invalid(`Invalid duration: ${String(duration)}`, 'duration');
    const months = integer(params, 'duration_in_months');
    if (isAnswer(months)) return months;
    if (duration === 'repeating' && months === undefined) return invalid('duration_in_months is required when duration is repeating', 'duration_in_months', 'parameter_missing');
    if (duration !== 'repeating' && months !== undefined) return invalid('duration_in_months can only be set when duration is repeating', 'duration_in_months');
    if (typeof params.name === 'string' && params.name.length > 40) return invalid('Coupon name must be at most 40 characters.', 'name');
    const redeemBy = integer(params, 'redeem_by');
    if (isAnswer(redeemBy)) return redeemBy;
    const maxRedemptions = integer(params, 'max_redemptions');
    if (isAnswer(maxRedemptions)) return maxRedemptions;
    if (redeemBy !== undefined && redeemBy <= nowSeconds()) return invalid('Redeem by must be in the future', 'redeem_by');
    const appliesTo = params.applies_to as { products?: unknown } | undefined;
    if (appliesTo !== undefined && !Array.isArray(appliesTo.products)) return invalid('applies_to[products] must be a list', 'applies_to[products]');
    const coupon = {
      id: typeof params.id === 'string' ? params.id : randomId('', 8),
      object: 'coupon',
      amount_off: amountOff ?? null,
      created: nowSeconds(),
      currency: currency ?? null,
      duration,
      duration_in_months: months ?? null,
      livemode: false,
      max_redemptions: maxRedemptions ?? null,
      metadata: (params.metadata as Record<string, string> | undefined) ?? {},
      name: typeof params.name === 'string' ? params.name : null,
      percent_off: percentOff ?? null,
      redeem_by: redeemBy ?? null,
      times_redeemed: 0,
      valid: true,
      ...(appliesTo ? { applies_to: { products: appliesTo.products } } : {}),
    };
    coupons.push(coupon);
    return { status: 200, body: coupon };
  }

  function createPromotionCode(params: StripeParams, version: string): Answer {
    const clover = version >= '2025-09-30';
    const known = ['active', 'code', clover ? 'promotion' : 'coupon', 'customer', 'expires_at', 'max_redemptions', 'metadata', 'restrictions'];
    const unknown = Object.keys(params).find((key) => !known.includes(key));
    if (unknown) return invalid(`Received unknown parameter: ${unknown}`, unknown, 'parameter_unknown');
    const couponId = clover ? (params.promotion as { coupon?: unknown } | undefined)?.coupon : params.coupon;
    if (typeof couponId !== 'string') return invalid(`Missing required param: ${clover ? 'promotion' : 'coupon'}.`, clover ? 'promotion' : 'coupon', 'parameter_missing');
    const coupon = coupons.find((c) => c.id === couponId);
    if (!coupon) return invalid(`No such coupon: '${couponId}'`, 'coupon', 'resource_missing');
    const code = typeof params.code === 'string' ? params.code : randomId('', 8).toUpperCase();
    if (!/^[A-Za-z0-9-]+$/.test(code)) return invalid('Valid characters are lower case letters (a-z), upper case letters (A-Z), digits (0-9), and dashes (-).', 'code');
    if (promotionCodes.some((p) => p.active === true && String(p.code).toLowerCase() === code.toLowerCase())) {
      return invalid(`An active promotion code with \`code: ${code}\` already exists.`, 'code', 'resource_already_exists');
    }
    const customer = typeof params.customer === 'string' ? params.customer : null;
    if (customer !== null && !customers.some((c) => c.id === customer)) return invalid(`No such customer: '${customer}'`, 'customer', 'resource_missing');
    const maxRedemptions = integer(params, 'max_redemptions');
    if (isAnswer(maxRedemptions)) return maxRedemptions;
    const expiresAt = integer(params, 'expires_at');
    if (isAnswer(expiresAt)) return expiresAt;
    if (expiresAt !== undefined && typeof coupon.redeem_by === 'number' && expiresAt > coupon.redeem_by) {
      return invalid("The promotion code's `expires_at` may not be after the coupon's `redeem_by`.", 'expires_at');
    }
    const promotionCode = {
      id: randomId('promo_', 24),
      object: 'promotion_code',
      active: true,
      code,
      coupon,
      created: nowSeconds(),
      customer,
      expires_at: expiresAt ?? null,
      livemode: false,
      max_redemptions: maxRedemptions ?? null,
      metadata: (params.metadata as Record<string, string> | undefined) ?? {},
      restrictions: { first_time_transaction: false, minimum_amount: null, minimum_amount_currency: null },
      times_redeemed: 0,
    };
    promotionCodes.push(promotionCode);
    return { status: 200, body: promotionCode };
  }

  function createCustomer(params: StripeParams): Answer {
    const customer = {
      id: randomId('cus_', 14),
      object: 'customer',
      created: nowSeconds(),
      email: typeof params.email === 'string' ? params.email : null,
      livemode: false,
      metadata: (params.metadata as Record<string, string> | undefined) ?? {},
    };
    customers.push(customer);
    return { status: 200, body: customer };
  }

  function route(entry: StripeRequest): Answer {
    const version = entry.stripeVersion ?? accountApiVersion;
    const key = `${entry.method} ${entry.path}`;
    const limit = Number(entry.query.limit ?? 10);
    switch (key) {
      case 'GET /v1/coupons':
        return list('/v1/coupons', coupons.slice().reverse().slice(0, limit));
      case 'POST /v1/coupons':
        return createCoupon(entry.params);
      case 'GET /v1/promotion_codes': {
        const code = entry.query.code?.toLowerCase();
        const found = promotionCodes.filter((p) => code === undefined || String(p.code).toLowerCase() === code);
        return list('/v1/promotion_codes', found.reverse().slice(0, limit));
      }
      case 'POST /v1/promotion_codes':
        return createPromotionCode(entry.params, version);
      case 'GET /v1/customers': {
        const found = customers.filter((c) => entry.query.email === undefined || c.email === entry.query.email);
        return list('/v1/customers', found.reverse().slice(0, limit));
      }
      case 'POST /v1/customers':
        return createCustomer(entry.params);
      default:
        return { status: 404, body: { error: { type: 'invalid_request_error', message: `Unrecognized request URL (${entry.method}: ${entry.path}).` } } };
    }
  }

  const server: Server = createServer((request, response) => {
    void (async () => {
      const raw = await readBody(request);
      const url = new URL(request.url ?? '/', 'http://fake-stripe');
      const header = (name: string) => {
        const value = request.headers[name];
        return Array.isArray(value) ? value[0] : value;
      };
      const entry: StripeRequest = {
        method: request.method ?? '',
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        authorization: header('authorization'),
        contentType: header('content-type'),
        idempotencyKey: header('idempotency-key'),
        stripeVersion: header('stripe-version'),
        raw,
        params: parseStripeForm(raw),
        replayed: false,
      };
      requests.push(entry);
      const answer = ({ status, body }: Answer, headers: Record<string, string> = {}) => {
        response.writeHead(status, { 'content-type': 'application/json', 'request-id': randomId('req_', 14), ...headers });
        response.end(typeof body === 'string' ? body : JSON.stringify(body));
      };

      const index = script.findIndex((s) => s.match === undefined || `${entry.method} ${entry.path}`.startsWith(s.match));
      const scripted = index >= 0 ? script.splice(index, 1)[0] : undefined;
      if (scripted && !scripted.lose) {
        if (scripted.hang) {
          hanging.add(response);
          return;
        }
        answer({ status: scripted.status ?? 500, body: scripted.body ?? {} }, scripted.headers);
        return;
      }

      if (entry.authorization !== `Bearer ${secretKey}`) {
        const shown = entry.authorization?.replace(/^Bearer\s+/, '') ?? '';
        const message = shown === '' ? 'You did not provide an API key.' : `Invalid API Key provided: ${shown.slice(0, 8)}${'*'.repeat(8)}${shown.slice(-4)}`;
        return answer({ status: 401, body: { error: { type: 'invalid_request_error', message } } }, { 'www-authenticate': 'Bearer realm="Stripe"' });
      }
      if (entry.method === 'POST' && !entry.contentType?.startsWith('application/x-www-form-urlencoded')) {
        return answer(invalid('Stripe takes form-encoded request bodies (application/x-www-form-urlencoded).'));
      }

      let result: Answer;
      let replayHeaders: Record<string, string> = {};
      const idempotent = entry.method === 'POST' && entry.idempotencyKey !== undefined;
      const fingerprint = `${entry.method} ${entry.path} ${[...new URLSearchParams(raw)].map(([k, v]) => `${k}=${v}`).join('&')}`;
      const previous = idempotent ? saved.get(entry.idempotencyKey!) : undefined;
      if (previous && previous.fingerprint !== fingerprint) {
        result = {
          status: 400,
          body: {
            error: {
              type: 'idempotency_error',
              message: `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${entry.idempotencyKey}' if you meant to execute a different request.`,
            },
          },
        };
      } else if (previous) {
        entry.replayed = true;
        result = previous.answer;
        replayHeaders = { 'idempotent-replayed': 'true', 'original-request': 'req_original' };
      } else {
        result = route(entry);
        // Stripe saves what an endpoint answered once it began executing, errors included.
        if (idempotent) saved.set(entry.idempotencyKey!, { fingerprint, answer: result });
      }

      if (scripted?.lose) {
        hanging.add(response);
        return;
      }
      answer(result, { ...replayHeaders, ...(idempotent ? { 'idempotency-key': entry.idempotencyKey! } : {}) });
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    requests,
    coupons,
    promotionCodes,
    customers,
    script,
    addCustomer(email) {
      const { body } = createCustomer({ email });
      return (body as { id: string }).id;
    },
    close: async () => {
      for (const response of hanging) response.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
