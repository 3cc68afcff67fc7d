import { Type } from 'typebox';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildApp, type App } from '../../src/api/app.js';
import { AppError } from '../../src/domain/errors.js';
import { newId } from '../../src/domain/ids.js';
import { createToken } from '../../src/engine/auth-service.js';
import { createTestApp, ManualClock, type TestApp } from '../support/app.js';
import { dialects } from '../support/databases.js';

/**
 * The behaviour every route shares (body parsing, validation, auth, rate limits,
 * idempotency, error bodies), proved on test-only routes so it does not depend on
 * any one resource's routes.
 */

interface Calls {
  echo: number;
  flaky: number;
}

function addTestRoutes(app: App, calls: Calls): void {
  const EchoBody = Type.Object(
    { name: Type.String({ minLength: 1, maxLength: 200 }), age: Type.Optional(Type.Integer({ minimum: 0 })) },
    { additionalProperties: false },
  );
  app.post(
    '/api/v1/test-echo',
    { config: { scope: 'contacts:write', idempotent: true }, schema: { body: EchoBody } },
    async (request, reply) => {
      calls.echo += 1;
      return reply.code(201).send({ id: newId(), name: request.body.name, age: request.body.age ?? null, call: calls.echo });
    },
  );
  // An action without a body schema: an empty JSON body is fine here.
  app.post('/api/v1/test-action', { config: { scope: 'contacts:write' } }, async (request) => ({ ok: true, body: request.body ?? null }));
  app.get(
    '/api/v1/test-list',
    { config: { scope: 'contacts:read' }, schema: { querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })) }) } },
    async (request) => ({ limit: request.query.limit ?? null }),
  );
  app.get('/api/v1/test-boom', { config: { scope: 'contacts:read' } }, async () => {
    throw new Error('connection to db-primary.internal:5432 failed for user nudge_admin');
  });
  app.get('/api/v1/test-syntax', { config: { scope: 'contacts:read' } }, async () => JSON.parse('{"stored": broken') as unknown);
  app.post('/api/v1/test-rule', { config: { scope: 'contacts:write', idempotent: true } }, async () => {
    throw new AppError('business_rule', 'The contact has opted out');
  });
  // Fails with a plain error on its first call and succeeds afterwards: a transient failure.
  app.post('/api/v1/test-flaky', { config: { scope: 'contacts:write', idempotent: true } }, async (_request, reply) => {
    calls.flaky += 1;
    if (calls.flaky === 1) throw new Error('deadlock detected');
    return reply.code(201).send({ call: calls.flaky });
  });
}

function expectErrorBody(body: Record<string, unknown>, code: string): void {
  expect(body.code).toBe(code);
  expect(typeof body.error).toBe('string');
  expect((body.error as string).length).toBeGreaterThan(0);
  expect(body.message).toBe(body.error);
}

describe.each(dialects)('cross-cutting API behaviour on %s', (dialect) => {
  let t: TestApp;
  const calls: Calls = { echo: 0, flaky: 0 };
  // A manual clock keeps every rate-limit window still for the whole suite.
  const clock = new ManualClock(Date.UTC(2026, 0, 1, 12, 0, 10));
  const json = { 'content-type': 'application/json' };

  beforeAll(async () => {
    t = await createTestApp(dialect, { clock, env: { NUDGE_RATE_LIMIT: '2' }, beforeReady: (app) => addTestRoutes(app, calls) });
  });
  afterAll(async () => t.close());
  beforeEach(() => {
    calls.echo = 0;
    calls.flaky = 0;
  });

  function echo(payload: string | object, headers: Record<string, string> = {}) {
    return t.app.inject({
      method: 'POST',
      url: '/api/v1/test-echo',
      headers: { ...t.auth, ...json, ...headers },
      payload: typeof payload === 'string' ? payload : JSON.stringify(payload),
    });
  }

  describe('request bodies', () => {
    it('creates with a valid body', async () => {
      const res = await echo({ name: 'Ada', age: 36 });
      expect(res.statusCode).toBe(201);
      expect(res.json()).toMatchObject({ name: 'Ada', age: 36, call: 1 });
    });

    it('answers 400 invalid_json for malformed JSON and never runs the handler', async () => {
      for (const payload of ['{"name": "Ada"', '{name: "Ada"}', 'nul', '{"name": "Ada"}}']) {
        const res = await echo(payload);
        expect(res.statusCode, payload).toBe(400);
        expectErrorBody(res.json(), 'invalid_json');
      }
      expect(calls.echo).toBe(0);
    });

    it('refuses keys that could poison prototypes', async () => {
      for (const payload of ['{"__proto__": {"admin": true}}', '{"a": [{"constructor": {"prototype": {"admin": true}}}]}', '{"\\u005f_proto__": {}}']) {
        const res = await t.app.inject({ method: 'POST', url: '/api/v1/test-action', headers: { ...t.auth, ...json }, payload });
        expect(res.statusCode, payload).toBe(400);
        expectErrorBody(res.json(), 'invalid_json');
      }
      const fine = await t.app.inject({ method: 'POST', url: '/api/v1/test-action', headers: { ...t.auth, ...json }, payload: '{"constructor": "Ada"}' });
      expect(fine.statusCode).toBe(200);
    });

    it('answers 415 for a body that is not JSON', async () => {
      for (const contentType of ['text/plain', 'application/x-www-form-urlencoded', 'application/xml']) {
        const res = await echo('name=Ada', { 'content-type': contentType });
        expect(res.statusCode, contentType).toBe(415);
        expectErrorBody(res.json(), 'unsupported_media_type');
        expect(res.json().message).toContain('application/json');
      }
      expect(calls.echo).toBe(0);
    });

    it('answers 415 for a body without a content type', async () => {
      const res = await t.app.inject({ method: 'POST', url: '/api/v1/test-echo', headers: t.auth, payload: Buffer.from('{"name":"Ada"}') });
      expect(res.statusCode).toBe(415);
      expectErrorBody(res.json(), 'unsupported_media_type');
      expect(calls.echo).toBe(0);
    });

    it('refuses an empty JSON body where a body is required, naming what is missing', async () => {
      const res = await echo('');
      expect(res.statusCode).toBe(422);
      const body = res.json();
      expectErrorBody(body, 'validation_failed');
      expect(body.errors.body?.[0]).toMatch(/body/);
      expect(calls.echo).toBe(0);
    });

    it('accepts an empty JSON body on an action that takes none', async () => {
      const res = await t.app.inject({ method: 'POST', url: '/api/v1/test-action', headers: { ...t.auth, ...json }, payload: '' });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({ ok: true, body: null });
    });

    it('answers 413 for a body over NUDGE_BODY_LIMIT_BYTES', async () => {
      const size = t.ctx.config.bodyLimitBytes;
      const res = await echo({ name: 'x'.repeat(size) });
      expect(res.statusCode).toBe(413);
      expectErrorBody(res.json(), 'payload_too_large');
      expect(res.json().message).toContain(String(size));
      expect(calls.echo).toBe(0);
    });
  });

  describe('validation', () => {
    it('names the field of a wrong type and does not coerce it', async () => {
      for (const name of [123, true, ['Ada'], { first: 'Ada' }, null]) {
        const res = await echo({ name });
        expect(res.statusCode, JSON.stringify(name)).toBe(422);
        const body = res.json();
        expectErrorBody(body, 'validation_failed');
        expect(body.errors.name).toEqual(['name must be string']);
        expect(body.message).toBe('name must be string');
      }
      const res = await echo({ name: 'Ada', age: '36' });
      expect(res.statusCode).toBe(422);
      expect(res.json().errors.age).toEqual(['age must be integer']);
      expect(calls.echo).toBe(0);
    });

    it('names a missing field', async () => {
      const res = await echo({ age: 3 });
      expect(res.statusCode).toBe(422);
      const body = res.json();
      expectErrorBody(body, 'validation_failed');
      expect(body.errors).toEqual({ name: ['name is required'] });
      expect(calls.echo).toBe(0);
    });

    it('names an unknown field', async () => {
      const res = await echo({ name: 'Ada', nmae: 'typo' });
      expect(res.statusCode).toBe(422);
      expect(res.json().errors).toEqual({ nmae: ['nmae is not a known field'] });
    });

    it('reports every problem at once', async () => {
      const res = await echo({ name: '', age: -1 });
      expect(res.statusCode).toBe(422);
      expect(Object.keys(res.json().errors).sort()).toEqual(['age', 'name']);
    });

    it('refuses a string of a million characters, naming the field and its limit', async () => {
      const res = await echo({ name: 'x'.repeat(1_000_000) });
      expect(res.statusCode).toBe(422);
      const body = res.json();
      expectErrorBody(body, 'validation_failed');
      expect(body.errors.name).toEqual(['name must be at most 200 characters']);
      expect(res.body.length).toBeLessThan(1000);
      expect(calls.echo).toBe(0);
    });

    it('coerces query strings but names a bad query parameter', async () => {
      const good = await t.app.inject({ method: 'GET', url: '/api/v1/test-list?limit=5', headers: t.auth });
      expect(good.statusCode).toBe(200);
      expect(good.json()).toEqual({ limit: 5 });
      const bad = await t.app.inject({ method: 'GET', url: '/api/v1/test-list?limit=abc', headers: t.auth });
      expect(bad.statusCode).toBe(422);
      expectErrorBody(bad.json(), 'validation_failed');
      expect(bad.json().errors.limit).toEqual(['limit must be integer']);
    });
  });

  describe('routes and errors', () => {
    it('answers 404 route_not_found for an unknown route, with or without a token', async () => {
      for (const headers of [t.auth, {}]) {
        const res = await t.app.inject({ method: 'POST', url: '/api/v1/no-such-action?x=1', headers: { ...headers, ...json }, payload: '{}' });
        expect(res.statusCode).toBe(404);
        expectErrorBody(res.json(), 'route_not_found');
        expect(res.json().message).toBe('No route for POST /api/v1/no-such-action');
      }
    });

    it('answers 403 naming the missing scope', async () => {
      const reader = await createToken(t.ctx, { workspaceId: t.workspaceId, name: 'reader', scopes: ['contacts:read'], rateLimit: 1000 });
      const res = await echo({ name: 'Ada' }, { authorization: `Bearer ${reader.token}` });
      expect(res.statusCode).toBe(403);
      const body = res.json();
      expectErrorBody(body, 'forbidden');
      expect(body.message).toContain('contacts:write');
      expect(body.missing_scope).toBe('contacts:write');
      expect(calls.echo).toBe(0);
      // resource:* grants every action on the resource.
      const writer = await createToken(t.ctx, { workspaceId: t.workspaceId, name: 'writer', scopes: ['contacts:*'], rateLimit: 1000 });
      expect((await echo({ name: 'Ada' }, { authorization: `Bearer ${writer.token}` })).statusCode).toBe(201);
    });

    it('hides the message of an unexpected error behind a 500 internal', async () => {
      const res = await t.app.inject({ method: 'GET', url: '/api/v1/test-boom', headers: { ...t.auth, 'x-request-id': 'req-boom-1' } });
      expect(res.statusCode).toBe(500);
      expect(res.json()).toEqual({ error: 'Internal server error', code: 'internal', message: 'Internal server error' });
      expect(res.body).not.toContain('db-primary');
      expect(res.headers['x-request-id']).toBe('req-boom-1');
    });

    it('treats a SyntaxError thrown by a handler as a 500, not as the client sending bad JSON', async () => {
      const res = await t.app.inject({ method: 'GET', url: '/api/v1/test-syntax', headers: t.auth });
      expect(res.statusCode).toBe(500);
      expect(res.json().code).toBe('internal');
    });

    it('shows the message of a business-rule error', async () => {
      const res = await t.app.inject({ method: 'POST', url: '/api/v1/test-rule', headers: { ...t.auth, ...json }, payload: '{}' });
      expect(res.statusCode).toBe(422);
      expectErrorBody(res.json(), 'business_rule');
      expect(res.json().message).toBe('The contact has opted out');
    });
  });

  describe('rate limits', () => {
    it('counts per token, sends the headers on every response and answers 429 with Retry-After', async () => {
      const limited = await createToken(t.ctx, { workspaceId: t.workspaceId, name: 'limited', rateLimit: 3 });
      const headers = { authorization: `Bearer ${limited.token}` };
      const remaining: string[] = [];
      for (let i = 0; i < 3; i += 1) {
        const res = await t.app.inject({ method: 'GET', url: '/api/v1/me', headers });
        expect(res.statusCode).toBe(200);
        expect(res.headers['x-ratelimit-limit']).toBe('3');
        remaining.push(String(res.headers['x-ratelimit-remaining']));
      }
      expect(remaining).toEqual(['2', '1', '0']);

      const over = await t.app.inject({ method: 'GET', url: '/api/v1/me', headers });
      expect(over.statusCode).toBe(429);
      expectErrorBody(over.json(), 'rate_limited');
      expect(over.headers['x-ratelimit-limit']).toBe('3');
      expect(over.headers['x-ratelimit-remaining']).toBe('0');
      const retryAfter = Number(over.headers['retry-after']);
      expect(Number.isInteger(retryAfter)).toBe(true);
      expect(retryAfter).toBeGreaterThan(0);
      expect(retryAfter).toBeLessThanOrEqual(t.ctx.config.rateLimitWindowSeconds * 2);

      // Another token of the same workspace is unaffected.
      const other = await t.app.inject({ method: 'GET', url: '/api/v1/me', headers: t.auth });
      expect(other.statusCode).toBe(200);
      expect(other.headers['x-ratelimit-limit']).toBe('1000000');

      // Once Retry-After has passed, the token may call again.
      clock.advance(retryAfter * 1000);
      const later = await t.app.inject({ method: 'GET', url: '/api/v1/me', headers });
      expect(later.statusCode).toBe(200);
      clock.advance(2 * t.ctx.config.rateLimitWindowSeconds * 1000);
      const fresh = await t.app.inject({ method: 'GET', url: '/api/v1/me', headers });
      expect(fresh.headers['x-ratelimit-remaining']).toBe('2');
    });

    it('shares a token\u2019s limit between API processes on one database', async () => {
      // A second app on the same database stands for a second `nudge api` process.
      const second = await buildApp(t.ctx);
      await second.ready();
      try {
        const shared = await createToken(t.ctx, { workspaceId: t.workspaceId, name: 'shared', rateLimit: 10 });
        const headers = { authorization: `Bearer ${shared.token}` };
        const statuses: number[] = [];
        for (let i = 0; i < 12; i += 1) statuses.push((await (i % 2 === 0 ? t.app : second).inject({ method: 'GET', url: '/api/v1/me', headers })).statusCode);
        expect(statuses).toEqual([200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 429, 429]);
      } finally {
        await second.close();
      }
    });

    it('applies NUDGE_RATE_LIMIT to tokens without a limit of their own, on error responses too', async () => {
      const plain = await createToken(t.ctx, { workspaceId: t.workspaceId, name: 'plain' });
      const headers = { authorization: `Bearer ${plain.token}`, ...json };
      const first = await t.app.inject({ method: 'POST', url: '/api/v1/test-echo', headers, payload: '{"name": 1}' });
      expect(first.statusCode).toBe(422);
      expect(first.headers['x-ratelimit-limit']).toBe('2');
      expect(first.headers['x-ratelimit-remaining']).toBe('1');
      // An unknown route answers 404 but still counts for a valid token.
      const second = await t.app.inject({ method: 'GET', url: '/api/v1/nothing-here', headers });
      expect(second.statusCode).toBe(404);
      expect(second.headers['x-ratelimit-remaining']).toBe('0');
      const third = await t.app.inject({ method: 'GET', url: '/api/v1/me', headers });
      expect(third.statusCode).toBe(429);
      expect(third.headers['x-ratelimit-limit']).toBe('2');
      expect(third.headers['retry-after']).toBeTruthy();
      const fourth = await t.app.inject({ method: 'GET', url: '/api/v1/nothing-here', headers });
      expect(fourth.statusCode).toBe(429);
      expect(fourth.headers['retry-after']).toBeTruthy();
    });
  });

  describe('Idempotency-Key', () => {
    it('replays the first response for the same key and body without running the handler again', async () => {
      const key = `key-${newId()}`;
      const first = await echo({ name: 'Ada' }, { 'idempotency-key': key });
      expect(first.statusCode).toBe(201);
      expect(first.headers['idempotent-replayed']).toBeUndefined();
      const second = await echo({ name: 'Ada' }, { 'idempotency-key': key });
      expect(second.statusCode).toBe(201);
      expect(second.headers['idempotent-replayed']).toBe('true');
      expect(second.headers['content-type']).toMatch(/^application\/json/);
      expect(second.json()).toEqual(first.json());
      expect(calls.echo).toBe(1);
      // Without a key every request runs.
      const third = await echo({ name: 'Ada' });
      expect(third.json().id).not.toBe(first.json().id);
      expect(calls.echo).toBe(2);
    });

    it('answers 409 idempotency_conflict for the same key with another body', async () => {
      const key = `key-${newId()}`;
      expect((await echo({ name: 'Ada' }, { 'idempotency-key': key })).statusCode).toBe(201);
      const res = await echo({ name: 'Grace' }, { 'idempotency-key': key });
      expect(res.statusCode).toBe(409);
      expectErrorBody(res.json(), 'idempotency_conflict');
      expect(calls.echo).toBe(1);
    });

    it('keeps keys per token', async () => {
      const key = `key-${newId()}`;
      const mine = await echo({ name: 'Ada' }, { 'idempotency-key': key });
      const theirs = await echo({ name: 'Ada' }, { 'idempotency-key': key, authorization: `Bearer ${t.other.token}` });
      expect(theirs.statusCode).toBe(201);
      expect(theirs.headers['idempotent-replayed']).toBeUndefined();
      expect(theirs.json().id).not.toBe(mine.json().id);
      expect(calls.echo).toBe(2);
    });

    it('does not spend a key on a request that failed validation', async () => {
      const key = `key-${newId()}`;
      expect((await echo({ name: 42 }, { 'idempotency-key': key })).statusCode).toBe(422);
      const res = await echo({ name: 'Ada' }, { 'idempotency-key': key });
      expect(res.statusCode).toBe(201);
      expect(res.headers['idempotent-replayed']).toBeUndefined();
    });

    it('replays a refusal by a business rule', async () => {
      const key = `key-${newId()}`;
      const send = () => t.app.inject({ method: 'POST', url: '/api/v1/test-rule', headers: { ...t.auth, ...json, 'idempotency-key': key }, payload: '{}' });
      expect((await send()).statusCode).toBe(422);
      const again = await send();
      expect(again.statusCode).toBe(422);
      expect(again.headers['idempotent-replayed']).toBe('true');
      expect(again.json().code).toBe('business_rule');
    });

    it('lets the client retry after a 500 with the same key', async () => {
      const key = `key-${newId()}`;
      const send = () => t.app.inject({ method: 'POST', url: '/api/v1/test-flaky', headers: { ...t.auth, ...json, 'idempotency-key': key }, payload: '{}' });
      expect((await send()).statusCode).toBe(500);
      const retry = await send();
      expect(retry.statusCode).toBe(201);
      expect(retry.json()).toEqual({ call: 2 });
      const replay = await send();
      expect(replay.headers['idempotent-replayed']).toBe('true');
      expect(replay.json()).toEqual({ call: 2 });
      expect(calls.flaky).toBe(2);
    });

    it('forgets a key after NUDGE_IDEMPOTENCY_TTL_HOURS', async () => {
      const key = `key-${newId()}`;
      const first = await echo({ name: 'Ada' }, { 'idempotency-key': key });
      clock.advance(t.ctx.config.idempotencyTtlHours * 3_600_000 + 1000);
      const later = await echo({ name: 'Grace' }, { 'idempotency-key': key });
      expect(later.statusCode).toBe(201);
      expect(later.headers['idempotent-replayed']).toBeUndefined();
      expect(later.json().id).not.toBe(first.json().id);
      expect(calls.echo).toBe(2);
    });

    it('refuses an over-long key with 400', async () => {
      const res = await echo({ name: 'Ada' }, { 'idempotency-key': 'k'.repeat(256) });
      expect(res.statusCode).toBe(400);
      expectErrorBody(res.json(), 'bad_request');
      expect(res.json().message).toContain('Idempotency-Key');
      expect(calls.echo).toBe(0);
    });
  });
});
