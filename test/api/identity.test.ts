import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createToken, revokeToken } from '../../src/engine/auth-service.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { dialects } from '../support/databases.js';

describe.each(dialects)('identity and auth on %s', (dialect) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(dialect);
  });
  afterAll(async () => t.close());

  it('returns the user and tenant of the token', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/api/v1/me', headers: t.auth });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.tenant).toEqual({ id: t.workspaceId, name: 'Acme' });
    expect(body).toHaveProperty('id');
    expect(res.headers['x-ratelimit-limit']).toBe('1000000');
    expect(res.headers['x-request-id']).toBeTruthy();
  });

  it('accepts X-API-Key as well as Bearer', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/api/v1/me', headers: { 'x-api-key': t.token } });
    expect(res.statusCode).toBe(200);
  });

  it('answers 401 with the error body for a missing, malformed or unknown token', async () => {
    for (const headers of [{}, { authorization: 'Token abc' }, { authorization: `Bearer nudge_${'x'.repeat(43)}` }]) {
      const res = await t.app.inject({ method: 'GET', url: '/api/v1/me', headers });
      expect(res.statusCode).toBe(401);
      const body = res.json();
      expect(body.code).toBe('unauthorized');
      expect(body.error).toBe(body.message);
    }
  });

  it('answers 401 for a revoked token', async () => {
    const created = await createToken(t.ctx, { workspaceId: t.workspaceId, name: 'short-lived' });
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/me', headers: { authorization: `Bearer ${created.token}` } })).statusCode).toBe(200);
    await revokeToken(t.ctx, created.id);
    const res = await t.app.inject({ method: 'GET', url: '/api/v1/me', headers: { authorization: `Bearer ${created.token}` } });
    expect(res.statusCode).toBe(401);
  });

  it('answers 404 with the error body for an unknown route', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/api/v1/nope', headers: t.auth });
    expect(res.statusCode).toBe(404);
    expect(res.json().code).toBe('route_not_found');
  });

  it('serves the OpenAPI document and the docs page without a token', async () => {
    const json = await t.app.inject({ method: 'GET', url: '/api/v1/openapi.json' });
    expect(json.statusCode).toBe(200);
    expect(json.json().openapi).toBe('3.1.0');
    const yaml = await t.app.inject({ method: 'GET', url: '/api/v1/openapi.yaml' });
    expect(yaml.body).toContain('openapi: 3.1.0');
    const docs = await t.app.inject({ method: 'GET', url: '/docs/' });
    expect(docs.statusCode).toBe(200);
    expect(docs.body).toContain('<html');
  });
});
