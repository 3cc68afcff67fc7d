import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createToken } from '../../src/engine/auth-service.js';
import { createOrUpsertContact, findOrCreateContactByPhone } from '../../src/engine/contact-service.js';
import { createTestApp, enabledSequence, ManualClock, type TestApp } from '../support/app.js';
import { createTestWorker } from '../support/engine.js';
import { dialects } from '../support/databases.js';

interface Json {
  [key: string]: unknown;
}

function client(t: TestApp, headers: Record<string, string> = t.auth) {
  return async (action: string, body: unknown, extraHeaders: Record<string, string> = {}) => {
    const res = await t.app.inject({ method: 'POST', url: `/api/v1/actions/${action}`, headers: { ...headers, ...extraHeaders }, payload: body as Json });
    return { status: res.statusCode, body: res.json() as Json & { data?: Json[] }, headers: res.headers };
  };
}

async function contactCount(t: TestApp): Promise<number> {
  const row = await t.ctx.database.db
    .selectFrom('contacts')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

async function setColumns(t: TestApp, id: string, values: { last_message_at?: number | null; opted_out_at?: number | null }): Promise<void> {
  await t.ctx.database.db.updateTable('contacts').set(values).where('id', '=', id).execute();
}

describe.each(dialects)('contacts and tags on %s', (dialect) => {
  let t: TestApp;
  let post: ReturnType<typeof client>;
  beforeAll(async () => {
    t = await createTestApp(dialect);
    post = client(t);
  });
  afterAll(async () => t.close());

  describe('create-contact', () => {
    it('answers 201 with the contact, its phone in E.164 read in the default country', async () => {
      const res = await post('create-contact', { phone: '(415) 555-0100', name: 'Ana Silva', email: 'Ana@Example.com', tags: 'vip, lead', metadata: { plan: 'pro' } });
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({
        phone: '+14155550100',
        email: 'ana@example.com',
        name: 'Ana Silva',
        first_name: 'Ana',
        last_name: 'Silva',
        source: 'api',
        opted_out_at: null,
        last_message_at: null,
        total_messages: 0,
        tags: ['lead', 'vip'],
        metadata: { plan: 'pro' },
      });
      expect(res.body.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(res.body.opted_in_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      expect(res.body.created_at).toBe(res.body.updated_at);
    });

    it('accepts tags as an array', async () => {
      const res = await post('create-contact', { phone: '+14155550102', tags: ['Newsletter', 'big  spender'] });
      expect(res.status).toBe(201);
      expect(res.body.tags).toEqual(['big spender', 'Newsletter']);
    });

    it('upserts by phone: the same number written differently updates the one contact, merging metadata and adding tags', async () => {
      const first = await post('create-contact', { phone: '+14155550101', name: 'Bo', tags: 'a', metadata: { x: 1 } });
      const before = await contactCount(t);
      const second = await post('create-contact', { phone: '415.555.0101', name: 'Bo Diddley', email: 'bo@example.com', tags: ['b'], metadata: { y: 2 } });
      expect(second.status).toBe(201);
      expect(second.body.id).toBe(first.body.id);
      expect(second.body).toMatchObject({ name: 'Bo Diddley', email: 'bo@example.com', tags: ['a', 'b'], metadata: { x: 1, y: 2 }, source: 'api' });
      expect(second.body.created_at).toBe(first.body.created_at);
      expect(await contactCount(t)).toBe(before);
    });

    it('makes one contact from twenty concurrent calls for one phone', async () => {
      const before = await contactCount(t);
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => post('create-contact', { phone: '+14155550199', name: `Caller ${i}`, tags: `t${i % 3}`, metadata: { [`k${i}`]: i } })),
      );
      expect(results.map((r) => r.status)).toEqual(Array(20).fill(201));
      expect(new Set(results.map((r) => r.body.id)).size).toBe(1);
      expect(await contactCount(t)).toBe(before + 1);
      const final = await post('get-contact', { phone: '+14155550199' });
      // Every call's metadata key survived: the merges were serialised, none lost.
      expect(Object.keys(final.body.metadata as Json).sort()).toEqual(Array.from({ length: 20 }, (_, i) => `k${i}`).sort());
      expect(final.body.tags).toEqual(['t0', 't1', 't2']);
    });

    it('answers 422 naming email when the email belongs to another contact, and writes nothing', async () => {
      await post('create-contact', { phone: '+14155550110', email: 'taken@example.com' });
      const before = await contactCount(t);
      const res = await post('create-contact', { phone: '+14155550111', email: 'TAKEN@example.com', tags: 'should-not-exist' });
      expect(res.status).toBe(422);
      expect(res.body.code).toBe('validation_failed');
      expect(Object.keys(res.body.errors as Json)).toEqual(['email']);
      expect(res.body.error).toMatch(/^email /);
      expect(await contactCount(t)).toBe(before);
      const tags = await post('list-tags', {});
      expect((tags.body.data ?? []).map((tag) => tag.name)).not.toContain('should-not-exist');
    });

    it('replays the first answer for a repeated Idempotency-Key', async () => {
      const key = { 'idempotency-key': 'create-0103' };
      const first = await post('create-contact', { phone: '+14155550103', name: 'Once' }, key);
      const again = await post('create-contact', { phone: '+14155550103', name: 'Once' }, key);
      expect(again.status).toBe(201);
      expect(again.body).toEqual(first.body);
      expect(again.headers['idempotent-replayed']).toBe('true');
    });
  });

  describe('bad input', () => {
    const cases: Array<[string, string, number, string | null]> = [
      ['malformed JSON', '{"phone": "+14155550120",', 400, null],
      ['a wrong type (metadata not an object)', JSON.stringify({ phone: '+14155550121', metadata: 'plan=pro' }), 422, 'metadata'],
      ['a wrong type (name an object)', JSON.stringify({ phone: '+14155550122', name: { first: 'Ana' } }), 422, 'name'],
      ['a wrong type (tags an object)', JSON.stringify({ phone: '+14155550127', tags: { vip: true } }), 422, 'tags'],
      ['a missing phone', JSON.stringify({ name: 'No Phone' }), 422, 'phone'],
      ['an empty phone', JSON.stringify({ phone: '', name: 'No Phone' }), 422, 'phone'],
      ['an unreadable phone', JSON.stringify({ phone: 'call me maybe' }), 422, 'phone'],
      ['an unknown field', JSON.stringify({ phone: '+14155550123', nickname: 'Ana' }), 422, 'nickname'],
      ['a 100 KB name', JSON.stringify({ phone: '+14155550124', name: 'x'.repeat(100_000) }), 422, 'name'],
      ['a 1 MB string', JSON.stringify({ phone: '+14155550125', name: 'x'.repeat(1024 * 1024) }), 413, null],
      ['metadata over 16 KiB', JSON.stringify({ phone: '+14155550126', metadata: { blob: 'x'.repeat(17 * 1024) } }), 422, 'metadata'],
      ['an overlong tag inside an array', JSON.stringify({ phone: '+14155550128', tags: ['ok', 'x'.repeat(101)] }), 422, 'tags'],
    ];

    it.each(cases)('answers %s with a clear 4xx naming the field and leaves the contacts table unchanged', async (_what, payload, status, field) => {
      const before = await contactCount(t);
      const res = await t.app.inject({
        method: 'POST',
        url: '/api/v1/actions/create-contact',
        headers: { ...t.auth, 'content-type': 'application/json' },
        payload,
      });
      expect(res.statusCode).toBe(status);
      const body = res.json() as Json;
      expect(body.code).toEqual(expect.any(String));
      expect(body.error).toBe(body.message);
      if (field !== null) {
        expect(body.code).toBe('validation_failed');
        expect(Object.keys(body.errors as Json)).toContain(field);
        expect(String(body.error)).toContain(field);
      }
      expect(await contactCount(t)).toBe(before);
    });

    it('refuses an update with a bad field without changing the contact', async () => {
      const created = await post('create-contact', { phone: '+14155550129', name: 'Kept', tags: 'kept' });
      const res = await post('update-contact', { contact_id: created.body.id, name: 'Changed', tags: 'new', timezone: 'Mars/Olympus' });
      expect(res.status).toBe(422);
      expect(Object.keys(res.body.errors as Json)).toEqual(['timezone']);
      const after = await post('get-contact', { contact_id: created.body.id });
      expect(after.body).toMatchObject({ name: 'Kept', tags: ['kept'] });
    });
  });

  describe('update-contact', () => {
    it('replaces tags, merges metadata and clears fields given as ""', async () => {
      const created = await post('create-contact', {
        phone: '+14155550130',
        name: 'Cy Young',
        email: 'cy@example.com',
        tags: 'a, b',
        metadata: { plan: 'pro', seats: 3 },
      });
      const res = await post('update-contact', {
        contact_id: created.body.id,
        email: '',
        timezone: 'europe/lisbon',
        language: 'pt_BR',
        tags: 'b, C',
        metadata: { seats: 5, plan: '', region: 'eu' },
      });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({
        id: created.body.id,
        phone: '+14155550130',
        email: null,
        name: 'Cy Young',
        timezone: 'Europe/Lisbon',
        language: 'pt_BR',
        tags: ['b', 'C'],
        metadata: { seats: 5, region: 'eu' },
      });
      const cleared = await post('update-contact', { phone: '(415) 555-0130', tags: '', name: '' });
      expect(cleared.status).toBe(200);
      expect(cleared.body).toMatchObject({ tags: [], name: null, first_name: 'Cy', metadata: { seats: 5, region: 'eu' } });
    });

    it('finds the contact by phone, or by contact_id and then takes phone as the new phone', async () => {
      const created = await post('create-contact', { phone: '+14155550131' });
      const renamed = await post('update-contact', { phone: '4155550131', first_name: 'Di', last_name: 'Ng' });
      expect(renamed.body).toMatchObject({ id: created.body.id, name: 'Di Ng', first_name: 'Di', last_name: 'Ng' });
      const moved = await post('update-contact', { contact_id: created.body.id, phone: '+1 415 555 0132' });
      expect(moved.status).toBe(200);
      expect(moved.body.phone).toBe('+14155550132');
    });

    it('answers 422 naming email when the new email belongs to another contact', async () => {
      await post('create-contact', { phone: '+14155550133', email: 'owner@example.com' });
      const other = await post('create-contact', { phone: '+14155550134', name: 'Other', tags: 'x' });
      const res = await post('update-contact', { contact_id: other.body.id, email: 'owner@example.com', name: 'Changed', tags: 'y' });
      expect(res.status).toBe(422);
      expect(Object.keys(res.body.errors as Json)).toEqual(['email']);
      const after = await post('get-contact', { contact_id: other.body.id });
      expect(after.body).toMatchObject({ name: 'Other', email: null, tags: ['x'] });
    });

    it('answers 422 naming phone when the new phone belongs to another contact', async () => {
      await post('create-contact', { phone: '+14155550135' });
      const other = await post('create-contact', { phone: '+14155550136' });
      const res = await post('update-contact', { contact_id: other.body.id, phone: '+14155550135' });
      expect(res.status).toBe(422);
      expect(Object.keys(res.body.errors as Json)).toEqual(['phone']);
    });

    it('refuses to leave a contact with neither phone nor email', async () => {
      const created = await post('create-contact', { phone: '+14155550137' });
      const res = await post('update-contact', { contact_id: created.body.id, phone: '' });
      expect(res.status).toBe(422);
      expect(Object.keys(res.body.errors as Json)).toEqual(['phone']);
    });

    it('answers 422 naming contact_id without a contact reference and 404 for an unknown contact', async () => {
      const missing = await post('update-contact', { name: 'Nobody' });
      expect(missing.status).toBe(422);
      expect(Object.keys(missing.body.errors as Json)).toEqual(['contact_id']);
      const unknown = await post('update-contact', { contact_id: '01936f3e-8a5c-7b2e-9c1d-2f3a4b5c6d7e', name: 'Nobody' });
      expect(unknown.status).toBe(404);
      expect(unknown.body.code).toBe('not_found');
      const byPhone = await post('update-contact', { phone: '+14155559999', name: 'Nobody' });
      expect(byPhone.status).toBe(404);
    });
  });

  describe('get-contact', () => {
    it('finds a contact by contact_id, phone or email, with every documented field', async () => {
      const created = await post('create-contact', { phone: '+14155550140', email: 'get@example.com', name: 'Gus', tags: 'vip', metadata: { a: 1 } });
      for (const ref of [{ contact_id: created.body.id }, { phone: '415-555-0140' }, { email: 'GET@example.com' }, { contact_id: '', phone: '', email: 'get@example.com' }]) {
        const res = await post('get-contact', ref);
        expect(res.status).toBe(200);
        expect(res.body).toEqual(created.body);
      }
      expect(Object.keys(created.body).sort()).toEqual(
        [
          'created_at',
          'email',
          'first_name',
          'id',
          'language',
          'last_message_at',
          'last_name',
          'metadata',
          'name',
          'opted_in_at',
          'opted_out_at',
          'phone',
          'source',
          'tags',
          'timezone',
          'total_messages',
          'updated_at',
        ].sort(),
      );
    });

    it('answers 404 for an unknown contact and 422 when no reference is given', async () => {
      expect((await post('get-contact', { contact_id: 'not-a-uuid' })).status).toBe(404);
      expect((await post('get-contact', { email: 'nobody@example.com' })).status).toBe(404);
      const none = await post('get-contact', {});
      expect(none.status).toBe(422);
      expect(none.body.error).toBe('contact_id is required: name the contact by contact_id, phone or email');
    });

    it('serves the same contact at GET /api/v1/contacts/{id}', async () => {
      const created = await post('create-contact', { phone: '+14155550141' });
      const res = await t.app.inject({ method: 'GET', url: `/api/v1/contacts/${String(created.body.id)}`, headers: t.auth });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual(created.body);
      const missing = await t.app.inject({ method: 'GET', url: '/api/v1/contacts/01936f3e-8a5c-7b2e-9c1d-2f3a4b5c6d7e', headers: t.auth });
      expect(missing.statusCode).toBe(404);
    });
  });

  describe('tags', () => {
    it('add-tag creates the tag once, is idempotent, and reuses the first spelling ignoring case', async () => {
      const created = await post('create-contact', { phone: '+14155550150' });
      const first = await post('add-tag', { contact_id: created.body.id, tag: 'Gold' });
      expect(first.status).toBe(200);
      expect(first.body).toEqual({ contact_id: created.body.id, tag: 'Gold', tags: ['Gold'] });
      const again = await post('add-tag', { phone: '+1 415 555 0150', tag: 'GOLD' });
      expect(again.body).toEqual({ contact_id: created.body.id, tag: 'Gold', tags: ['Gold'] });
      const tags = await post('list-tags', {});
      expect((tags.body.data ?? []).filter((tag) => String(tag.name).toLowerCase() === 'gold')).toHaveLength(1);
    });

    it('remove-tag removes the tag and is harmless for a tag the contact lacks or nobody has', async () => {
      const created = await post('create-contact', { phone: '+14155550151', tags: 'silver, bronze' });
      const removed = await post('remove-tag', { contact_id: created.body.id, tag: 'SILVER' });
      expect(removed.status).toBe(200);
      expect(removed.body).toEqual({ contact_id: created.body.id, tag: 'silver', tags: ['bronze'] });
      const twice = await post('remove-tag', { contact_id: created.body.id, tag: 'silver' });
      expect(twice.body.tags).toEqual(['bronze']);
      const never = await post('remove-tag', { contact_id: created.body.id, tag: 'never-existed' });
      expect(never.status).toBe(200);
      expect(never.body.tags).toEqual(['bronze']);
    });

    it('add-tag and remove-tag answer 404 for an unknown contact and 422 naming tag for a bad tag', async () => {
      expect((await post('add-tag', { phone: '+14155559998', tag: 'x' })).status).toBe(404);
      expect((await post('remove-tag', { contact_id: '01936f3e-8a5c-7b2e-9c1d-2f3a4b5c6d7e', tag: 'x' })).status).toBe(404);
      const created = await post('create-contact', { phone: '+14155550152' });
      for (const tag of ['', '   ', 'a,b', 'x'.repeat(101)]) {
        const res = await post('add-tag', { contact_id: created.body.id, tag });
        expect(res.status).toBe(422);
        expect(Object.keys(res.body.errors as Json)).toEqual(['tag']);
      }
      const missing = await post('add-tag', { contact_id: created.body.id });
      expect(missing.status).toBe(422);
      expect(Object.keys(missing.body.errors as Json)).toEqual(['tag']);
    });

    it('list-tags counts the contacts carrying each tag', async () => {
      await post('create-contact', { phone: '+14155550153', tags: 'counted' });
      await post('create-contact', { phone: '+14155550154', tags: 'counted, lonely' });
      await post('remove-tag', { phone: '+14155550154', tag: 'lonely' });
      const res = await post('list-tags', {});
      expect(res.status).toBe(200);
      const byName = new Map((res.body.data ?? []).map((tag) => [tag.name, tag]));
      expect(byName.get('counted')).toMatchObject({ contacts_count: 2 });
      expect(byName.get('lonely')).toMatchObject({ contacts_count: 0 });
      expect(byName.get('counted')?.id).toEqual(expect.any(String));
      expect(byName.get('counted')?.created_at).toMatch(/Z$/);
      const names = (res.body.data ?? []).map((tag) => String(tag.name).toLowerCase());
      expect(names).toEqual([...names].sort());
      const bodyless = await t.app.inject({ method: 'POST', url: '/api/v1/actions/list-tags', headers: t.auth });
      expect(bodyless.statusCode).toBe(200);
      expect(bodyless.json()).toEqual(res.body);
    });

    it('answers concurrent add-tag and remove-tag requests each on its own: stops run, failures change nothing', async () => {
      // On SQLite concurrent requests share one commit, each under its own savepoint.
      const sequence = await enabledSequence(t, {
        name: 'Trial until customer',
        stopCondition: { type: 'has_tag', value: 'customer' },
        steps: [{ type: 'sms', text: 'Hi' }, { type: 'sms', delay: { days: 1 }, text: 'Still there?' }],
      });
      const phones = Array.from({ length: 24 }, (_, i) => `+1415555${String(7100 + i)}`);
      for (const phone of phones) expect((await post('trigger-sequence', { sequence_id: sequence, phone })).status).toBe(201);
      await createTestWorker(t.ctx).runSchedulerOnce();

      const answers = await Promise.all([
        ...phones.map((phone) => post('add-tag', { phone, tag: 'Customer' })),
        ...phones.slice(0, 6).map((phone) => post('add-tag', { phone, tag: 'customer' })),
        ...['+14155557990', '+14155557991'].map((phone) => post('add-tag', { phone, tag: 'customer' })),
      ]);
      expect(answers.slice(0, 30).map((a) => a.status)).toEqual(Array(30).fill(200));
      expect(answers.slice(30).map((a) => a.status)).toEqual([404, 404]);
      for (const answer of answers.slice(0, 30)) expect(answer.body.tags).toEqual(['Customer']);
      expect(await contactCount(t)).toBeGreaterThanOrEqual(phones.length);
      expect((await t.ctx.database.db.selectFrom('contacts').select('id').where('phone', 'in', ['+14155557990', '+14155557991']).execute()).length).toBe(0);

      const sessions = await t.ctx.database.db.selectFrom('sessions').select(['status', 'end_reason', 'active', 'wake_at']).where('definition_id', '=', sequence).execute();
      expect(sessions).toHaveLength(phones.length);
      for (const s of sessions) expect(s).toEqual({ status: 'stopped', end_reason: 'stop_condition:has_tag', active: 0, wake_at: null });

      const removed = await Promise.all(phones.map((phone, i) => post('remove-tag', { phone, tag: i % 2 === 0 ? 'CUSTOMER' : 'never-existed' })));
      expect(removed.map((r) => r.status)).toEqual(Array(phones.length).fill(200));
      removed.forEach((r, i) => expect(r.body.tags).toEqual(i % 2 === 0 ? [] : ['Customer']));
      const tags = await post('list-tags', {});
      expect((tags.body.data ?? []).find((tag) => tag.name === 'Customer')).toMatchObject({ contacts_count: phones.length / 2 });
    });
  });

  describe('workspace isolation', () => {
    it("answers 404 to another workspace's token for every contact of the first", async () => {
      const created = await post('create-contact', { phone: '+14155550160', email: 'private@example.com', tags: 'private' });
      const id = String(created.body.id);
      const other = client(t, { authorization: `Bearer ${t.other.token}` });
      for (const ref of [{ contact_id: id }, { phone: '+14155550160' }, { email: 'private@example.com' }]) {
        expect((await other('get-contact', ref)).status).toBe(404);
      }
      expect((await other('update-contact', { contact_id: id, name: 'Hijacked' })).status).toBe(404);
      expect((await other('update-contact', { phone: '+14155550160', name: 'Hijacked' })).status).toBe(404);
      expect((await other('add-tag', { contact_id: id, tag: 'hijacked' })).status).toBe(404);
      expect((await other('remove-tag', { contact_id: id, tag: 'private' })).status).toBe(404);
      const byId = await t.app.inject({ method: 'GET', url: `/api/v1/contacts/${id}`, headers: { authorization: `Bearer ${t.other.token}` } });
      expect(byId.statusCode).toBe(404);
      expect((await other('search-contacts', { query: '4155550160' })).body.data).toEqual([]);
      const list = await t.app.inject({ method: 'GET', url: '/api/v1/contacts', headers: { authorization: `Bearer ${t.other.token}` } });
      expect((list.json() as { data: Json[] }).data.map((c) => c.id)).not.toContain(id);
      expect(((await other('list-tags', {})).body.data ?? []).map((tag) => tag.name)).not.toContain('private');
      const unchanged = await post('get-contact', { contact_id: id });
      expect(unchanged.body).toEqual(created.body);
    });

    it('keeps phones unique per workspace, not across workspaces', async () => {
      const mine = await post('create-contact', { phone: '+14155550161' });
      const other = client(t, { authorization: `Bearer ${t.other.token}` });
      const theirs = await other('create-contact', { phone: '+14155550161' });
      expect(theirs.status).toBe(201);
      expect(theirs.body.id).not.toBe(mine.body.id);
    });
  });

  describe('scopes', () => {
    it('answers 403 naming contacts:write to a token that may only read', async () => {
      const reader = await createToken(t.ctx, { workspaceId: t.workspaceId, name: 'reader', scopes: ['contacts:read'], rateLimit: 1_000_000 });
      const asReader = client(t, { authorization: `Bearer ${reader.token}` });
      const created = await post('create-contact', { phone: '+14155550170' });
      const before = await contactCount(t);
      for (const [action, body] of [
        ['create-contact', { phone: '+14155550171' }],
        ['update-contact', { contact_id: created.body.id, name: 'x' }],
        ['add-tag', { contact_id: created.body.id, tag: 'x' }],
        ['remove-tag', { contact_id: created.body.id, tag: 'x' }],
      ] as const) {
        const res = await asReader(action, body);
        expect(res.status).toBe(403);
        expect(res.body.code).toBe('forbidden');
        expect(res.body.error).toContain('contacts:write');
        expect(res.body.missing_scope).toBe('contacts:write');
      }
      expect(await contactCount(t)).toBe(before);
      expect((await asReader('get-contact', { contact_id: created.body.id })).status).toBe(200);
      expect((await asReader('search-contacts', {})).status).toBe(200);
      expect((await asReader('list-tags', {})).status).toBe(200);
    });

    it('answers 403 naming contacts:read to a token without it', async () => {
      const writer = await createToken(t.ctx, { workspaceId: t.workspaceId, name: 'sequencer', scopes: ['sequences:execute'], rateLimit: 1_000_000 });
      const headers = { authorization: `Bearer ${writer.token}` };
      const res = await client(t, headers)('get-contact', { phone: '+14155550170' });
      expect(res.status).toBe(403);
      expect(res.body.missing_scope).toBe('contacts:read');
      const list = await t.app.inject({ method: 'GET', url: '/api/v1/contacts', headers });
      expect(list.statusCode).toBe(403);
    });
  });

  it('documents every operation in the OpenAPI document with examples', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/api/v1/openapi.json' });
    const doc = res.json() as { paths: Record<string, Record<string, Json>>; components: { schemas: Record<string, unknown> } };
    const operations: Array<[string, string, string]> = [
      ['/api/v1/actions/create-contact', 'post', 'createContact'],
      ['/api/v1/actions/update-contact', 'post', 'updateContact'],
      ['/api/v1/actions/get-contact', 'post', 'getContact'],
      ['/api/v1/actions/search-contacts', 'post', 'searchContacts'],
      ['/api/v1/actions/add-tag', 'post', 'addTag'],
      ['/api/v1/actions/remove-tag', 'post', 'removeTag'],
      ['/api/v1/actions/list-tags', 'post', 'listTags'],
      ['/api/v1/contacts', 'get', 'listContacts'],
      ['/api/v1/contacts/{id}', 'get', 'getContactById'],
    ];
    for (const [path, method, operationId] of operations) {
      const op = doc.paths[path]?.[method];
      expect(op, `${method} ${path}`).toBeDefined();
      expect(op!.operationId).toBe(operationId);
      expect(op!.summary).toEqual(expect.any(String));
      expect(JSON.stringify(op!.responses)).toContain('"429"');
      if (method === 'post') expect(JSON.stringify(op!.requestBody)).toContain('example');
    }
    expect(doc.components.schemas.Contact).toBeDefined();
    expect(Object.keys(doc.paths['/api/v1/actions/create-contact']!.post!.responses as Json)).toContain('201');
  });
});

describe.each(dialects)('searching and listing contacts on %s', (dialect) => {
  let t: TestApp;
  let post: ReturnType<typeof client>;
  const clock = new ManualClock(Date.UTC(2026, 4, 1));
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    t = await createTestApp(dialect, { clock });
    post = client(t);
    const people: Array<[string, string, Json]> = [
      ['ana', '+14155550201', { name: 'Ana Silva', email: 'ana@acme.test', tags: 'vip' }],
      ['andre', '+14155550202', { name: 'André Souza', email: 'andre@globex.test', tags: 'vip, lead' }],
      ['bea', '+442079460203', { name: 'Bea Silva', email: 'bea@acme.test' }],
      ['carl', '+14155550204', { name: 'Carl 100%_off', email: 'carl@acme.test', tags: 'lead' }],
      ['dana', '+14155550205', { name: 'Dana Silva' }],
    ];
    for (const [key, phone, fields] of people) {
      clock.advance(60_000);
      ids[key] = (await createOrUpsertContact(t.ctx, t.workspaceId, { phone, ...fields })).contact.id;
    }
    // Messaging history: Bea most recent, then Ana; André, Carl and Dana never.
    await setColumns(t, ids.ana!, { last_message_at: Date.UTC(2026, 4, 10) });
    await setColumns(t, ids.bea!, { last_message_at: Date.UTC(2026, 4, 11) });
    await setColumns(t, ids.carl!, { opted_out_at: Date.UTC(2026, 4, 12) });
  });
  afterAll(async () => t.close());

  const names = (res: { body: { data?: Json[] } }) => (res.body.data ?? []).map((c) => c.name);

  it('ranks the most recently messaged first, never-messaged last, then the newest', async () => {
    const res = await post('search-contacts', {});
    expect(res.status).toBe(200);
    expect(names(res)).toEqual(['Bea Silva', 'Ana Silva', 'Dana Silva', 'Carl 100%_off', 'André Souza']);
  });

  it('requires every word of the query to match, ignoring case and accents', async () => {
    expect(names(await post('search-contacts', { query: 'SILVA' }))).toEqual(['Bea Silva', 'Ana Silva', 'Dana Silva']);
    expect(names(await post('search-contacts', { query: 'silva bea' }))).toEqual(['Bea Silva']);
    // Words match anywhere, not only at a word's start: "ana" is in "Dana" too.
    expect(names(await post('search-contacts', { query: 'ana silva' }))).toEqual(['Ana Silva', 'Dana Silva']);
    expect(names(await post('search-contacts', { query: 'andre' }))).toEqual(['André Souza']);
    expect(names(await post('search-contacts', { query: 'ANDRÉ' }))).toEqual(['André Souza']);
    expect(names(await post('search-contacts', { query: 'silva nobody' }))).toEqual([]);
  });

  it('matches phone fragments however they are written, and email text', async () => {
    expect(names(await post('search-contacts', { query: '(415) 555-0202' }))).toEqual(['André Souza']);
    expect(names(await post('search-contacts', { query: '+44 20' }))).toEqual(['Bea Silva']);
    expect(names(await post('search-contacts', { query: 'globex' }))).toEqual(['André Souza']);
  });

  it('treats LIKE wildcards in the query as plain characters', async () => {
    expect(names(await post('search-contacts', { query: '%' }))).toEqual(['Carl 100%_off']);
    expect(names(await post('search-contacts', { query: '_' }))).toEqual(['Carl 100%_off']);
    expect(names(await post('search-contacts', { query: '0%_o' }))).toEqual(['Carl 100%_off']);
  });

  it('filters by tag ignoring case and by exact email', async () => {
    expect(names(await post('search-contacts', { tag: 'VIP' }))).toEqual(['Ana Silva', 'André Souza']);
    expect(names(await post('search-contacts', { tag: 'lead', query: 'carl' }))).toEqual(['Carl 100%_off']);
    expect(names(await post('search-contacts', { tag: 'no-such-tag' }))).toEqual([]);
    expect(names(await post('search-contacts', { email: 'BEA@acme.test' }))).toEqual(['Bea Silva']);
    expect(names(await post('search-contacts', { email: 'acme.test' }))).toEqual([]);
  });

  it('answers 422 naming the field for a bad search', async () => {
    const tooLong = await post('search-contacts', { query: 'x'.repeat(201) });
    expect(tooLong.status).toBe(422);
    expect(Object.keys(tooLong.body.errors as Json)).toEqual(['query']);
    const badLimit = await post('search-contacts', { limit: 51 });
    expect(badLimit.status).toBe(422);
    expect(Object.keys(badLimit.body.errors as Json)).toEqual(['limit']);
  });

  it('filters the contact list by tag, email, phone, query, opt-out and creation time', async () => {
    const list = async (query: string) => {
      const res = await t.app.inject({ method: 'GET', url: `/api/v1/contacts?${query}`, headers: t.auth });
      expect(res.statusCode).toBe(200);
      return (res.json() as { data: Json[] }).data.map((c) => c.name);
    };
    expect(await list('tag=vip')).toEqual(['Ana Silva', 'André Souza']);
    expect(await list('email=ANA%40acme.test')).toEqual(['Ana Silva']);
    expect(await list(`phone=${encodeURIComponent('(415) 555-0205')}`)).toEqual(['Dana Silva']);
    expect(await list('query=silva')).toEqual(['Ana Silva', 'Bea Silva', 'Dana Silva']);
    expect(await list('opted_out=true')).toEqual(['Carl 100%_off']);
    expect(await list('opted_out=false')).toEqual(['Ana Silva', 'André Souza', 'Bea Silva', 'Dana Silva']);
    // Created a minute apart from 00:01: André at 00:02, Bea 00:03, Carl 00:04.
    expect(await list('created_after=2026-05-01T00:02:00Z&created_before=2026-05-01T00:05:00Z')).toEqual(['Bea Silva', 'Carl 100%_off']);
  });

  it('answers 422 naming the parameter for a bad list request', async () => {
    for (const [query, field] of [
      ['limit=0', 'limit'],
      ['limit=201', 'limit'],
      ['cursor=not-a-cursor', 'cursor'],
      ['created_after=yesterday', 'created_after'],
      ['opted_out=maybe', 'opted_out'],
      ['phone=call-me', 'phone'],
      ['colour=blue', 'colour'],
    ] as const) {
      const res = await t.app.inject({ method: 'GET', url: `/api/v1/contacts?${query}`, headers: t.auth });
      expect(res.statusCode, query).toBe(422);
      expect(Object.keys((res.json() as { errors: Json }).errors), query).toContain(field);
    }
  });

  it('caps search at 50 results and walks every contact exactly once through the pages', async () => {
    for (let i = 0; i < 60; i++) {
      clock.advance(1000);
      await createOrUpsertContact(t.ctx, t.workspaceId, { phone: `+1415555${String(1000 + i)}`, name: `Bulk Person ${i}`, tags: 'bulk' });
    }
    const search = await post('search-contacts', { query: 'bulk' });
    expect(search.body.data).toHaveLength(50);
    expect((await post('search-contacts', { query: 'bulk', limit: 7 })).body.data).toHaveLength(7);

    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const url: string = `/api/v1/contacts?tag=bulk&limit=7${cursor ? `&cursor=${cursor}` : ''}`;
      const res = await t.app.inject({ method: 'GET', url, headers: t.auth });
      expect(res.statusCode).toBe(200);
      const page = res.json() as { data: Json[]; next_cursor: string | null };
      expect(page.data.length).toBeLessThanOrEqual(7);
      seen.push(...page.data.map((c) => String(c.id)));
      cursor = page.next_cursor;
      pages += 1;
    } while (cursor !== null && pages < 20);
    expect(pages).toBe(9);
    expect(seen).toHaveLength(60);
    expect(new Set(seen).size).toBe(60);
    expect(seen).toEqual([...seen].sort());

    const all = await t.app.inject({ method: 'GET', url: '/api/v1/contacts?limit=200', headers: t.auth });
    const body = all.json() as { data: Json[]; next_cursor: string | null };
    expect(body.data).toHaveLength(65);
    expect(body.next_cursor).toBeNull();
    const firstPage = await t.app.inject({ method: 'GET', url: '/api/v1/contacts', headers: t.auth });
    expect((firstPage.json() as { data: Json[] }).data).toHaveLength(50);
  });
});

describe.each(dialects)('the default country and the engine upsert on %s', (dialect) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(dialect, { env: { NUDGE_DEFAULT_COUNTRY: 'GB' } });
  });
  afterAll(async () => t.close());

  it('reads a phone without + in NUDGE_DEFAULT_COUNTRY', async () => {
    const res = await t.app.inject({ method: 'POST', url: '/api/v1/actions/create-contact', headers: t.auth, payload: { phone: '020 7946 0018' } });
    expect(res.statusCode).toBe(201);
    expect(res.json().phone).toBe('+442079460018');
    const get = await t.app.inject({ method: 'POST', url: '/api/v1/actions/get-contact', headers: t.auth, payload: { phone: '+44 20 7946 0018' } });
    expect(get.json().id).toBe(res.json().id);
  });

  it('findOrCreateContactByPhone creates once with its source and opt-in, then returns the contact unchanged', async () => {
    const first = await findOrCreateContactByPhone(t.ctx, t.workspaceId, '07700 900123', { source: 'trigger-sequence', optedIn: true });
    expect(first.created).toBe(true);
    expect(first.contact).toMatchObject({ phone: '+447700900123', source: 'trigger-sequence', tags: [] });
    expect(first.contact.opted_in_at).not.toBeNull();
    const again = await findOrCreateContactByPhone(t.ctx, t.workspaceId, '+447700900123', { source: 'other', optedIn: false });
    expect(again).toEqual({ contact: first.contact, created: false });
    const noOptIn = await findOrCreateContactByPhone(t.ctx, t.workspaceId, '+447700900124', { source: 'trigger-flow', optedIn: false });
    expect(noOptIn.contact.opted_in_at).toBeNull();
    await expect(findOrCreateContactByPhone(t.ctx, t.workspaceId, 'nope', { source: 'x', optedIn: true })).rejects.toMatchObject({ code: 'validation_failed', errors: { phone: expect.any(Array) } });
  });

  it("findOrCreateContactByPhone joins the caller's transaction, so a rollback undoes the contact", async () => {
    const before = await contactCount(t);
    await expect(
      t.ctx.database.db.transaction().execute(async (trx) => {
        await findOrCreateContactByPhone(t.ctx, t.workspaceId, '+447700900125', { source: 'trigger-sequence', optedIn: true, db: trx });
        throw new Error('enrollment failed');
      }),
    ).rejects.toThrow('enrollment failed');
    expect(await contactCount(t)).toBe(before);
  });
});
