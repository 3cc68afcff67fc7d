import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { dialects } from '../support/databases.js';

/** Inputs that once answered 500, each found by test/reliability/hostile.test.ts. */
describe.each(dialects)('hostile inputs found by the reliability suite, on %s', (dialect) => {
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

  it('refuses a NUL character in the URL or the body with a 4xx, never a 500 from the database', async () => {
    for (const url of ['/api/v1/discounts/%00', '/api/v1/sequences/%00', '/api/v1/contacts?cursor=a%00b', '/api/v1/subscribers/a%00@example.com']) {
      const res = await t.app.inject({ method: 'GET', url, headers: t.auth });
      expect({ url, status: res.statusCode, code: res.json().code }).toEqual({ url, status: 400, code: 'bad_request' });
    }
    const before = await t.ctx.database.db.selectFrom('contacts').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    for (const payload of ['{"phone":"+14155550100","name":"A\\u0000B"}', '{"phone":"+14155550100","metadata":{"k\\u0000":"v"}}', '{"phone":"+14155550100","tags":["a","\\u0000"]}']) {
      const res = await t.app.inject({ method: 'POST', url: '/api/v1/actions/create-contact', headers: { ...t.auth, 'content-type': 'application/json' }, payload });
      expect({ payload, status: res.statusCode, code: res.json().code }).toEqual({ payload, status: 400, code: 'invalid_json' });
    }
    const after = await t.ctx.database.db.selectFrom('contacts').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    expect(Number(after.n)).toBe(Number(before.n));
    // An escaped backslash followed by "u0000" is no NUL.
    const fine = await t.app.inject({ method: 'POST', url: '/api/v1/actions/create-contact', headers: { ...t.auth, 'content-type': 'application/json' }, payload: '{"phone":"+14155550177","name":"A\\\\u0000B"}' });
    expect(fine.statusCode).toBe(201);
  });

  it('answers 422 naming the field to a body number too large for a double, and writes nothing', async () => {
    const count = async () => Number((await t.ctx.database.db.selectFrom('contacts').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
    const before = await count();
    const cases: Array<[string, string]> = [
      ['{"phone":"+14155550180","metadata":{"score":1e999}}', 'metadata.score'],
      ['{"phone":"+14155550180","metadata":{"scores":[1,2,-1E+400]}}', 'metadata.scores.2'],
      [`{"phone":"+14155550180","metadata":{"big":${'9'.repeat(400)}}}`, 'metadata.big'],
    ];
    for (const [payload, field] of cases) {
      const res = await t.app.inject({ method: 'POST', url: '/api/v1/actions/create-contact', headers: { ...t.auth, 'content-type': 'application/json' }, payload });
      expect({ field, status: res.statusCode, code: res.json().code }).toEqual({ field, status: 422, code: 'validation_failed' });
      expect(res.json().errors[field]).toEqual([`${field} must be a finite number`]);
    }
    const limit = await t.app.inject({ method: 'POST', url: '/api/v1/sequences/00000000-0000-7000-8000-000000000000/execute', headers: { ...t.auth, 'content-type': 'application/json' }, payload: '1e999' });
    expect(limit.statusCode).toBe(422);
    expect(limit.json().errors.body).toEqual(['body must be a finite number']);
    expect(await count()).toBe(before);
    // Large but finite numbers, and the same text inside strings, are ordinary values.
    const fine = await t.app.inject({ method: 'POST', url: '/api/v1/actions/create-contact', headers: { ...t.auth, 'content-type': 'application/json' }, payload: '{"phone":"+14155550181","name":"1e999","metadata":{"score":1e300}}' });
    expect(fine.statusCode).toBe(201);
  });

  it('still coerces an ordinary number, written in any notation', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/api/v1/sequences?limit=1e1', headers: t.auth });
    expect(res.statusCode).toBe(200);
  });

  it('answers a URL the router refuses with the error body every refusal has', async () => {
    for (const url of ['/api/v1/sequences/%ED%A0%80', '/api/v1/sequences/%', `/api/v1/sequences/${'x'.repeat(200)}`, `/unsubscribe/${'A'.repeat(1001)}`]) {
      const res = await t.app.inject({ method: 'GET', url, headers: t.auth });
      expect({ url, status: res.statusCode }).toEqual({ url, status: 400 });
      const body = res.json();
      expect(body.code).toBe('bad_request');
      expect(body.error).toBe(body.message);
      expect(res.body).not.toContain('FST_');
      expect(res.headers['x-request-id']).toBeTruthy();
    }
  });

  it('answers a body nested thousands of levels deep with an Idempotency-Key like one without', async () => {
    const deep = `${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}`;
    for (const url of ['/api/v1/subscribers', '/api/v1/actions/create-contact', '/api/v1/sequences']) {
      const plain = await t.app.inject({ method: 'POST', url, headers: { ...t.auth, 'content-type': 'application/json' }, payload: deep });
      const keyed = await t.app.inject({ method: 'POST', url, headers: { ...t.auth, 'content-type': 'application/json', 'idempotency-key': `deep-${url}` }, payload: deep });
      expect({ url, status: keyed.statusCode }).toEqual({ url, status: plain.statusCode });
      expect(keyed.statusCode).toBeLessThan(500);
    }
  });
});
