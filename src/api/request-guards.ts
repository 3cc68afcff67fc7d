import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../domain/errors.js';
import { grants, type Scope } from '../domain/scopes.js';
import { authenticateToken, type Principal } from '../engine/auth-service.js';
import type { Context } from '../engine/context.js';
import { authenticateSession, type DashboardAuth } from '../engine/dashboard-auth-service.js';
import * as guards from '../store/request-guard-repository.js';
import { RateCounter } from './rate-counter.js';
import { readSessionToken, setSessionCookie } from './session-cookie.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The scope a token needs; absent with `public: true`. */
    scope?: Scope;
    /** No token needed (health, docs, provider webhooks with their own signatures). */
    public?: boolean;
    /** A creating POST: honours Idempotency-Key. */
    idempotent?: boolean;
    /**
     * A dashboard route (the internal `/api/...`, not `/api/v1`): authenticated by the
     * signed-in session's cookie only, never by an API token, and checked against
     * cross-site request forgery. Sets `request.dashboard`.
     */
    session?: boolean;
    /** A public route a browser calls to change state (sign-in, sign-out): checked against CSRF like session routes. */
    csrf?: boolean;
  }
  interface FastifyRequest {
    principal?: Principal;
    idempotency?: { key: string };
    dashboard?: DashboardAuth;
  }
}

const safeMethods = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The header (and value) every state-changing dashboard request must carry. */
export const csrfHeader = { name: 'x-requested-with', value: 'nudge' } as const;

/**
 * Cross-site request forgery defences of dashboard requests that change state: the
 * `X-Requested-With: nudge` header, which a form on another site cannot send and a
 * script on another site can only send after a CORS preflight this server never
 * grants; and, when the browser says where the request comes from (Origin), that
 * origin must be this server's own (NUDGE_PUBLIC_URL, or the host the request was
 * sent to). SameSite=Lax on the cookie is a third layer.
 */
function checkCsrf(request: FastifyRequest, publicUrl: string): void {
  if (safeMethods.has(request.method)) return;
  const marker = request.headers[csrfHeader.name];
  if (marker !== csrfHeader.value) {
    throw new AppError('forbidden', 'Dashboard requests that change something must send the header X-Requested-With: nudge (protection against cross-site request forgery)');
  }
  const origin = request.headers.origin;
  if (typeof origin === 'string' && origin !== '') {
    const allowed = new Set([new URL(publicUrl).origin, `${request.protocol}://${request.host}`]);
    if (!allowed.has(origin)) throw new AppError('forbidden', `This request comes from another site (Origin ${origin.slice(0, 200)}) and is refused`);
  }
}

function presentedToken(request: FastifyRequest): string | null {
  const header = request.headers.authorization;
  if (typeof header === 'string' && header.length > 0) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) throw new AppError('unauthorized', 'Malformed Authorization header: use "Authorization: Bearer <token>"');
    return match[1]!;
  }
  const apiKey = request.headers['x-api-key'];
  if (typeof apiKey === 'string' && apiKey.length > 0) return apiKey.trim();
  return null;
}

interface WindowCounts {
  now: number;
  windowStart: number;
  windowMs: number;
  /** Requests in the current fixed window, this one included. */
  current: number;
  /** Requests in the window before it. */
  previous: number;
}

/**
 * Sliding-window estimate: the previous fixed window counts in proportion to how much
 * of it still overlaps the last `windowMs`. Two counters per token approximate a true
 * rolling window closely, without storing every request.
 */
export function slidingWindowCount({ now, windowStart, windowMs, current, previous }: WindowCounts): number {
  const overlap = 1 - (now - windowStart) / windowMs;
  return current + Math.floor(previous * overlap);
}

/**
 * Seconds until the next request would be allowed, if none is sent meanwhile. The end
 * of the current fixed window is not the answer: the previous window's share keeps
 * counting after it, so a client that waited only that long would be refused again.
 * - Room left in this window (current < limit): wait until the previous window's share
 *   has decayed enough, which happens before this window ends.
 * - This window is full: wait into the next one until this window's share has decayed.
 */
export function retryAfterSeconds(counts: WindowCounts & { limit: number }): number {
  const { now, windowStart, windowMs, current, previous, limit } = counts;
  let allowedAt: number;
  if (current < limit && previous > 0) {
    // Next request: (current + 1) + floor(previous * overlap) <= limit  ⇔  previous * overlap < limit - current.
    allowedAt = windowStart + windowMs * (1 - (limit - current) / previous);
  } else {
    // In the next window: 1 + floor(current * overlap') <= limit  ⇔  current * overlap' < limit.
    allowedAt = windowStart + windowMs + windowMs * (1 - limit / current);
  }
  // The inequalities are strict: one second past the boundary, never less than one.
  return Math.max(1, Math.floor((allowedAt - now) / 1000) + 1);
}

/**
 * What identifies a request's body for its Idempotency-Key: the parsed JSON, so the same
 * values with other whitespace or key spacing are the same request. A body nested too
 * deeply for JSON.stringify (thousands of levels) is identified by its raw bytes
 * instead: the route still refuses or takes it, and the key never turns it into a 500.
 */
function bodyIdentity(request: FastifyRequest): string {
  try {
    return JSON.stringify(request.body ?? null);
  } catch {
    return `raw:${createHash('sha256').update((request as { rawBody?: Buffer }).rawBody ?? Buffer.alloc(0)).digest('hex')}`;
  }
}

/** Authentication, scope check, rate limit and idempotency, as hooks on every route. */
export function registerRequestGuards(app: FastifyInstance, ctx: Context): void {
  const windowMs = ctx.config.rateLimitWindowSeconds * 1000;
  const idempotencyTtlMs = ctx.config.idempotencyTtlHours * 3_600_000;
  const counter = new RateCounter(ctx.database.db, () => ctx.clock.now());
  app.addHook('onClose', async () => counter.close());

  // Internal routes cannot be registered without saying how they authenticate: the
  // dashboard session, never a token (so a token leaked to a browser extension cannot
  // drive the dashboard's API, and the dashboard's cookie cannot drive the public one).
  app.addHook('onRoute', (route) => {
    const config = (route.config ?? {}) as { session?: boolean; public?: boolean; csrf?: boolean; scope?: string };
    if (config.session && (config.scope || config.public)) throw new Error(`${route.url}: a session route takes no token scope and is not public`);
    const internal = route.url.startsWith('/api/') && !route.url.startsWith('/api/v1/');
    if (internal && !config.session && !(config.public && config.csrf)) {
      throw new Error(`${route.url}: internal /api routes authenticate by the dashboard session (config.session), or are public with config.csrf (sign-in)`);
    }
  });

  // onRequest runs before the body is parsed: a bad token costs no parsing.
  app.addHook('onRequest', async (request, reply) => {
    const config = request.routeOptions.config;
    if (config.session || config.csrf) checkCsrf(request, ctx.config.publicUrl);
    if (config.public) return;
    if (config.session) {
      const token = readSessionToken(request);
      const auth = token === null ? null : await authenticateSession(ctx, token);
      if (!auth) throw new AppError('unauthorized', 'Sign in first: this dashboard route needs a signed-in session (POST /api/auth/login); API tokens are not accepted here');
      request.dashboard = auth;
      // A session whose expiry moved gets its cookie again, with the new lifetime.
      if (auth.refreshed) setSessionCookie(request, reply, token!, Math.max(1, Math.floor((auth.expiresAt - ctx.clock.now()) / 1000)));
      await applyRateLimit(request, reply, `user:${auth.userId}`, ctx.config.rateLimit);
      return;
    }
    if (request.routeOptions.url === undefined) {
      // An unknown route answers 404 whatever the token; a valid token still counts
      // against its limit and gets the headers, so probing paths is not free.
      const principal = await optionalPrincipal(request);
      if (principal) await applyRateLimit(request, reply, principal.tokenId, principal.rateLimit ?? ctx.config.rateLimit);
      return;
    }
    const token = presentedToken(request);
    if (token === null) throw new AppError('unauthorized', 'Missing API token: send "Authorization: Bearer <token>" or "X-API-Key: <token>"');
    const principal = await authenticateToken(ctx, token);
    if (!principal) throw new AppError('unauthorized', 'Invalid or revoked API token');
    request.principal = principal;
    await applyRateLimit(request, reply, principal.tokenId, principal.rateLimit ?? ctx.config.rateLimit);
    if (config.scope && !grants(principal.scopes, config.scope)) {
      throw new AppError('forbidden', `This token lacks the scope ${config.scope}`, { extra: { missing_scope: config.scope } });
    }
  });

  async function optionalPrincipal(request: FastifyRequest): Promise<Principal | null> {
    let token: string | null;
    try {
      token = presentedToken(request);
    } catch {
      return null;
    }
    return token === null ? null : authenticateToken(ctx, token);
  }

  /** The per-caller limit: `key` is a token's id, or `user:<id>` for a dashboard session (rate_limits.token_id holds either). */
  async function applyRateLimit(request: FastifyRequest, reply: FastifyReply, key: string, limit: number): Promise<void> {
    const now = ctx.clock.now();
    const windowStart = Math.floor(now / windowMs) * windowMs;
    const { current, previous } = await counter.count(key, windowStart, windowMs, limit);
    const used = slidingWindowCount({ now, windowStart, windowMs, current, previous });
    const remaining = Math.max(0, limit - used);
    void reply.header('X-RateLimit-Limit', String(limit));
    void reply.header('X-RateLimit-Remaining', String(remaining));
    if (used > limit) {
      const retryAfter = retryAfterSeconds({ now, windowStart, windowMs, current, previous, limit });
      request.log.info({ caller: key }, 'rate limited');
      throw new AppError('rate_limited', `Rate limit of ${limit} requests per ${ctx.config.rateLimitWindowSeconds} s exceeded; retry after ${retryAfter} s`, {
        headers: { 'Retry-After': String(retryAfter) },
      });
    }
  }

  // preHandler runs after validation: replays a finished request, reserves a new key.
  app.addHook('preHandler', async (request, reply) => {
    if (!request.routeOptions.config.idempotent || request.method !== 'POST' || !request.principal) return;
    const header = request.headers['idempotency-key'];
    if (header === undefined) return;
    const key = Array.isArray(header) ? header[0]! : header;
    if (key.length === 0 || key.length > 255) throw new AppError('bad_request', 'Idempotency-Key must be 1 to 255 characters');
    const path = request.url.split('?')[0] ?? request.url;
    const hash = createHash('sha256').update(`${request.method} ${path}\n${bodyIdentity(request)}`).digest('hex');
    const now = ctx.clock.now();
    const db = ctx.database.db;
    const principal = request.principal;
    const row = {
      token_id: principal.tokenId,
      key,
      workspace_id: principal.workspaceId,
      method: request.method,
      path,
      request_hash: hash,
      status_code: 0,
      response_body: '',
      created_at: now,
      expires_at: now + idempotencyTtlMs,
    };
    let reserved = await guards.reserveIdempotencyKey(db, row);
    let existing = reserved ? undefined : await guards.findIdempotencyKey(db, principal.tokenId, key);
    if (!reserved && (!existing || existing.expires_at <= now)) {
      // Expired (or released by a failed request meanwhile): forget it and treat this
      // request as new. Only an expired row is deleted, so a fresh reservation made by
      // a concurrent request survives, and then this one sees it below.
      await guards.releaseExpiredIdempotencyKey(db, principal.tokenId, key, now);
      reserved = await guards.reserveIdempotencyKey(db, row);
      existing = reserved ? undefined : await guards.findIdempotencyKey(db, principal.tokenId, key);
    }
    if (reserved) {
      request.idempotency = { key };
      return;
    }
    if (!existing) {
      throw new AppError('conflict', 'A request with this Idempotency-Key is in progress; retry shortly');
    }
    if (existing.request_hash !== hash) {
      throw new AppError('idempotency_conflict', 'Idempotency-Key was already used with a different request');
    }
    if (existing.status_code === 0) {
      throw new AppError('conflict', 'A request with this Idempotency-Key is still in progress; retry shortly');
    }
    void reply.header('Idempotent-Replayed', 'true');
    return reply.code(existing.status_code).type('application/json; charset=utf-8').send(existing.response_body);
  });

  app.addHook('onSend', async (request, reply, payload) => {
    const idem = request.idempotency;
    if (!idem || !request.principal) return payload;
    const db = ctx.database.db;
    if (reply.statusCode >= 500) {
      // A failure that may be transient must not be replayed: let the client retry.
      await guards.releaseIdempotencyKey(db, request.principal.tokenId, idem.key);
    } else {
      await guards.completeIdempotencyKey(db, request.principal.tokenId, idem.key, reply.statusCode, typeof payload === 'string' ? payload : String(payload ?? ''));
    }
    return payload;
  });
}
