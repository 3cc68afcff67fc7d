import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { dialects } from '../support/databases.js';
import { nested } from '../support/hostile.js';

/**
 * Bad input to the engine's routes: always a 4xx with the error body naming the field, never a 500, nothing written.
 * Every operation of the OpenAPI document gets generated hostile input in test/reliability/hostile.test.ts.
 */
describe.each(dialects)('hostile input to engine routes on %s', (dialect) => {
  let t: TestApp;
  let sequenceId: string;
  beforeAll(async () => {
    t = await createTestApp(dialect);
    const created = await t.app.inject({ method: 'POST', url: '/api/v1/sequences', headers: t.auth, payload: { name: 'Target', steps: [{ type: 'sms', text: 'a' }] } });
    sequenceId = created.json().sequence.id;
    await t.app.inject({ method: 'POST', url: `/api/v1/sequences/${sequenceId}/publish`, headers: t.auth });
  });
  afterAll(async () => t.close());

  const counts = async () => {
    const db = t.ctx.database.db;
    const n = async (table: 'definitions' | 'sessions' | 'contacts' | 'messages' | 'definition_versions') =>
      Number((await db.selectFrom(table).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
    return { definitions: await n('definitions'), versions: await n('definition_versions'), sessions: await n('sessions'), contacts: await n('contacts'), messages: await n('messages') };
  };

  it('refuses each bad request with a clear 4xx and writes nothing', async () => {
    const before = await counts();
    const huge = 'x'.repeat(1_000_000);
    const cases: Array<{ url: string; method?: 'POST' | 'PUT'; payload: unknown; field?: string; raw?: string; contentType?: string }> = [
      { url: '/api/v1/actions/trigger-sequence', payload: { sequence_id: 42, phone: '+14155550100' }, field: 'sequence_id' },
      { url: '/api/v1/actions/trigger-sequence', payload: { phone: '+14155550100' }, field: 'sequence_id' },
      { url: '/api/v1/actions/trigger-sequence', payload: { sequence_id: sequenceId, phone: '+14155550100', context: ['not', 'an', 'object'] }, field: 'context' },
      { url: '/api/v1/actions/trigger-sequence', payload: { sequence_id: sequenceId, phone: 'call me maybe' }, field: 'phone' },
      { url: '/api/v1/actions/trigger-sequence', payload: { sequence_id: sequenceId, phone: huge }, field: 'phone' },
      { url: '/api/v1/actions/trigger-sequence', payload: { sequence_id: sequenceId, phone: '+14155550100', context: { blob: 'y'.repeat(40_000) } }, field: 'context' },
      { url: '/api/v1/actions/trigger-sequence', payload: { sequence_id: sequenceId, phone: '+14155550100', context: nested(2000) } },
      { url: '/api/v1/actions/trigger-sequence', payload: null, raw: '{"sequence_id": "', contentType: 'application/json' },
      { url: '/api/v1/actions/trigger-sequence', payload: null, raw: 'sequence_id=1', contentType: 'application/x-www-form-urlencoded' },
      { url: '/api/v1/sequences', payload: { name: huge, steps: [] }, field: 'name' },
      { url: '/api/v1/sequences', payload: { name: 'x', steps: 'not a list' }, field: 'steps' },
      { url: '/api/v1/sequences', payload: { name: 'x', steps: [{ type: 'sms', text: huge }] } },
      { url: '/api/v1/sequences', payload: { name: 'x', graph: nested(3000) } },
      { url: '/api/v1/sequences', payload: { name: 'x', graph: { nodes: Array.from({ length: 2000 }, (_, i) => ({ id: `n${i}`, type: 'exit' })), edges: [] } } },
      { url: '/api/v1/sequences', payload: { name: 'x', steps: [{ type: 'sms', text: 'a', delay: { days: -1 } }] } },
      { url: '/api/v1/sequences', payload: { name: 'x', settings: { session_ttl_minutes: 'soon' } }, field: 'settings.session_ttl_minutes' },
      { url: `/api/v1/sequences/${sequenceId}`, method: 'PUT', payload: { steps: [{ type: 'teleport' }] } },
      { url: `/api/v1/sequences/${sequenceId}`, method: 'PUT', payload: { name: 7 }, field: 'name' },
      { url: '/api/v1/sandbox/inbound', payload: { channel: 'fax', phone: '+14155550100', text: 'hi' }, field: 'channel' },
      { url: '/api/v1/sandbox/inbound', payload: { channel: 'sms', phone: '+14155550100' } },
      { url: '/api/v1/sessions/not-an-id/stop', payload: {} },
    ];
    for (const c of cases) {
      const res = c.raw
        ? await t.app.inject({ method: c.method ?? 'POST', url: c.url, headers: { ...t.auth, 'content-type': c.contentType! }, payload: c.raw })
        : await t.app.inject({ method: c.method ?? 'POST', url: c.url, headers: t.auth, payload: c.payload as object });
      const label = `${c.method ?? 'POST'} ${c.url} ${JSON.stringify(c.payload)?.slice(0, 80)}`;
      expect(res.statusCode, label).toBeGreaterThanOrEqual(400);
      expect(res.statusCode, label).toBeLessThan(500);
      const body = res.json();
      expect(typeof body.code, label).toBe('string');
      expect(body.error, label).toBe(body.message);
      if (c.field) expect(Object.keys(body.errors ?? {}).join(' ') + body.error, label).toContain(c.field);
    }
    expect(await counts()).toEqual(before);
  });
});
