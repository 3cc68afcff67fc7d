import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChannelAdapter } from '../../src/channels/channel.js';
import { SettingsChannelRegistry } from '../../src/engine/channel-registry.js';
import { findWorkspaceByProviderConfig, getProviderSettings, listChannelSettings, setProviderSettings } from '../../src/engine/provider-settings-service.js';
import { createTestApp, createTestContext, type TestApp } from '../support/app.js';
import { dialects } from '../support/databases.js';

const accessToken = 'EAAG-super-secret-access-token-0123456789';
const whatsapp = { phone_number_id: '106540352242922', business_account_id: '102290129340398', access_token: accessToken, app_secret: 'app-secret-value', verify_token: 'verify-me' };

describe.each(dialects)('provider settings on %s', (dialect) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(dialect);
  });
  afterAll(async () => t.close());

  const put = (channel: string, payload: object, headers = t.auth) => t.app.inject({ method: 'PUT', url: `/api/v1/settings/channels/${channel}`, headers, payload });
  const list = async (headers = t.auth) => (await t.app.inject({ method: 'GET', url: '/api/v1/settings/channels', headers })).json().data as Array<Record<string, unknown>>;

  it('lists every channel on the sandbox before any settings', async () => {
    const channels = await list();
    expect(channels.map((c) => [c.channel, c.provider, c.status])).toEqual([
      ['whatsapp', 'sandbox', 'sandbox'],
      ['sms', 'sandbox', 'sandbox'],
      ['email', 'sandbox', 'sandbox'],
    ]);
  });

  it('stores secrets encrypted, never returns them, and decrypts them for the engine', async () => {
    const saved = await put('whatsapp', whatsapp);
    expect(saved.statusCode, saved.body).toBe(200);
    expect(saved.body).not.toContain(accessToken);
    expect(saved.json()).toMatchObject({
      channel: 'whatsapp',
      provider: 'whatsapp-cloud',
      config: { phone_number_id: '106540352242922', business_account_id: '102290129340398', graph_version: 'v23.0', base_url: 'https://graph.facebook.com' },
      secrets: { access_token_set: true, app_secret_set: true, verify_token_set: true },
      status: 'unverified',
    });

    const raw = await t.ctx.database.db.selectFrom('provider_settings').selectAll().where('workspace_id', '=', t.workspaceId).executeTakeFirstOrThrow();
    expect(raw.secrets).toMatch(/^v1\./);
    for (const secret of [accessToken, 'app-secret-value', 'verify-me']) {
      expect(raw.secrets).not.toContain(secret);
      expect(raw.config).not.toContain(secret);
    }

    const listed = await t.app.inject({ method: 'GET', url: '/api/v1/settings/channels', headers: t.auth });
    expect(listed.body).not.toContain(accessToken);
    expect(listed.body).not.toContain('app-secret-value');

    const engineView = await getProviderSettings(t.ctx, t.workspaceId, 'whatsapp');
    expect(engineView).toMatchObject({ provider: 'whatsapp-cloud', secrets: { access_token: accessToken, app_secret: 'app-secret-value', verify_token: 'verify-me' } });
    expect(await findWorkspaceByProviderConfig(t.ctx, 'whatsapp', 'phone_number_id', '106540352242922')).toBe(t.workspaceId);
    expect(await findWorkspaceByProviderConfig(t.ctx, 'whatsapp', 'phone_number_id', '999999999')).toBeNull();
    expect(await getProviderSettings(t.ctx, t.other.workspaceId, 'whatsapp')).toBeNull();
  });

  it('keeps a stored secret when it is left out, and removes an optional one given as ""', async () => {
    const saved = await put('whatsapp', { phone_number_id: '106540352242922', graph_version: 'v24.0', app_secret: '' });
    expect(saved.statusCode, saved.body).toBe(200);
    expect(saved.json().secrets).toEqual({ access_token_set: true, app_secret_set: false, verify_token_set: true });
    expect(saved.json().config.graph_version).toBe('v24.0');
    expect((await getProviderSettings(t.ctx, t.workspaceId, 'whatsapp'))?.secrets.access_token).toBe(accessToken);
  });

  it('names every bad field in a 422 and changes nothing', async () => {
    const before = await list();
    const bad = await put('whatsapp', { phone_number_id: '+14155550123', graph_version: '23', base_url: 'ftp://x' });
    expect(bad.statusCode).toBe(422);
    expect(Object.keys(bad.json().errors).sort()).toEqual(['base_url', 'graph_version', 'phone_number_id']);
    const badPort = await put('sms', { account_sid: 'AC00000000000000000000000000000000', auth_token: 'x', from: '+14155550100', base_url: 'http://twilio.internal:6000' });
    expect(badPort.statusCode).toBe(422);
    expect(badPort.json().errors).toEqual({ base_url: [expect.stringContaining('must not use port 6000')] });
    const sms = await put('sms', { account_sid: 'AC123', auth_token: 'x' });
    expect(sms.statusCode).toBe(422);
    expect(Object.keys(sms.json().errors).sort()).toEqual(['account_sid', 'from', 'messaging_service_sid']);
    const email = await put('email', { from: 'not an address', url: 'https://smtp.example.com' });
    expect(email.statusCode).toBe(422);
    expect(Object.keys(email.json().errors).sort()).toEqual(['from', 'url']);
    const foreign = await put('email', { from: 'hello@acme.com', url: 'smtp://u:p@localhost:2525', access_token: 'x' });
    expect(foreign.statusCode).toBe(422);
    expect(foreign.json().errors).toHaveProperty('access_token');
    const channel = await put('fax', { from: 'x' });
    expect(channel.statusCode).toBe(422);
    expect(await list()).toEqual(before);
  });

  it('sets SMS and email providers and removes them back to the sandbox', async () => {
    const sms = await put('sms', { account_sid: `AC${'0a'.repeat(16)}`, auth_token: 'twilio-token-123', from: '(415) 555-0100' });
    expect(sms.statusCode, sms.body).toBe(200);
    expect(sms.json()).toMatchObject({ provider: 'twilio', config: { from: '+14155550100', base_url: 'https://api.twilio.com' }, secrets: { auth_token_set: true } });
    const email = await put('email', { from: 'Acme <hello@acme.com>', url: 'smtps://user:pass@smtp.example.com:465' });
    expect(email.statusCode, email.body).toBe(200);
    expect(email.body).not.toContain('pass@');

    const removed = await t.app.inject({ method: 'DELETE', url: '/api/v1/settings/channels/sms', headers: t.auth });
    expect(removed.statusCode).toBe(200);
    expect(removed.json()).toMatchObject({ channel: 'sms', provider: 'sandbox', status: 'sandbox' });
    expect(await getProviderSettings(t.ctx, t.workspaceId, 'sms')).toBeNull();
    // Another workspace sees none of it.
    const other = await list({ authorization: `Bearer ${t.other.token}` });
    expect(other.every((c) => c.provider === 'sandbox')).toBe(true);
  });

  it('fails clearly with another NUDGE_SECRET_KEY, without leaking or crashing the settings page', async () => {
    const wrong = await createTestContext(dialect, { secretKey: 'another-secret-key-that-is-long-enough-999' });
    try {
      // Same rows, other key: point the second context at the first database.
      const ctx = { ...wrong, database: t.ctx.database };
      await expect(getProviderSettings(ctx, t.workspaceId, 'whatsapp')).rejects.toThrow(/NUDGE_SECRET_KEY is not the key/);
      const views = await listChannelSettings(ctx, t.workspaceId);
      expect(views[0]).toMatchObject({ provider: 'whatsapp-cloud', status: 'error', secrets: { access_token_set: false } });
      expect(views[0]!.last_error).toMatch(/NUDGE_SECRET_KEY/);
      // Setting the channel again needs the secret anew, and says why.
      await expect(setProviderSettings(ctx, t.workspaceId, 'whatsapp', { phone_number_id: '106540352242922' })).rejects.toMatchObject({
        status: 422,
        errors: { access_token: [expect.stringMatching(/cannot be decrypted/)] },
      });
    } finally {
      await wrong.database.close();
    }
  });

  it('needs the settings scopes', async () => {
    const limited = await createTestApp(dialect, { scopes: ['contacts:read'] });
    try {
      const read = await limited.app.inject({ method: 'GET', url: '/api/v1/settings/channels', headers: limited.auth });
      expect(read.statusCode).toBe(403);
      const write = await limited.app.inject({ method: 'PUT', url: '/api/v1/settings/channels/email', headers: limited.auth, payload: { from: 'a@b.co', url: 'smtp://a:b@c' } });
      expect(write.statusCode).toBe(403);
    } finally {
      await limited.close();
    }
  });

  it('sets and reads the consent keywords, naming a bad field', async () => {
    const get = await t.app.inject({ method: 'GET', url: '/api/v1/settings/consent', headers: t.auth });
    expect(get.json().opt_out_keywords).toEqual(['STOP', 'STOPALL', 'UNSUBSCRIBE', 'CANCEL', 'END', 'QUIT']);
    const set = await t.app.inject({ method: 'PUT', url: '/api/v1/settings/consent', headers: t.auth, payload: { opt_out_keywords: ['stop', 'parar'] } });
    expect(set.statusCode, set.body).toBe(200);
    expect(set.json().opt_out_keywords).toEqual(['STOP', 'PARAR']);
    const bad = await t.app.inject({ method: 'PUT', url: '/api/v1/settings/consent', headers: t.auth, payload: { opt_in_keywords: ['PARAR'] } });
    expect(bad.statusCode).toBe(422);
    expect(bad.json().errors).toHaveProperty('opt_in_keywords');
    const reset = await t.app.inject({ method: 'PUT', url: '/api/v1/settings/consent', headers: t.auth, payload: { opt_out_keywords: null } });
    expect(reset.json().opt_out_keywords).toHaveLength(6);
  });
});

describe.each(dialects)('the settings channel registry on %s', (dialect) => {
  it('picks the sandbox without settings, the provider with them, and reloads after a change', async () => {
    const ctx = await createTestContext(dialect);
    const built: Array<{ phoneNumberId: unknown; token: string }> = [];
    const fake = (config: Record<string, unknown>, secrets: Record<string, string>): ChannelAdapter => {
      built.push({ phoneNumberId: config.phone_number_id, token: secrets.access_token! });
      return { provider: 'whatsapp-cloud', send: async () => ({ ok: true, providerMessageId: 'wamid.fake' }) };
    };
    // A second registry stands for another process: it sees the change only after its TTL,
    // long enough that the steps before "still within its TTL" never outlast it on a loaded machine.
    const elsewhere = new SettingsChannelRegistry({ database: ctx.database, secretKey: ctx.secretKey, log: ctx.log, publicUrl: 'http://localhost', timeoutMs: 1000, whatsappRatePerSecond: 80, ttlMs: 1000 });
    elsewhere.registerProvider('whatsapp-cloud', fake);
    const here = ctx.channels as SettingsChannelRegistry;
    here.registerProvider('whatsapp-cloud', fake);
    try {
      const { createWorkspace } = await import('../../src/engine/auth-service.js');
      const ws = await createWorkspace(ctx, 'Registry');
      expect(() => elsewhere.providerFor(ws.id, 'whatsapp')).toThrow(/refresh/);
      await Promise.all([here.refresh(), elsewhere.refresh()]);
      expect(here.providerFor(ws.id, 'whatsapp')).toBe('sandbox');
      expect(here.adapterFor(ws.id, 'whatsapp').provider).toBe('sandbox');
      expect(here.rateLimitFor(ws.id, 'whatsapp')).toBeNull();

      await setProviderSettings(ctx, ws.id, 'whatsapp', { phone_number_id: '1111111111', access_token: 'token-1' });
      await here.refresh();
      expect(here.providerFor(ws.id, 'whatsapp')).toBe('whatsapp-cloud');
      expect(here.providerFor(ws.id, 'sms')).toBe('sandbox');
      const adapter = here.adapterFor(ws.id, 'whatsapp');
      expect(await adapter.send({ id: 'm', workspaceId: ws.id, channel: 'whatsapp', to: '+14155550123', content: { kind: 'text', text: 'hi' } })).toMatchObject({ ok: true });
      expect(here.adapterFor(ws.id, 'whatsapp')).toBe(adapter); // cached
      expect(here.rateLimitFor(ws.id, 'whatsapp')).toEqual({ key: 'whatsapp:1111111111', perSecond: 80 });
      expect(built).toEqual([{ phoneNumberId: '1111111111', token: 'token-1' }]);

      await elsewhere.refresh();
      expect(elsewhere.providerFor(ws.id, 'whatsapp')).toBe('sandbox'); // still within its TTL
      await new Promise((r) => setTimeout(r, 1050));
      await elsewhere.refresh();
      expect(elsewhere.providerFor(ws.id, 'whatsapp')).toBe('whatsapp-cloud');

      await setProviderSettings(ctx, ws.id, 'whatsapp', { phone_number_id: '2222222222', access_token: 'token-2' });
      await here.refresh();
      expect(here.adapterFor(ws.id, 'whatsapp')).not.toBe(adapter);
      expect(built.at(-1)).toEqual({ phoneNumberId: '2222222222', token: 'token-2' });
    } finally {
      await elsewhere.close();
      await here.close();
      await ctx.database.close();
    }
  });
});
