import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../domain/errors.js';
import { grants, type Scope } from '../domain/scopes.js';
import { authenticateToken, type Principal } from '../engine/auth-service.js';
import type { Context } from '../engine/context.js';
import * as guards from '../store/request-guard-repository.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The scope a token needs; absent with `public: true`. */
    scope?: Scope;
    /** No token needed (health, docs, provider webhooks with their own signatures). */
    public?: boolean;
    /** A creating POST: honours Idempotency-Key. */
    idempotent?: boolean;
  }
  interface FastifyRequest {
    principal?: Principal;
    idempotency?: { key: string };
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

/** Authentication, scope check, rate limit and idempotency, as hooks on every route. */
export function registerRequestGuards(app: FastifyInstance, ctx: Context): void {
  const windowMs = ctx.config.rateLimitWindowSeconds * 1000;
  const idempotencyTtlMs = ctx.config.idempotencyTtlHours * 3_600_000;

  // onRequest runs before the body is parsed: a bad token costs no parsing.
  app.addHook('onRequest', async (request, reply) => {
    const config = request.routeOptions.config;
    if (config.public || request.routeOptions.url === undefined) return;
    const token = presentedToken(request);
    if (token === null) throw new AppError('unauthorized', 'Missing API token: send "Authorization: Bearer <token>" or "X-API-Key: <token>"');
    const principal = await authenticateToken(ctx, token);
    if (!principal) throw new AppError('unauthorized', 'Invalid or revoked API token');
    request.principal = principal;
    await applyRateLimit(request, reply, principal);
    if (config.scope && !grants(principal.scopes, config.scope)) {
      throw new AppError('forbidden', `This token lacks the scope ${config.scope}`, { extra: { missing_scope: config.scope } });
    }
  });

  async function applyRateLimit(request: FastifyRequest, reply: FastifyReply, principal: Principal): Promise<void> {
    const limit = principal.rateLimit ?? ctx.config.rateLimit;
    const now = ctx.clock.now();
    const windowStart = Math.floor(now / windowMs) * windowMs;
    const { current, previous } = await guards.countRequest(ctx.database.db, principal.tokenId, windowStart, windowStart - windowMs);
    // Sliding window: the previous window counts in proportion to how much of it still overlaps.
    const overlap = 1 - (now - windowStart) / windowMs;
    const used = current + Math.floor(previous * overlap);
    const remaining = Math.max(0, limit - used);
    void reply.header('X-RateLimit-Limit', String(limit));
    void reply.header('X-RateLimit-Remaining', String(remaining));
    if (used > limit) {
      const retryAfter = Math.max(1, Math.ceil((windowStart + windowMs - now) / 1000));
      void reply.header('Retry-After', String(retryAfter));
      request.log.info({ token: principal.tokenId }, 'rate limited');
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
    const hash = createHash('sha256').update(`${request.method} ${path}\n${JSON.stringify(request.body ?? null)}`).digest('hex');
    const now = ctx.clock.now();
    const db = ctx.database.db;
    const principal = request.principal;
    const reserved = await guards.reserveIdempotencyKey(db, {
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
    });
    if (reserved) {
      request.idempotency = { key };
      return;
    }
    const existing = await guards.findIdempotencyKey(db, principal.tokenId, key);
    if (!existing || existing.expires_at < now) {
      // Expired: forget it and treat this request as new.
      await guards.releaseIdempotencyKey(db, principal.tokenId, key);
      throw new AppError('conflict', 'Idempotency-Key expired while this request arrived; retry it');
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
