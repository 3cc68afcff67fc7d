import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { dialects } from '../support/databases.js';

/** Query numbers that coerce to Infinity (found by test/reliability/hostile.test.ts). */
describe.each(dialects)('numbers in query strings on %s', (dialect) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(dialect);
  });
  afterAll(async () => t.close());

  it('answers 422 naming the parameter to a number too large for a double, never a 500', async () => {
    for (const path of ['/api/v1/sequences', '/api/v1/flows', '/api/v1/sessions', '/api/v1/messages', '/api/v1/contacts']) {
      for (const value of ['1e309', 'Infinity', '-Infinity']) {
        const res = await t.app.inject({ method: 'GET', url: `${path}?limit=${value}`, headers: t.auth });
        expect({ path, value, status: res.statusCode }).toEqual({ path, value, status: 422 });
        expect(res.json().errors.limit).toEqual(['limit must be a finite number']);
      }
    }
  });

  it('still coerces an ordinary number, written in any notation', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/api/v1/sequences?limit=1e1', headers: t.auth });
    expect(res.statusCode).toBe(200);
  });
});
