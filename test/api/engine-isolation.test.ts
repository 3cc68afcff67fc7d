import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { dialects } from '../support/databases.js';
import { createTestWorker } from '../support/engine.js';

/** Every engine route called with another workspace's token: 404 (or nothing listed), and nothing changes. */
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
    const discount = (
      await post('/api/v1/sequences', { name: 'Coupon', steps: [{ type: 'create_discount', discount: { provider: 'builtin', percentOff: 10 } }, { type: 'sms', text: '{{discount.code}}' }] })
    ).json().sequence.id;
    await post(`/api/v1/sequences/${discount}/publish`, {});
    await post('/api/v1/actions/trigger-sequence', { sequence_id: discount, contact_id: ids.contact });
    // Stored even though nothing answers there (status unverified): the other workspace must not see it.
    await t.app.inject({ method: 'PUT', url: '/api/v1/settings/integrations/stripe', headers: t.auth, payload: { secret_key: 'sk_test_51IsolationKey0000', base_url: 'http://127.0.0.1:9' } });
    await createTestWorker(t.ctx).drain();
    ids.code = (await t.ctx.database.db.selectFrom('discount_codes').select('code').where('workspace_id', '=', t.workspaceId).executeTakeFirstOrThrow()).code;
    ids.emailSequence = (await post('/api/v1/sequences', { name: 'Mail', steps: [{ subject: 'Hi', html: '<p>Hi</p>' }] })).json().sequence.id;
    ids.emailTemplate = (await t.app.inject({ method: 'GET', url: `/api/v1/email-templates?sequenceId=${ids.emailSequence}`, headers: t.auth })).json().data[0].id;
    ids.libraryTemplate = (await post('/api/v1/email-templates', { subject: 'Library', html: '<p>Library</p>' })).json().template.id;
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
      ['GET', `/api/v1/discounts/${ids.code}`],
      ['POST', '/api/v1/discounts/redeem', { code: ids.code }],
      ['POST', '/api/v1/discounts/redeem', { code: ids.code, contactId: ids.contact }],
      ['GET', `/api/v1/email-templates/${ids.emailTemplate}`],
      ['PUT', `/api/v1/email-templates/${ids.emailTemplate}`, { subject: 'Stolen' }],
      ['DELETE', `/api/v1/email-templates/${ids.emailTemplate}`],
      ['GET', `/api/v1/email-templates/${ids.libraryTemplate}`],
      ['PUT', `/api/v1/email-templates/${ids.libraryTemplate}`, { name: 'Stolen' }],
      ['DELETE', `/api/v1/email-templates/${ids.libraryTemplate}`],
    ];
    for (const [method, url, payload] of calls) {
      const res = await t.app.inject({ method: method as 'GET', url, headers: other, ...(payload ? { payload } : {}) });
      expect({ method, url, status: res.statusCode }).toEqual({ method, url, status: 404 });
    }
    for (const url of [
      `/api/v1/sequences`,
      `/api/v1/flows`,
      `/api/v1/sessions`,
      `/api/v1/messages`,
      `/api/v1/sessions?definition_id=${ids.sequence}`,
      `/api/v1/messages?session_id=${ids.session}`,
      '/api/v1/discounts',
      `/api/v1/discounts?contactId=${ids.contact}`,
      '/api/v1/email-templates',
      `/api/v1/email-templates?sequenceId=${ids.emailSequence}`,
    ]) {
      const res = await t.app.inject({ method: 'GET', url, headers: other });
      expect({ url, status: res.statusCode, data: res.json().data }).toEqual({ url, status: 200, data: [] });
    }
    const integrations = await t.app.inject({ method: 'GET', url: '/api/v1/settings/integrations', headers: other });
    expect(integrations.json().data.map((i: { connected: boolean }) => i.connected)).toEqual([false, false]);
    await t.app.inject({ method: 'DELETE', url: '/api/v1/settings/integrations/stripe', headers: other });
    const code = await t.app.inject({ method: 'GET', url: `/api/v1/discounts/${ids.code}`, headers: t.auth });
    expect(code.json()).toMatchObject({ code: ids.code, redemptions: 0 });
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/settings/integrations/stripe', headers: t.auth })).json()).toMatchObject({ connected: true, status: 'unverified' });
    const mine = await t.app.inject({ method: 'GET', url: `/api/v1/sequences/${ids.sequence}`, headers: t.auth });
    expect(mine.json().sequence).toMatchObject({ name: 'Mine', status: 'active', sessionsCount: 1 });
    const session = await t.app.inject({ method: 'GET', url: `/api/v1/sessions/${ids.session}`, headers: t.auth });
    expect(session.json().status).toBe('running');
    for (const id of [ids.emailTemplate, ids.libraryTemplate]) {
      const tpl = await t.app.inject({ method: 'GET', url: `/api/v1/email-templates/${id}`, headers: t.auth });
      expect(tpl.json().template).toMatchObject({ subject: id === ids.libraryTemplate ? 'Library' : 'Hi', name: expect.not.stringContaining('Stolen') });
    }
    // Naming the other workspace's template in a step is refused, and copies nothing.
    const borrowed = await t.app.inject({ method: 'POST', url: '/api/v1/sequences', headers: other, payload: { name: 'Borrow', steps: [{ templateId: ids.libraryTemplate }] } });
    expect(borrowed.statusCode).toBe(422);
    expect(Object.keys(borrowed.json().errors)).toEqual(['steps.0.templateId']);
    const mail = await t.app.inject({ method: 'GET', url: `/api/v1/sequences/${ids.emailSequence}`, headers: t.auth });
    expect(mail.json().sequence).toMatchObject({ steps: [{ subject: 'Hi', templateId: ids.emailTemplate }] });
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
    for (const [method, url, scope, payload] of [
      ['GET', `/api/v1/discounts/${ids.code}`, 'discounts:read'],
      ['GET', '/api/v1/discounts', 'discounts:read'],
      ['POST', '/api/v1/discounts/redeem', 'discounts:write', { code: ids.code }],
      ['GET', '/api/v1/settings/integrations', 'settings:read'],
      ['PUT', '/api/v1/settings/integrations/stripe', 'settings:write', { secret_key: 'sk_test_51Stolen000000000' }],
      ['GET', '/api/v1/email-templates', 'templates:read'],
      ['GET', `/api/v1/email-templates/${ids.emailTemplate}`, 'templates:read'],
      ['POST', '/api/v1/email-templates', 'templates:write', { subject: 'x', html: '<p>x</p>' }],
      ['PUT', `/api/v1/email-templates/${ids.emailTemplate}`, 'templates:write', { subject: 'x' }],
      ['DELETE', `/api/v1/email-templates/${ids.libraryTemplate}`, 'templates:write'],
    ] as Array<[string, string, string, object?]>) {
      const res = await t.app.inject({ method: method as 'GET', url, headers: { authorization: `Bearer ${reader.token}` }, ...(payload ? { payload } : {}) });
      expect({ url, status: res.statusCode, error: res.json().error }).toEqual({ url, status: 403, error: `This token lacks the scope ${scope}` });
    }
    // templates:read alone reads email templates and cannot change them.
    const templateReader = await createToken(t.ctx, { workspaceId: t.workspaceId, name: 'template reader', scopes: ['templates:read'] });
    const asTemplateReader = { authorization: `Bearer ${templateReader.token}` };
    expect((await t.app.inject({ method: 'GET', url: `/api/v1/email-templates/${ids.emailTemplate}`, headers: asTemplateReader })).statusCode).toBe(200);
    const edit = await t.app.inject({ method: 'PUT', url: `/api/v1/email-templates/${ids.emailTemplate}`, headers: asTemplateReader, payload: { subject: 'x' } });
    expect({ status: edit.statusCode, error: edit.json().error }).toEqual({ status: 403, error: 'This token lacks the scope templates:write' });
  });
});
