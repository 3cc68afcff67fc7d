import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { dialects } from '../support/databases.js';
import { createTestWorker } from '../support/engine.js';

/** Every engine route called with another workspace's token: 404 (or nothing listed), and nothing changes. Broadcasts included. */
describe.each(dialects)('workspace isolation of sequences, flows, sessions and messages on %s', (dialect) => {
  let t: TestApp;
  const ids: Record<string, string> = {};
  beforeAll(async () => {
    t = await createTestApp(dialect);
    const post = (url: string, payload: object) => t.app.inject({ method: 'POST', url, headers: t.auth, payload });
    ids.sequence = (await post('/api/v1/sequences', { name: 'Mine', steps: [{ type: 'sms', text: 'a' }, { type: 'sms', delay: { days: 1 }, text: 'b' }] })).json().sequence.id;
    await post(`/api/v1/sequences/${ids.sequence}/publish`, {});
    ids.flow = (await post('/api/v1/flows', { name: 'Mine too', steps: [{ type: 'whatsapp', text: 'hi' }] })).json().flow.id;
    await post(`/api/v1/flows/${ids.flow}/publish`, {});
    const started = (await post('/api/v1/actions/trigger-sequence', { sequence_id: ids.sequence, phone: '+14155550900' })).json();
    ids.session = started.id;
    ids.contact = started.contact_id;
    ids.template = (await post('/api/v1/templates', { name: 'mine', language: 'en', category: 'MARKETING', body: 'Hi {{1}}' })).json().id;
    ids.broadcast = (await post('/api/v1/broadcasts', { template_id: ids.template, variables: { '1': 'you' }, audience: { contact_ids: [ids.contact] } })).json().id;
    ids.sentBroadcast = (await post('/api/v1/broadcasts', { template_id: ids.template, variables: { '1': 'you' }, audience: { contact_ids: [ids.contact] } })).json().id;
    await post(`/api/v1/broadcasts/${ids.sentBroadcast}/send`, {});
    await createTestWorker(t.ctx).drain();
  });
  afterAll(async () => t.close());

  it('answers 404 to the other workspace for every id-bearing route and changes nothing', async () => {
    const other = { authorization: `Bearer ${t.other.token}` };
    const calls: Array<[string, string, object?]> = [
      ['GET', `/api/v1/sequences/${ids.sequence}`],
      ['PUT', `/api/v1/sequences/${ids.sequence}`, { name: 'Stolen' }],
      ['POST', `/api/v1/sequences/${ids.sequence}/publish`, {}],
      ['POST', `/api/v1/sequences/${ids.sequence}/enable`, {}],
      ['POST', `/api/v1/sequences/${ids.sequence}/disable`, {}],
      ['POST', `/api/v1/sequences/${ids.sequence}/archive`, {}],
      ['DELETE', `/api/v1/sequences/${ids.sequence}`],
      ['GET', `/api/v1/flows/${ids.flow}`],
      ['PUT', `/api/v1/flows/${ids.flow}`, { name: 'Stolen' }],
      ['POST', `/api/v1/flows/${ids.flow}/disable`, {}],
      ['DELETE', `/api/v1/flows/${ids.flow}`],
      ['POST', '/api/v1/actions/get-sequence', { sequence_id: ids.sequence }],
      ['POST', '/api/v1/actions/get-flow', { flow_id: ids.flow }],
      ['POST', '/api/v1/actions/trigger-sequence', { sequence_id: ids.sequence, phone: '+14155550901' }],
      ['POST', '/api/v1/actions/trigger-sequence', { sequence_id: ids.sequence, contact_id: ids.contact }],
      ['POST', '/api/v1/actions/trigger-flow', { flow_id: ids.flow, phone: '+14155550901' }],
      ['GET', `/api/v1/sessions/${ids.session}`],
      ['POST', `/api/v1/sessions/${ids.session}/stop`, {}],
    ];
    for (const [method, url, payload] of calls) {
      const res = await t.app.inject({ method: method as 'GET', url, headers: other, ...(payload ? { payload } : {}) });
      expect({ method, url, status: res.statusCode }).toEqual({ method, url, status: 404 });
    }
    for (const url of [`/api/v1/sequences`, `/api/v1/flows`, `/api/v1/sessions`, `/api/v1/messages`, `/api/v1/sessions?definition_id=${ids.sequence}`, `/api/v1/messages?session_id=${ids.session}`]) {
      const res = await t.app.inject({ method: 'GET', url, headers: other });
      expect({ url, status: res.statusCode, data: res.json().data }).toEqual({ url, status: 200, data: [] });
    }
    const mine = await t.app.inject({ method: 'GET', url: `/api/v1/sequences/${ids.sequence}`, headers: t.auth });
    expect(mine.json().sequence).toMatchObject({ name: 'Mine', status: 'active', sessionsCount: 1 });
    const session = await t.app.inject({ method: 'GET', url: `/api/v1/sessions/${ids.session}`, headers: t.auth });
    expect(session.json().status).toBe('running');
  });

  it('keeps broadcasts to their workspace: 404 for every id-bearing route, nothing listed, nothing changed', async () => {
    const other = { authorization: `Bearer ${t.other.token}` };
    const calls: Array<[string, string, object?]> = [
      ['GET', `/api/v1/broadcasts/${ids.broadcast}`],
      ['PATCH', `/api/v1/broadcasts/${ids.broadcast}`, { name: 'Stolen' }],
      ['POST', `/api/v1/broadcasts/${ids.broadcast}/send`, {}],
      ['POST', `/api/v1/broadcasts/${ids.broadcast}/schedule`, { scheduled_at: '2030-01-01T00:00:00Z' }],
      ['POST', `/api/v1/broadcasts/${ids.broadcast}/cancel`, {}],
      ['DELETE', `/api/v1/broadcasts/${ids.broadcast}`],
      ['DELETE', `/api/v1/broadcasts/${ids.sentBroadcast}`],
    ];
    for (const [method, url, payload] of calls) {
      const res = await t.app.inject({ method: method as 'GET', url, headers: other, ...(payload ? { payload } : {}) });
      expect({ method, url, status: res.statusCode }).toEqual({ method, url, status: 404 });
    }
    for (const url of ['/api/v1/broadcasts', `/api/v1/messages?broadcast_id=${ids.sentBroadcast}`]) {
      const res = await t.app.inject({ method: 'GET', url, headers: other });
      expect({ url, status: res.statusCode, data: res.json().data }).toEqual({ url, status: 200, data: [] });
    }
    // Another workspace's template and contacts are not theirs to send.
    const borrowed = await t.app.inject({ method: 'POST', url: '/api/v1/broadcasts', headers: other, payload: { template_id: ids.template, variables: { '1': 'x' }, audience: { contact_ids: [ids.contact] } } });
    expect(borrowed.statusCode).toBe(422);
    expect(borrowed.json().errors).toHaveProperty('template_id');
    const mine = await t.app.inject({ method: 'GET', url: `/api/v1/broadcasts/${ids.broadcast}`, headers: t.auth });
    expect(mine.json()).toMatchObject({ status: 'draft', name: 'mine' });
    const sent = await t.app.inject({ method: 'GET', url: `/api/v1/broadcasts/${ids.sentBroadcast}`, headers: t.auth });
    expect(sent.json()).toMatchObject({ status: 'completed', recipients: 1 });
  });

  it('asks broadcasts:read to read broadcasts and broadcasts:write to change them', async () => {
    const { createToken } = await import('../../src/engine/auth-service.js');
    const reader = await createToken(t.ctx, { workspaceId: t.workspaceId, name: 'broadcast reader', scopes: ['broadcasts:read'] });
    const headers = { authorization: `Bearer ${reader.token}` };
    expect((await t.app.inject({ method: 'GET', url: `/api/v1/broadcasts/${ids.broadcast}`, headers })).statusCode).toBe(200);
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/broadcasts', headers })).statusCode).toBe(200);
    const writes: Array<[string, string, object?]> = [
      ['POST', '/api/v1/broadcasts', { template_id: ids.template, variables: { '1': 'x' }, audience: { contact_ids: [ids.contact] } }],
      ['PATCH', `/api/v1/broadcasts/${ids.broadcast}`, { name: 'x' }],
      ['POST', `/api/v1/broadcasts/${ids.broadcast}/send`, {}],
      ['POST', `/api/v1/broadcasts/${ids.broadcast}/schedule`, { scheduled_at: '2030-01-01T00:00:00Z' }],
      ['POST', `/api/v1/broadcasts/${ids.broadcast}/cancel`, {}],
      ['DELETE', `/api/v1/broadcasts/${ids.broadcast}`],
    ];
    for (const [method, url, payload] of writes) {
      const res = await t.app.inject({ method: method as 'GET', url, headers, ...(payload ? { payload } : {}) });
      expect({ method, url, status: res.statusCode }).toEqual({ method, url, status: 403 });
      expect(res.json().error).toContain('broadcasts:write');
    }
    const none = await createToken(t.ctx, { workspaceId: t.workspaceId, name: 'no broadcasts', scopes: ['contacts:read'] });
    const denied = await t.app.inject({ method: 'GET', url: '/api/v1/broadcasts', headers: { authorization: `Bearer ${none.token}` } });
    expect(denied.statusCode).toBe(403);
    expect(denied.json().error).toContain('broadcasts:read');
  });

  it('answers 403 naming the scope when a token lacks it', async () => {
    const { createToken } = await import('../../src/engine/auth-service.js');
    const reader = await createToken(t.ctx, { workspaceId: t.workspaceId, name: 'reader', scopes: ['sequences:read'] });
    const res = await t.app.inject({ method: 'POST', url: '/api/v1/actions/trigger-sequence', headers: { authorization: `Bearer ${reader.token}` }, payload: { sequence_id: ids.sequence, phone: '+14155550902' } });
    expect(res.statusCode).toBe(403);
    expect(res.json().error).toContain('sequences:execute');
    const write = await t.app.inject({ method: 'POST', url: '/api/v1/sequences', headers: { authorization: `Bearer ${reader.token}` }, payload: { name: 'x', steps: [] } });
    expect(write.statusCode).toBe(403);
    expect(write.json().error).toContain('sequences:write');
    const read = await t.app.inject({ method: 'GET', url: `/api/v1/sequences/${ids.sequence}`, headers: { authorization: `Bearer ${reader.token}` } });
    expect(read.statusCode).toBe(200);
  });
});
