import { createHash, randomBytes, scryptSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/app.js';
import { abSide } from '../../src/domain/ab-split.js';
import { createUser } from '../../src/engine/auth-service.js';
import { newId } from '../../src/domain/ids.js';
import type { TestContext } from '../support/app.js';
import { createTestApp, ManualClock, type TestApp } from '../support/app.js';
import { dialects } from '../support/databases.js';

const day = 86_400_000;
const csrf = { 'x-requested-with': 'nudge' };
const password = 'correct horse battery staple';

/**
 * A user whose password hash uses a small scrypt cost (N = 1024): verifyPassword reads
 * the cost from the stored hash, so these tests sign in by the hundred without paying
 * 32 MiB and a few hundred milliseconds per attempt. createUser's real cost is used once.
 */
async function cheapUser(ctx: TestContext, workspaceId: string, email: string, name: string): Promise<{ id: string; email: string }> {
  const salt = randomBytes(16);
  const hash = scryptSync(password, salt, 32, { N: 1024, r: 8, p: 1 });
  const row = { id: newId(), workspace_id: workspaceId, email, name, password_hash: `scrypt$1024$8$1$${salt.toString('base64url')}$${hash.toString('base64url')}`, role: 'admin', created_at: Date.now() };
  await ctx.database.db.insertInto('users').values(row).execute();
  return { id: row.id, email };
}

/** The session cookie of a response: its `name=value` pair and its attributes. */
function sessionCookie(res: { headers: Record<string, unknown> }): { pair: string; name: string; value: string; attributes: string[] } {
  const header = res.headers['set-cookie'];
  const line = (Array.isArray(header) ? header[0] : header) as string;
  expect(line, 'a Set-Cookie header').toBeTypeOf('string');
  const [pair, ...attributes] = line.split(';').map((p) => p.trim());
  const [name, value] = pair!.split('=') as [string, string];
  return { pair: pair!, name, value, attributes };
}

describe.each(dialects)('dashboard sign-in and its internal API on %s', (dialect) => {
  let t: TestApp;
  const clock = new ManualClock(Date.UTC(2026, 4, 7, 8, 0, 0));
  let admin: { id: string; email: string };
  beforeAll(async () => {
    t = await createTestApp(dialect, { clock, env: { NUDGE_LOGIN_ATTEMPTS: '3', NUDGE_PUBLIC_URL: 'https://nudge.example.com' } });
    admin = await createUser(t.ctx, { workspaceId: t.workspaceId, email: 'Admin@Acme.example', name: 'Ada Admin', password });
    await cheapUser(t.ctx, t.workspaceId, 'ops@acme.example', 'Ops');
    await cheapUser(t.ctx, t.other.workspaceId, 'admin@globex.example', 'Gus');
  });
  afterAll(async () => t.close());

  const db = () => t.ctx.database.db;
  let ipSeq = 0;
  const freshIp = () => `10.0.${Math.floor(++ipSeq / 250)}.${(ipSeq % 250) + 1}`;
  const signIn = (email: string, pass: string, options: { ip?: string; headers?: Record<string, string> } = {}) =>
    t.app.inject({ method: 'POST', url: '/api/auth/login', remoteAddress: options.ip ?? freshIp(), headers: { ...csrf, ...options.headers }, payload: { email, password: pass } });
  async function cookieFor(email = 'ops@acme.example'): Promise<string> {
    const res = await signIn(email, password);
    expect(res.statusCode, res.body).toBe(200);
    return sessionCookie(res).pair;
  }
  const session = (cookie: string) => t.app.inject({ method: 'GET', url: '/api/auth/session', headers: { cookie } });

  describe('sign-in', () => {
    it('sets an HttpOnly, SameSite cookie whose token is stored only as a hash, and shows the signed-in user and workspace', async () => {
      const res = await signIn('  ADMIN@acme.example ', password);
      expect(res.statusCode, res.body).toBe(200);
      expect(res.headers['cache-control']).toBe('no-store');
      const cookie = sessionCookie(res);
      expect(cookie.name).toBe('nudge_session');
      expect(cookie.value).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(cookie.attributes).toEqual(['Path=/', 'HttpOnly', 'SameSite=Lax', `Max-Age=${7 * 86_400}`]);
      const view = { success: true, user: { id: admin.id, email: 'admin@acme.example', name: 'Ada Admin', role: 'admin' }, workspace: { id: t.workspaceId, name: 'Acme' }, expiresAt: new Date(clock.now() + 7 * day).toISOString() };
      expect(res.json()).toEqual(view);

      const stored = await db().selectFrom('user_sessions').selectAll().where('user_id', '=', admin.id).execute();
      expect(stored.map((s) => s.token_hash)).toContain(createHash('sha256').update(cookie.value).digest('hex'));
      expect(JSON.stringify(stored)).not.toContain(cookie.value);

      const current = await session(cookie.pair);
      expect(current.statusCode, current.body).toBe(200);
      expect(current.json()).toEqual(view);
    });

    it('marks the cookie Secure under the __Host- prefix over HTTPS, and reads only that name there', async () => {
      const res = await signIn('ops@acme.example', password, { headers: { 'x-forwarded-proto': 'https' } });
      const cookie = sessionCookie(res);
      expect(cookie.name).toBe('__Host-nudge_session');
      expect(cookie.attributes).toEqual(['Path=/', 'HttpOnly', 'SameSite=Lax', `Max-Age=${7 * 86_400}`, 'Secure']);
      expect((await t.app.inject({ method: 'GET', url: '/api/auth/session', headers: { cookie: cookie.pair, 'x-forwarded-proto': 'https' } })).statusCode).toBe(200);
      const plain = `nudge_session=${cookie.value}`;
      expect((await t.app.inject({ method: 'GET', url: '/api/auth/session', headers: { cookie: plain, 'x-forwarded-proto': 'https' } })).statusCode).toBe(401);
    });

    it('answers the same 401 for a wrong password, an unknown email and a user without a password', async () => {
      await createUser(t.ctx, { workspaceId: t.workspaceId, email: 'nopass@acme.example', name: 'No password', password: null });
      for (const [email, pass] of [['admin@acme.example', 'wrong'], ['nobody@acme.example', password], ['nopass@acme.example', '']]) {
        const res = await signIn(email!, pass || 'x');
        expect(res.statusCode, email).toBe(401);
        expect(res.json()).toMatchObject({ code: 'unauthorized', message: 'Email or password is incorrect' });
        expect(res.headers['set-cookie']).toBeUndefined();
      }
    });

    it('answers 422 naming the field for a missing email or password', async () => {
      const missing = await t.app.inject({ method: 'POST', url: '/api/auth/login', headers: csrf, payload: { email: 'admin@acme.example' } });
      expect(missing.statusCode).toBe(422);
      expect(Object.keys(missing.json().errors)).toEqual(['password']);
      const empty = await t.app.inject({ method: 'POST', url: '/api/auth/login', headers: csrf, payload: { email: '', password: '' } });
      expect(Object.keys(empty.json().errors).sort()).toEqual(['email', 'password']);
    });

    it('refuses requests without the CSRF header, or from another origin, with 403', async () => {
      const noHeader = await t.app.inject({ method: 'POST', url: '/api/auth/login', payload: { email: 'admin@acme.example', password } });
      expect(noHeader.statusCode).toBe(403);
      expect(noHeader.json().message).toContain('X-Requested-With: nudge');
      expect(noHeader.headers['set-cookie']).toBeUndefined();
      const foreign = await signIn('admin@acme.example', password, { headers: { origin: 'https://evil.example.com' } });
      expect(foreign.statusCode).toBe(403);
      expect(foreign.json().message).toContain('another site');
      for (const origin of ['https://nudge.example.com', 'http://localhost:80']) {
        const own = await signIn('ops@acme.example', password, { headers: { origin, host: 'localhost:80' } });
        expect(own.statusCode, origin).toBe(200);
      }
      const cookie = await cookieFor();
      const id = '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b';
      const execute = await t.app.inject({ method: 'POST', url: `/api/sequences/${id}/execute`, headers: { cookie }, payload: { contactIds: [id] } });
      expect(execute.statusCode).toBe(403);
      // Reading needs no header.
      expect((await session(cookie)).statusCode).toBe(200);
    });

    it('accepts only the session cookie on internal routes, never an API token', async () => {
      for (const headers of [t.auth, { 'x-api-key': t.token }, {}, { cookie: 'nudge_session=forged-token-value' }, { cookie: `nudge_session=${'a'.repeat(43)}` }]) {
        const res = await t.app.inject({ method: 'GET', url: '/api/auth/session', headers });
        expect(res.statusCode, JSON.stringify(headers)).toBe(401);
        expect(res.json().code).toBe('unauthorized');
      }
      // And the cookie opens nothing under /api/v1.
      const cookie = await cookieFor();
      expect((await t.app.inject({ method: 'GET', url: '/api/v1/me', headers: { cookie } })).statusCode).toBe(401);
    });

    it('signs out: the session is deleted and the cookie cleared', async () => {
      const cookie = await cookieFor();
      const out = await t.app.inject({ method: 'POST', url: '/api/auth/logout', headers: { ...csrf, cookie } });
      expect(out.statusCode).toBe(200);
      expect(out.json()).toEqual({ success: true });
      expect(sessionCookie(out)).toMatchObject({ name: 'nudge_session', value: '', attributes: expect.arrayContaining(['Max-Age=0', 'HttpOnly']) });
      expect((await session(cookie)).statusCode).toBe(401);
      const hash = createHash('sha256').update(cookie.split('=')[1]!).digest('hex');
      expect(await db().selectFrom('user_sessions').select('id').where('token_hash', '=', hash).execute()).toEqual([]);
      // Signing out without a session is harmless.
      expect((await t.app.inject({ method: 'POST', url: '/api/auth/logout', headers: csrf })).statusCode).toBe(200);
    });

    it('keeps a session alive while it is used, ends it after 7 idle days, and after 30 days whatever the use', async () => {
      const start = clock.now();
      const idle = await cookieFor();
      const busy = await cookieFor();
      clock.advance(6 * day);
      const used = await session(busy);
      expect(used.statusCode).toBe(200);
      // The expiry slid forward: the cookie comes again with the lifetime left.
      expect(sessionCookie(used).attributes).toContain(`Max-Age=${7 * 86_400}`);
      expect(used.json().expiresAt).toBe(new Date(clock.now() + 7 * day).toISOString());
      clock.advance(1.5 * day);
      expect((await session(idle)).statusCode).toBe(401);
      for (let elapsed = 7.5; elapsed < 30 - 6; elapsed += 6) {
        expect((await session(busy)).statusCode, `day ${elapsed}`).toBe(200);
        clock.advance(6 * day);
      }
      expect((await session(busy)).statusCode).toBe(200);
      clock.set(start + 30 * day);
      expect((await session(busy)).statusCode).toBe(401);
    });
  });

  describe('throttling', () => {
    it('refuses more than NUDGE_LOGIN_ATTEMPTS attempts per email and address in 15 minutes, across API processes', async () => {
      await cheapUser(t.ctx, t.workspaceId, 'target@acme.example', 'Target');
      const attacker = '203.0.113.7';
      for (let i = 0; i < 3; i += 1) expect((await signIn('target@acme.example', `guess-${i}`, { ip: attacker })).statusCode).toBe(401);
      // A second API process on the same database counts the same attempts.
      const second = await buildApp(t.ctx);
      await second.ready();
      try {
        const refused = await second.inject({ method: 'POST', url: '/api/auth/login', remoteAddress: attacker, headers: csrf, payload: { email: 'target@acme.example', password } });
        expect(refused.statusCode).toBe(429);
        expect(refused.json().code).toBe('rate_limited');
        expect(Number(refused.headers['retry-after'])).toBe(15 * 60);
        expect(refused.headers['set-cookie']).toBeUndefined();
      } finally {
        await second.close();
      }
      // The owner, from their own address, is not locked out.
      expect((await signIn('target@acme.example', password, { ip: '198.51.100.20' })).statusCode).toBe(200);
      clock.advance(15 * 60_000);
      expect((await signIn('target@acme.example', password, { ip: attacker })).statusCode).toBe(200);
    });

    it('refuses an email guessed from many addresses once ten times the limit is reached', async () => {
      // One attempt per address, so ten per email: each guess costs a real scrypt check.
      const strict = await createTestApp(dialect, { clock, env: { NUDGE_LOGIN_ATTEMPTS: '1' } });
      try {
        await cheapUser(strict.ctx, strict.workspaceId, 'spread@acme.example', 'Spread');
        const attempt = (pass: string) => strict.app.inject({ method: 'POST', url: '/api/auth/login', remoteAddress: freshIp(), headers: csrf, payload: { email: 'spread@acme.example', password: pass } });
        for (let i = 0; i < 10; i += 1) expect((await attempt(`guess-${i}`)).statusCode).toBe(401);
        expect((await attempt(password)).statusCode).toBe(429);
        clock.advance(15 * 60_000);
        expect((await attempt(password)).statusCode).toBe(200);
      } finally {
        await strict.close();
      }
    });

    it('clears the count of an address once it signs in', async () => {
      await cheapUser(t.ctx, t.workspaceId, 'forgetful@acme.example', 'Forgetful');
      const ip = '198.51.100.30';
      for (let round = 0; round < 3; round += 1) {
        for (let i = 0; i < 2; i += 1) expect((await signIn('forgetful@acme.example', 'typo', { ip })).statusCode).toBe(401);
        expect((await signIn('forgetful@acme.example', password, { ip })).statusCode).toBe(200);
      }
    });
  });

  describe('POST /api/sequences/{id}/execute', () => {
    const post = (url: string, payload: unknown) => t.app.inject({ method: 'POST', url, headers: t.auth, payload: payload as object });
    async function sequence(body: object = {}): Promise<string> {
      const id = (await post('/api/v1/sequences', { name: `Dashboard ${Math.random()}`, steps: [{ type: 'sms', text: 'Hi' }, { type: 'sms', delay: { days: 1 }, text: 'Again' }], ...body })).json().sequence.id as string;
      expect((await post(`/api/v1/sequences/${id}/enable`, {})).statusCode).toBe(200);
      return id;
    }
    const contact = async (phone: string) => (await post('/api/v1/actions/create-contact', { phone })).json().id as string;
    const execute = (cookie: string, id: string, payload: unknown) => t.app.inject({ method: 'POST', url: `/api/sequences/${id}/execute`, headers: { ...csrf, cookie }, payload: payload as object });

    it('enrolls existing contacts by id, with one result each', async () => {
      const cookie = await cookieFor();
      const id = await sequence();
      const [ana, bo, out] = [await contact('+14155550601'), await contact('+14155550602'), await contact('+14155550603')];
      await db().updateTable('contacts').set({ sms_opted_out_at: clock.now() }).where('id', '=', out).execute();
      const theirs = (await t.app.inject({ method: 'POST', url: '/api/v1/actions/create-contact', headers: { authorization: `Bearer ${t.other.token}` }, payload: { phone: '+14155550604' } })).json().id as string;
      const res = await execute(cookie, id, { contactIds: [ana, bo, out, theirs, 'not-a-uuid', ana] });
      expect(res.statusCode, res.body).toBe(200);
      const body = res.json();
      expect(body).toMatchObject({ success: true, sequenceId: id, queued: 2, skipped: 4 });
      expect(body.results).toEqual([
        { index: 0, contactId: ana, status: 'queued', sessionId: expect.any(String) },
        { index: 1, contactId: bo, status: 'queued', sessionId: expect.any(String) },
        { index: 2, contactId: out, status: 'skipped', reason: 'unsubscribed' },
        { index: 3, contactId: theirs, status: 'skipped', reason: 'invalid', errors: { contact: ['no contact with this id in the workspace'] } },
        { index: 4, contactId: 'not-a-uuid', status: 'skipped', reason: 'invalid', errors: { contact: ['no contact with this id in the workspace'] } },
        { index: 5, contactId: ana, status: 'skipped', reason: 'already_running', sessionId: body.results[0].sessionId },
      ]);
      const sessions = await db().selectFrom('sessions').select(['contact_id', 'source']).where('definition_id', '=', id).execute();
      expect(sessions.map((s) => [s.contact_id, s.source]).sort()).toEqual([[ana, 'dashboard:execute'], [bo, 'dashboard:execute']].sort());
      expect(await db().selectFrom('sessions').select('id').where('contact_id', '=', theirs).execute()).toEqual([]);
    });

    it('refuses more than 500 ids, an empty list, a sequence not active and a call with no contact to enroll, writing nothing', async () => {
      const cookie = await cookieFor();
      const id = await sequence();
      const many = await execute(cookie, id, { contactIds: Array.from({ length: 501 }, () => '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b') });
      expect(many.statusCode).toBe(422);
      expect(many.json().errors).toEqual({ contactIds: ['contactIds must hold at most 500 items'] });
      expect(Object.keys((await execute(cookie, id, { contactIds: [] })).json().errors)).toEqual(['contactIds']);
      const nobody = await execute(cookie, id, { contactIds: ['0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b'] });
      expect(nobody.statusCode).toBe(422);
      expect(nobody.json()).toMatchObject({ code: 'business_rule', reason: 'no_enrollable_contacts', errors: { 'contactIds.0': ['no contact with this id in the workspace'] } });
      await post(`/api/v1/sequences/${id}/disable`, {});
      const paused = await execute(cookie, id, { contactIds: [await contact('+14155550611')] });
      expect(paused.json()).toMatchObject({ code: 'business_rule', reason: 'sequence_not_active' });
      expect(await db().selectFrom('sessions').select('id').where('definition_id', '=', id).execute()).toEqual([]);
    });

    it("answers 404 for another workspace's sequence, whatever contacts are given", async () => {
      const id = await sequence();
      const ana = await contact('+14155550621');
      const theirs = await cookieFor('admin@globex.example');
      const res = await execute(theirs, id, { contactIds: [ana] });
      expect(res.statusCode).toBe(404);
      expect((await execute(theirs, 'not-an-id', { contactIds: [ana] })).statusCode).toBe(404);
      expect(await db().selectFrom('sessions').select('id').where('definition_id', '=', id).execute()).toEqual([]);
    });

    it('honours the A/B split like every other enrollment path', async () => {
      const cookie = await cookieFor();
      const a = await sequence();
      const b = await sequence();
      expect((await t.app.inject({ method: 'PUT', url: `/api/v1/sequences/${a}/ab-test`, headers: t.auth, payload: { variantSequenceId: b, splitPercent: 50 } })).statusCode).toBe(200);
      const ids: string[] = [];
      for (let i = 0; i < 40; i += 1) ids.push(await contact(`+1415555${String(700 + i).padStart(4, '0')}`));
      const res = await execute(cookie, a, { contactIds: ids });
      expect(res.json().queued).toBe(40);
      const sessions = await db().selectFrom('sessions').select(['contact_id', 'definition_id', 'ab_variant', 'ab_parent_id']).where('ab_parent_id', '=', a).execute();
      expect(sessions).toHaveLength(40);
      for (const s of sessions) {
        const side = abSide(a, s.contact_id, 50);
        expect(s).toEqual({ contact_id: s.contact_id, definition_id: side === 'B' ? b : a, ab_variant: side, ab_parent_id: a });
      }
    });
  });
});
