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
    const discount = (
      await post('/api/v1/sequences', { name: 'Coupon', steps: [{ type: 'create_discount', discount: { provider: 'builtin', percentOff: 10 } }, { type: 'sms', text: '{{discount.code}}' }] })
    ).json().sequence.id;
    await post(`/api/v1/sequences/${discount}/publish`, {});
    await post('/api/v1/actions/trigger-sequence', { sequence_id: discount, contact_id: ids.contact });
    // Stored even though nothing answers there (status unverified): the other workspace must not see it.
    await t.app.inject({ method: 'PUT', url: '/api/v1/settings/integrations/stripe', headers: t.auth, payload: { secret_key: 'sk_test_51IsolationKey0000', base_url: 'http://127.0.0.1:2' } });
    // Nothing listens there: the test event stays pending, retrying.
    ids.webhook = (await post('/api/v1/webhooks', { url: 'http://127.0.0.1:2/hooks', events: ['contact.opted_in'] })).json().id;
    ids.delivery = (await t.app.inject({ method: 'GET', url: `/api/v1/webhooks/${ids.webhook}/deliveries`, headers: t.auth })).json().data[0].id;
    ids.template = (await post('/api/v1/templates', { name: 'mine', language: 'en', category: 'MARKETING', body: 'Hi {{1}}' })).json().id;
    ids.broadcast = (await post('/api/v1/broadcasts', { template_id: ids.template, variables: { '1': 'you' }, audience: { contact_ids: [ids.contact] } })).json().id;
    ids.sentBroadcast = (await post('/api/v1/broadcasts', { template_id: ids.template, variables: { '1': 'you' }, audience: { contact_ids: [ids.contact] } })).json().id;
    await post(`/api/v1/broadcasts/${ids.sentBroadcast}/send`, {});
    ids.variant = (await post('/api/v1/sequences', { name: 'My variant', steps: [{ type: 'sms', text: 'b' }] })).json().sequence.id;
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
      ['GET', `/api/v1/webhooks/${ids.webhook}`],
      ['PATCH', `/api/v1/webhooks/${ids.webhook}`, { url: 'https://attacker.example/hooks' }],
      ['POST', `/api/v1/webhooks/${ids.webhook}/rotate-secret`, {}],
      ['POST', `/api/v1/webhooks/${ids.webhook}/disable`],
      ['POST', `/api/v1/webhooks/${ids.webhook}/enable`],
      ['POST', `/api/v1/webhooks/${ids.webhook}/test`],
      ['GET', `/api/v1/webhooks/${ids.webhook}/deliveries`],
      ['POST', `/api/v1/webhooks/${ids.webhook}/deliveries/${ids.delivery}/redeliver`],
      ['DELETE', `/api/v1/webhooks/${ids.webhook}`],
      ['POST', `/api/v1/sequences/${ids.sequence}/execute`, { contacts: [{ email: 'stolen@example.com' }] }],
      ['PUT', `/api/v1/sequences/${ids.sequence}/ab-test`, { variantSequenceId: ids.variant, splitPercent: 50 }],
      ['DELETE', `/api/v1/sequences/${ids.sequence}/ab-test`],
      ['GET', `/api/v1/sequences/${ids.sequence}/ab-test/results`],
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
      '/api/v1/webhooks',
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
    // Nor can another workspace make my sequence the variant of its own test.
    const theirs = (await t.app.inject({ method: 'POST', url: '/api/v1/sequences', headers: other, payload: { name: 'Theirs', steps: [{ type: 'sms', text: 'x' }] } })).json().sequence.id;
    const borrowed = await t.app.inject({ method: 'PUT', url: `/api/v1/sequences/${theirs}/ab-test`, headers: other, payload: { variantSequenceId: ids.sequence, splitPercent: 50 } });
    expect(borrowed.statusCode).toBe(422);
    expect(Object.keys(borrowed.json().errors)).toEqual(['variantSequenceId']);
    const mine = await t.app.inject({ method: 'GET', url: `/api/v1/sequences/${ids.sequence}`, headers: t.auth });
    expect(mine.json().sequence).toMatchObject({ name: 'Mine', status: 'active', sessionsCount: 1, abTest: null });
    expect(await t.ctx.database.db.selectFrom('contacts').select('id').where('email', '=', 'stolen@example.com').execute()).toEqual([]);
    const session = await t.app.inject({ method: 'GET', url: `/api/v1/sessions/${ids.session}`, headers: t.auth });
    expect(session.json().status).toBe('running');
    const webhook = await t.app.inject({ method: 'GET', url: `/api/v1/webhooks/${ids.webhook}`, headers: t.auth });
    expect(webhook.json()).toMatchObject({ url: 'http://127.0.0.1:2/hooks', status: 'active', previous_secret_expires_at: null });
    const log = await t.app.inject({ method: 'GET', url: `/api/v1/webhooks/${ids.webhook}/deliveries`, headers: t.auth });
    expect(log.json().data.map((d: { id: string }) => d.id)).toEqual([ids.delivery]);
    for (const id of [ids.emailTemplate, ids.libraryTemplate]) {
      const tpl = await t.app.inject({ method: 'GET', url: `/api/v1/email-templates/${id}`, headers: t.auth });
      expect(tpl.json().template).toMatchObject({ subject: id === ids.libraryTemplate ? 'Library' : 'Hi', name: expect.not.stringContaining('Stolen') });
    }
    // Naming the other workspace's template in a step is refused, and copies nothing.
    const borrowedTemplate = await t.app.inject({ method: 'POST', url: '/api/v1/sequences', headers: other, payload: { name: 'Borrow', steps: [{ templateId: ids.libraryTemplate }] } });
    expect(borrowedTemplate.statusCode).toBe(422);
    expect(Object.keys(borrowedTemplate.json().errors)).toEqual(['steps.0.templateId']);
    const mail = await t.app.inject({ method: 'GET', url: `/api/v1/sequences/${ids.emailSequence}`, headers: t.auth });
    expect(mail.json().sequence).toMatchObject({ steps: [{ subject: 'Hi', templateId: ids.emailTemplate }] });
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
    const hooks = await t.app.inject({ method: 'GET', url: '/api/v1/webhooks', headers: { authorization: `Bearer ${reader.token}` } });
    expect(hooks.statusCode).toBe(403);
    expect(hooks.json().error).toContain('webhooks:read');
    const hookReader = await createToken(t.ctx, { workspaceId: t.workspaceId, name: 'hook reader', scopes: ['webhooks:read'] });
    const asHookReader = { authorization: `Bearer ${hookReader.token}` };
    expect((await t.app.inject({ method: 'GET', url: `/api/v1/webhooks/${ids.webhook}/deliveries`, headers: asHookReader })).statusCode).toBe(200);
    for (const [method, url] of [['POST', '/api/v1/webhooks'], ['POST', `/api/v1/webhooks/${ids.webhook}/rotate-secret`], ['DELETE', `/api/v1/webhooks/${ids.webhook}`]] as const) {
      const res = await t.app.inject({ method, url, headers: asHookReader, ...(method === 'POST' ? { payload: {} } : {}) });
      expect({ url, status: res.statusCode }).toEqual({ url, status: 403 });
      expect(res.json().error).toContain('webhooks:write');
    }

    const asReader = { authorization: `Bearer ${reader.token}` };
    const execute = await t.app.inject({ method: 'POST', url: `/api/v1/sequences/${ids.sequence}/execute`, headers: asReader, payload: { contacts: [{ email: 'reader@example.com' }] } });
    expect(execute.statusCode).toBe(403);
    expect(execute.json().error).toContain('sequences:execute');
    for (const [method, url] of [['PUT', `/api/v1/sequences/${ids.sequence}/ab-test`], ['DELETE', `/api/v1/sequences/${ids.sequence}/ab-test`]] as const) {
      const res = await t.app.inject({ method, url, headers: asReader, ...(method === 'PUT' ? { payload: { variantSequenceId: ids.variant, splitPercent: 50 } } : {}) });
      expect(res.statusCode, `${method} ${url}`).toBe(403);
      expect(res.json().error).toContain('sequences:write');
    }
    const executor = await createToken(t.ctx, { workspaceId: t.workspaceId, name: 'executor', scopes: ['sequences:execute'] });
    const results = await t.app.inject({ method: 'GET', url: `/api/v1/sequences/${ids.sequence}/ab-test/results`, headers: { authorization: `Bearer ${executor.token}` } });
    expect(results.statusCode).toBe(403);
    expect(results.json().error).toContain('sequences:read');
    expect((await t.app.inject({ method: 'GET', url: `/api/v1/sequences/${ids.sequence}/ab-test/results`, headers: asReader })).statusCode).toBe(200);
    // templates:read alone reads email templates and cannot change them.
    const templateReader = await createToken(t.ctx, { workspaceId: t.workspaceId, name: 'template reader', scopes: ['templates:read'] });
    const asTemplateReader = { authorization: `Bearer ${templateReader.token}` };
    expect((await t.app.inject({ method: 'GET', url: `/api/v1/email-templates/${ids.emailTemplate}`, headers: asTemplateReader })).statusCode).toBe(200);
    const edit = await t.app.inject({ method: 'PUT', url: `/api/v1/email-templates/${ids.emailTemplate}`, headers: asTemplateReader, payload: { subject: 'x' } });
    expect({ status: edit.statusCode, error: edit.json().error }).toEqual({ status: 403, error: 'This token lacks the scope templates:write' });
  });

  it("answers 404 to another workspace's signed-in user on the dashboard's routes, and refuses tokens there", async () => {
    const { createUser } = await import('../../src/engine/auth-service.js');
    await createUser(t.ctx, { workspaceId: t.other.workspaceId, email: 'isolation@globex.example', name: 'Other', password: 'their password 123' });
    const login = await t.app.inject({ method: 'POST', url: '/api/auth/login', headers: { 'x-requested-with': 'nudge' }, payload: { email: 'isolation@globex.example', password: 'their password 123' } });
    expect(login.statusCode, login.body).toBe(200);
    const cookie = String(login.headers['set-cookie']).split(';')[0]!;
    const res = await t.app.inject({ method: 'POST', url: `/api/sequences/${ids.sequence}/execute`, headers: { cookie, 'x-requested-with': 'nudge' }, payload: { contactIds: [ids.contact] } });
    expect(res.statusCode).toBe(404);
    const withToken = await t.app.inject({ method: 'POST', url: `/api/sequences/${ids.sequence}/execute`, headers: { ...t.auth, 'x-requested-with': 'nudge' }, payload: { contactIds: [ids.contact] } });
    expect(withToken.statusCode).toBe(401);
    const sessions = await t.ctx.database.db.selectFrom('sessions').select('id').where('definition_id', '=', ids.sequence!).execute();
    expect(sessions).toHaveLength(1);
  });
});
