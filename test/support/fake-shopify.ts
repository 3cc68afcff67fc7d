import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local stand-in for the parts of Shopify's Admin REST API that discount codes use,
 * speaking its wire format: JSON bodies wrapped in the resource name (`{ "price_rule": {…} }`),
 * `X-Shopify-Access-Token`, versioned paths (/admin/api/2024-10/…), errors as
 * `{ "errors": "…" }` or `{ "errors": { "field": ["…"] } }`, and the code lookup that answers
 * 303 See Other with a Location when the code exists and 404 when it does not.
 *
 * Routes under /admin/api/{version}/: shop.json, customers/search.json?query=email:…,
 * discount_codes/lookup.json?code=…, price_rules.json (GET with starts_at_min/max, POST),
 * price_rules/{id}.json, price_rules/{id}/discount_codes.json (POST),
 * price_rules/{id}/discount_codes/{id}.json.
 */

export interface ShopifyRequest {
  method: string;
  /** Path without the query. */
  path: string;
  query: Record<string, string>;
  accessToken: string | undefined;
  contentType: string | undefined;
  /** The parsed JSON body, or null. */
  json: unknown;
}

export interface ScriptedResponse {
  /** Only for a request like 'POST /admin/api/2024-10/price_rules/' (method and path prefix); the next request otherwise. */
  match?: string;
  status?: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** Never answer (to test timeouts); nothing is created. */
  hang?: boolean;
  /** Handle the request as usual, then never answer. */
  lose?: boolean;
}

export interface FakeShopify {
  baseUrl: string;
  requests: ShopifyRequest[];
  priceRules: Array<Record<string, unknown>>;
  discountCodes: Array<Record<string, unknown>>;
  customers: Array<{ id: number; email: string }>;
  script: ScriptedResponse[];
  addCustomer(email: string): number;
  close(): Promise<void>;
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

interface Answer {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

const unprocessable = (errors: Record<string, string[]>): Answer => ({ status: 422, body: { errors } });
const notFound: Answer = { status: 404, body: { errors: 'Not Found' } };

/** How Shopify prints a price rule value: "-20.0", "-10.5". */
const formatValue = (value: number) => (Number.isInteger(value) ? value.toFixed(1) : String(value));

export async function startFakeShopify(accessToken: string, options: { currency?: string; redirectOrigin?: string } = {}): Promise<FakeShopify> {
  const requests: ShopifyRequest[] = [];
  const priceRules: FakeShopify['priceRules'] = [];
  const discountCodes: FakeShopify['discountCodes'] = [];
  const customers: FakeShopify['customers'] = [];
  const script: ScriptedResponse[] = [];
  const hanging = new Set<ServerResponse>();
  let nextId = 507328175;
  let baseUrl = '';

  function createPriceRule(json: unknown): Answer {
    const input = (json as { price_rule?: Record<string, unknown> } | null)?.price_rule;
    if (!input || typeof input !== 'object') return { status: 400, body: { errors: { price_rule: 'Required parameter missing or invalid' } } };
    const errors: Record<string, string[]> = {};
    const add = (field: string, message: string) => (errors[field] ??= []).push(message);
    if (typeof input.title !== 'string' || input.title === '') add('title', "can't be blank");
    if (!['line_item', 'shipping_line'].includes(String(input.target_type))) add('target_type', 'is not included in the list');
    if (!['all', 'entitled'].includes(String(input.target_selection))) add('target_selection', 'is not included in the list');
    if (!['across', 'each'].includes(String(input.allocation_method))) add('allocation_method', 'is not included in the list');
    if (!['percentage', 'fixed_amount'].includes(String(input.value_type))) add('value_type', 'is not included in the list');
    const value = Number(input.value);
    if (!Number.isFinite(value) || value >= 0) add('value', 'must be less than 0');
    else if (input.value_type === 'percentage' && value < -100) add('value', 'must be greater than or equal to -100');
    if (!['all', 'prerequisite'].includes(String(input.customer_selection))) add('customer_selection', 'is not included in the list');
    const prerequisite = Array.isArray(input.prerequisite_customer_ids) ? (input.prerequisite_customer_ids as unknown[]) : [];
    if (input.customer_selection === 'prerequisite' && prerequisite.length === 0) add('customer_selection', 'must have at least one prerequisite customer');
    if (input.prerequisite_customer_ids !== undefined && !Array.isArray(input.prerequisite_customer_ids)) add('prerequisite_customer_ids', 'expected Hash to be a Array');
    for (const id of prerequisite) if (!customers.some((c) => c.id === id)) add('prerequisite_customer_ids', `${String(id)} does not exist`);
    const startsAt = typeof input.starts_at === 'string' ? Date.parse(input.starts_at) : NaN;
    if (Number.isNaN(startsAt)) add('starts_at', "can't be blank");
    const endsAt = input.ends_at === null || input.ends_at === undefined ? null : Date.parse(String(input.ends_at));
    if (endsAt !== null && (Number.isNaN(endsAt) || endsAt <= startsAt)) add('ends_at', 'must be after starts_at');
    const usageLimit = input.usage_limit ?? null;
    if (usageLimit !== null && (typeof usageLimit !== 'number' || !Number.isInteger(usageLimit) || usageLimit <= 0)) add('usage_limit', 'must be greater than 0');
    if (input.once_per_customer !== undefined && typeof input.once_per_customer !== 'boolean') add('once_per_customer', 'is not a boolean');
    if (Object.keys(errors).length > 0) return unprocessable(errors);
    const id = nextId++;
    const at = new Date().toISOString();
    const rule = {
      id,
      value_type: input.value_type,
      value: formatValue(value),
      customer_selection: input.customer_selection,
      target_type: input.target_type,
      target_selection: input.target_selection,
      allocation_method: input.allocation_method,
      allocation_limit: null,
      once_per_customer: input.once_per_customer === true,
      usage_limit: usageLimit,
      starts_at: new Date(startsAt).toISOString(),
      ends_at: endsAt === null ? null : new Date(endsAt).toISOString(),
      created_at: at,
      updated_at: at,
      entitled_product_ids: [],
      entitled_variant_ids: [],
      entitled_collection_ids: [],
      entitled_country_ids: [],
      prerequisite_product_ids: [],
      prerequisite_variant_ids: [],
      prerequisite_collection_ids: [],
      customer_segment_prerequisite_ids: [],
      prerequisite_customer_ids: prerequisite,
      prerequisite_subtotal_range: null,
      prerequisite_quantity_range: null,
      prerequisite_shipping_price_range: null,
      prerequisite_to_entitlement_quantity_ratio: { prerequisite_quantity: null, entitled_quantity: null },
      prerequisite_to_entitlement_purchase: { prerequisite_amount: null },
      title: input.title,
      admin_graphql_api_id: `gid://shopify/PriceRule/${id}`,
    };
    priceRules.push(rule);
    return { status: 201, body: { price_rule: rule } };
  }

  function createDiscountCode(priceRuleId: number, json: unknown): Answer {
    if (!priceRules.some((r) => r.id === priceRuleId)) return notFound;
    const code = (json as { discount_code?: { code?: unknown } } | null)?.discount_code?.code;
    if (typeof code !== 'string' || code === '') return unprocessable({ code: ["can't be blank"] });
    if (code.length > 255) return unprocessable({ code: ['is too long (maximum is 255 characters)'] });
    if (discountCodes.some((d) => String(d.code).toLowerCase() === code.toLowerCase())) return unprocessable({ code: ['must be unique. Please try a different code.'] });
    const at = new Date().toISOString();
    const discountCode = { id: nextId++, price_rule_id: priceRuleId, code, usage_count: 0, created_at: at, updated_at: at };
    discountCodes.push(discountCode);
    return { status: 201, body: { discount_code: discountCode } };
  }

  function route(entry: ShopifyRequest): Answer {
    const match = /^\/admin\/api\/(\d{4}-\d{2}|unstable)\/(.+)$/.exec(entry.path);
    if (!match) return notFound;
    const version = match[1]!;
    const rest = match[2]!;
    const get = entry.method === 'GET';
    const post = entry.method === 'POST';
    let m: RegExpExecArray | null;
    if (get && rest === 'shop.json') {
      return { status: 200, body: { shop: { id: 548380009, name: 'Nudge Test Shop', email: 'owner@example.com', domain: 'shop.example.com', myshopify_domain: 'nudge-test.myshopify.com', currency: options.currency ?? 'USD', iana_timezone: 'America/New_York' } } };
    }
    if (get && rest === 'customers/search.json') {
      const query = entry.query.query ?? '';
      const email = /^email:"?([^"]*)"?$/.exec(query.trim())?.[1];
      const found = email === undefined ? [] : customers.filter((c) => c.email.toLowerCase() === email.toLowerCase());
      return { status: 200, body: { customers: found.map((c) => ({ id: c.id, email: c.email })) } };
    }
    if (get && rest === 'discount_codes/lookup.json') {
      const code = entry.query.code?.toLowerCase();
      const found = discountCodes.find((d) => String(d.code).toLowerCase() === code);
      if (!found) return notFound;
      const location = `${options.redirectOrigin ?? baseUrl}/admin/api/${version}/price_rules/${String(found.price_rule_id)}/discount_codes/${String(found.id)}.json`;
      return { status: 303, body: `<html><body>You are being <a href="${location}">redirected</a>.</body></html>`, headers: { location, 'content-type': 'text/html; charset=utf-8' } };
    }
    if (get && rest === 'price_rules.json') {
      const min = entry.query.starts_at_min ? Date.parse(entry.query.starts_at_min) : -Infinity;
      const max = entry.query.starts_at_max ? Date.parse(entry.query.starts_at_max) : Infinity;
      const limit = Math.min(Number(entry.query.limit ?? 50), 250);
      const found = priceRules.filter((r) => Date.parse(String(r.starts_at)) >= min && Date.parse(String(r.starts_at)) <= max).slice(0, limit);
      return { status: 200, body: { price_rules: found } };
    }
    if (post && rest === 'price_rules.json') return createPriceRule(entry.json);
    if (get && (m = /^price_rules\/(\d+)\.json$/.exec(rest))) {
      const rule = priceRules.find((r) => r.id === Number(m![1]));
      return rule ? { status: 200, body: { price_rule: rule } } : notFound;
    }
    if (post && (m = /^price_rules\/(\d+)\/discount_codes\.json$/.exec(rest))) return createDiscountCode(Number(m[1]), entry.json);
    if (get && (m = /^price_rules\/(\d+)\/discount_codes\/(\d+)\.json$/.exec(rest))) {
      const found = discountCodes.find((d) => d.price_rule_id === Number(m![1]) && d.id === Number(m![2]));
      return found ? { status: 200, body: { discount_code: found } } : notFound;
    }
    return notFound;
  }

  const server: Server = createServer((request, response) => {
    void (async () => {
      const raw = await readBody(request);
      const url = new URL(request.url ?? '/', 'http://fake-shopify');
      const header = (name: string) => {
        const value = request.headers[name];
        return Array.isArray(value) ? value[0] : value;
      };
      let json: unknown = null;
      try {
        json = raw === '' ? null : JSON.parse(raw);
      } catch {
        json = null;
      }
      const entry: ShopifyRequest = {
        method: request.method ?? '',
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        accessToken: header('x-shopify-access-token'),
        contentType: header('content-type'),
        json,
      };
      requests.push(entry);
      const answer = ({ status, body, headers }: Answer) => {
        response.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'x-shopify-shop-api-call-limit': '1/40', ...headers });
        response.end(typeof body === 'string' ? body : JSON.stringify(body));
      };

      const index = script.findIndex((s) => s.match === undefined || `${entry.method} ${entry.path}`.startsWith(s.match));
      const scripted = index >= 0 ? script.splice(index, 1)[0] : undefined;
      if (scripted && !scripted.lose) {
        if (scripted.hang) {
          hanging.add(response);
          return;
        }
        answer({ status: scripted.status ?? 500, body: scripted.body ?? {}, headers: scripted.headers });
        return;
      }

      if (entry.accessToken !== accessToken) {
        return answer({ status: 401, body: { errors: '[API] Invalid API key or access token (unrecognized login or wrong password)' } });
      }
      if (entry.method === 'POST' && (!entry.contentType?.startsWith('application/json') || json === null)) {
        return answer({ status: 400, body: { errors: { query: 'Required parameter missing or invalid' } } });
      }
      const result = route(entry);
      if (scripted?.lose) {
        hanging.add(response);
        return;
      }
      answer(result);
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  baseUrl = `http://127.0.0.1:${port}`;
  return {
    baseUrl,
    requests,
    priceRules,
    discountCodes,
    customers,
    script,
    addCustomer(email) {
      const id = nextId++;
      customers.push({ id, email });
      return id;
    },
    close: async () => {
      for (const response of hanging) response.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
