import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/domain/clock.js';
import { newId } from '../../src/domain/ids.js';
import { setProviderSettings } from '../../src/engine/provider-settings-service.js';
import type { Worker } from '../../src/engine/worker.js';
import { insertTemplate } from '../../src/store/template-repository.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { dialects } from '../support/databases.js';
import { createTestWorker } from '../support/engine.js';
import { FakeMeta } from '../support/fake-meta.js';

const hour = 3_600_000;

interface Contact {
  id: string;
  phone: string;
}

/** The REST surface of a workspace, with the helpers every broadcast test needs. */
function client(t: TestApp) {
  const post = (url: string, payload?: unknown, headers = t.auth) => t.app.inject({ method: 'POST', url, headers, ...(payload === undefined ? {} : { payload: payload as object }) });
  const get = (url: string, headers = t.auth) => t.app.inject({ method: 'GET', url, headers });
  let phones = 0;
  return {
    post,
    get,
    patch: (url: string, payload: unknown) => t.app.inject({ method: 'PATCH', url, headers: t.auth, payload: payload as object }),
    del: (url: string) => t.app.inject({ method: 'DELETE', url, headers: t.auth }),
    async contact(fields: { tags?: string; name?: string; first_name?: string; language?: string; metadata?: Record<string, unknown> } = {}): Promise<Contact> {
      phones += 1;
      const phone = `+1415556${String(phones).padStart(4, '0')}`;
      const res = await post('/api/v1/actions/create-contact', { phone, ...fields });
      expect(res.statusCode, res.body).toBe(201);
      return { id: res.json().id as string, phone };
    },
    async template(body: Record<string, unknown>): Promise<string> {
      const res = await post('/api/v1/templates', body);
      expect(res.statusCode, res.body).toBe(201);
      return res.json().id as string;
    },
    async broadcast(body: Record<string, unknown>) {
      const res = await post('/api/v1/broadcasts', body);
      expect(res.statusCode, res.body).toBe(201);
      return res.json() as Broadcast;
    },
    async messages(broadcastId: string) {
      const res = await get(`/api/v1/messages?broadcast_id=${broadcastId}&limit=200`);
      expect(res.statusCode, res.body).toBe(200);
      return res.json().data as Array<{ id: string; contact_id: string; status: string; error_code: string | null; content: { language: string; components: { body?: string[] } } }>;
    },
  };
}

interface Broadcast {
  id: string;
  status: string;
  recipients: number;
  skipped: number;
  started_at: string | null;
  completed_at: string | null;
  counts: Record<'queued' | 'sent' | 'delivered' | 'read' | 'failed' | 'skipped' | 'cancelled', number>;
}

describe.each(dialects)('broadcasts on %s (sandbox sent inline)', (dialect) => {
  const clock = new ManualClock(Date.UTC(2026, 4, 7, 8, 0, 0));
  let t: TestApp;
  let api: ReturnType<typeof client>;
  let worker: Worker;
  let templateId: string;

  beforeAll(async () => {
    t = await createTestApp(dialect, { clock });
    api = client(t);
    worker = createTestWorker(t.ctx);
    templateId = await api.template({ name: 'spring_sale', language: 'en_US', category: 'MARKETING', body: 'Hi {{1}}, your code is {{2}}.' });
    await api.template({ name: 'spring_sale', language: 'pt_BR', category: 'MARKETING', body: 'Olá {{1}}, seu código é {{2}}.' });
  });
  afterAll(async () => t.close());

  const variables = { '1': '{{contact.first_name|there}}', '2': 'SPRING20' };
  const read = async (id: string) => (await api.get(`/api/v1/broadcasts/${id}`)).json() as Broadcast;

  it('sends a scheduled broadcast at its time and not before', async () => {
    const ana = await api.contact({ tags: 'scheduled', first_name: 'Ana' });
    const ben = await api.contact({ tags: 'scheduled', first_name: 'Ben' });
    const at = clock.now() + hour;
    const created = await api.broadcast({ name: 'Morning', template_id: templateId, variables, audience: { tag: 'scheduled' }, scheduled_at: new Date(at).toISOString() });
    expect(created).toMatchObject({ status: 'scheduled', scheduled_at: new Date(at).toISOString(), recipients: 0, audience: { type: 'tag', tag: 'scheduled' } });

    await worker.drain();
    clock.advance(hour - 1000);
    await worker.drain();
    expect(await read(created.id)).toMatchObject({ status: 'scheduled', started_at: null, recipients: 0 });
    expect(await api.messages(created.id)).toEqual([]);

    clock.advance(1000);
    await worker.drain();
    const sent = await read(created.id);
    expect(sent).toMatchObject({ status: 'completed', recipients: 2, skipped: 0, started_at: new Date(at).toISOString(), completed_at: new Date(at).toISOString() });
    expect(sent.counts).toEqual({ queued: 0, sent: 2, delivered: 2, read: 0, failed: 0, skipped: 0, cancelled: 0 });
    const messages = await api.messages(created.id);
    expect(messages.map((m) => [m.contact_id, m.content.components.body]).sort()).toEqual(
      [
        [ana.id, ['Ana', 'SPRING20']],
        [ben.id, ['Ben', 'SPRING20']],
      ].sort(),
    );
  });

  it('reaches exactly the members of a tag, a list, a segment or the listed contacts', async () => {
    const tagged = [await api.contact({ tags: 'gold' }), await api.contact({ tags: 'gold, other' })];
    const listed = await api.contact();
    const segmented = [await api.contact({ metadata: { plan: 'enterprise' } }), await api.contact({ metadata: { plan: 'enterprise' } })];
    const picked = [await api.contact(), await api.contact()];
    await api.contact({ tags: 'silver', metadata: { plan: 'free' } });

    const list = (await api.post('/api/v1/lists', { name: 'Early birds' })).json().list.id as string;
    expect((await api.post(`/api/v1/lists/${list}/subscribers`, { subscriberIds: [listed.id] })).statusCode).toBe(200);
    const segment = await api.post('/api/v1/segments', { name: 'Enterprise', filter: { match: 'all', conditions: [{ type: 'attribute', field: 'attributes.plan', operator: 'equals', value: 'enterprise' }] } });
    expect(segment.statusCode, segment.body).toBe(201);

    const cases: Array<[Record<string, unknown>, Contact[]]> = [
      [{ tag: 'GOLD' }, tagged],
      [{ list_id: list }, [listed]],
      [{ segment_id: segment.json().segment.id }, segmented],
      [{ type: 'contacts', contact_ids: picked.map((c) => c.id.toUpperCase()) }, picked],
    ];
    for (const [audience, expected] of cases) {
      const created = await api.broadcast({ template_id: templateId, variables, audience });
      const started = await api.post(`/api/v1/broadcasts/${created.id}/send`);
      expect(started.statusCode, started.body).toBe(200);
      expect(started.json()).toMatchObject({ status: 'sending', started_at: new Date(clock.now()).toISOString() });
      await worker.drain();
      const done = await read(created.id);
      expect({ audience, status: done.status, recipients: done.recipients }).toEqual({ audience, status: 'completed', recipients: expected.length });
      expect((await api.messages(created.id)).map((m) => m.contact_id).sort()).toEqual(expected.map((c) => c.id).sort());
    }
  });

  it('skips contacts who opted out of WhatsApp and contacts without a phone, and counts them as skipped', async () => {
    const keeps = await api.contact({ tags: 'consent' });
    const stops = await api.contact({ tags: 'consent' });
    expect((await api.post('/api/v1/sandbox/inbound', { channel: 'whatsapp', phone: stops.phone, text: 'STOP' })).statusCode).toBe(201);
    const emailOnly = await api.post('/api/v1/subscribers', { email: 'no-phone@example.com', tags: ['consent'] });
    expect(emailOnly.statusCode, emailOnly.body).toBe(201);

    const created = await api.broadcast({ template_id: templateId, variables, audience: { tag: 'consent' } });
    await api.post(`/api/v1/broadcasts/${created.id}/send`);
    await worker.drain();
    const done = await read(created.id);
    expect(done).toMatchObject({ status: 'completed', recipients: 1, skipped: 2 });
    expect(done.counts).toMatchObject({ sent: 1, delivered: 1, skipped: 2, failed: 0 });
    const byContact = new Map((await api.messages(created.id)).map((m) => [m.contact_id, m]));
    expect(byContact.get(keeps.id)).toMatchObject({ status: 'delivered' });
    expect(byContact.get(stops.id)).toMatchObject({ status: 'skipped', error_code: 'opted_out' });
    expect(byContact.get(emailOnly.json().subscriber.id)).toMatchObject({ status: 'skipped', error_code: 'no_recipient' });
  });

  it('gives each recipient their own merge-tag values and language, and fails only the one whose values leave a placeholder empty', async () => {
    const ana = await api.contact({ tags: 'merge', first_name: 'Ana', language: 'pt-BR' });
    const nameless = await api.contact({ tags: 'merge' });
    const strict = await api.broadcast({ template_id: templateId, variables: { '1': '{{contact.first_name}}', '2': '{{contact.metadata.code|NONE}}' }, audience: { tag: 'merge' } });
    await api.post(`/api/v1/broadcasts/${strict.id}/send`);
    await worker.drain();
    const byContact = new Map((await api.messages(strict.id)).map((m) => [m.contact_id, m]));
    expect(byContact.get(ana.id)).toMatchObject({ status: 'delivered', content: { language: 'pt_BR', components: { body: ['Ana', 'NONE'] } } });
    expect(byContact.get(nameless.id)).toMatchObject({ status: 'failed', error_code: 'template_variables_missing' });
    expect((await read(strict.id)).counts).toMatchObject({ sent: 1, failed: 1 });

    const fixed = await api.broadcast({ template_id: templateId, language: 'en_US', variables, audience: { tag: 'merge' } });
    await api.post(`/api/v1/broadcasts/${fixed.id}/send`);
    await worker.drain();
    const sent = await api.messages(fixed.id);
    expect(sent.map((m) => [m.content.language, m.content.components.body?.[0]]).sort()).toEqual([
      ['en_US', 'Ana'],
      ['en_US', 'there'],
    ]);
  });

  it('changes a draft or scheduled broadcast, and refuses once sending has started', async () => {
    await api.contact({ tags: 'edits' });
    const draft = await api.broadcast({ name: 'Draft', template_id: templateId, variables, audience: { tag: 'edits' } });
    expect(draft.status).toBe('draft');
    const at = new Date(clock.now() + 2 * hour).toISOString();
    const renamed = await api.patch(`/api/v1/broadcasts/${draft.id}`, { name: 'Renamed', scheduled_at: at });
    expect(renamed.statusCode, renamed.body).toBe(200);
    expect(renamed.json()).toMatchObject({ name: 'Renamed', status: 'scheduled', scheduled_at: at });
    const unscheduled = await api.patch(`/api/v1/broadcasts/${draft.id}`, { scheduled_at: null });
    expect(unscheduled.json()).toMatchObject({ status: 'draft', scheduled_at: null });
    const rescheduled = await api.post(`/api/v1/broadcasts/${draft.id}/schedule`, { scheduled_at: at });
    expect(rescheduled.json()).toMatchObject({ status: 'scheduled', scheduled_at: at });

    expect((await api.post(`/api/v1/broadcasts/${draft.id}/send`)).json()).toMatchObject({ status: 'sending' });
    for (const res of [
      await api.patch(`/api/v1/broadcasts/${draft.id}`, { name: 'Too late' }),
      await api.post(`/api/v1/broadcasts/${draft.id}/schedule`, { scheduled_at: at }),
      await api.post(`/api/v1/broadcasts/${draft.id}/send`),
    ]) {
      expect(res.statusCode, res.body).toBe(422);
      expect(res.json()).toMatchObject({ code: 'business_rule', status: 'sending' });
    }
    await worker.drain();
    expect(await read(draft.id)).toMatchObject({ name: 'Renamed', status: 'completed', recipients: 1 });
    const deleted = await api.del(`/api/v1/broadcasts/${draft.id}`);
    expect(deleted.statusCode).toBe(200);
    expect((await api.get(`/api/v1/broadcasts/${draft.id}`)).statusCode).toBe(404);
    expect((await api.messages(draft.id)).length).toBe(1);
  });

  it('cancels or deletes a scheduled broadcast, which then never goes out', async () => {
    await api.contact({ tags: 'called-off' });
    const at = new Date(clock.now() + hour).toISOString();
    const cancelled = await api.broadcast({ template_id: templateId, variables, audience: { tag: 'called-off' }, scheduled_at: at });
    const deleted = await api.broadcast({ template_id: templateId, variables, audience: { tag: 'called-off' }, scheduled_at: at });
    expect((await api.post(`/api/v1/broadcasts/${cancelled.id}/cancel`)).json()).toMatchObject({ status: 'cancelled' });
    expect((await api.del(`/api/v1/broadcasts/${deleted.id}`)).statusCode).toBe(200);
    clock.advance(2 * hour);
    await worker.drain();
    expect(await read(cancelled.id)).toMatchObject({ status: 'cancelled', recipients: 0, started_at: null });
    expect(await api.messages(cancelled.id)).toEqual([]);
    expect(await api.messages(deleted.id)).toEqual([]);
    const again = await api.post(`/api/v1/broadcasts/${cancelled.id}/cancel`);
    expect(again.statusCode).toBe(422);
    expect(again.json()).toMatchObject({ code: 'business_rule', status: 'cancelled' });
  });

  it('fails a scheduled broadcast whose template is no longer approved when its time comes', async () => {
    await api.contact({ tags: 'rejected' });
    const id = await api.template({ name: 'soon_rejected', language: 'en_US', category: 'UTILITY', body: 'Hello' });
    const created = await api.broadcast({ template_id: id, audience: { tag: 'rejected' }, scheduled_at: new Date(clock.now() + hour).toISOString() });
    await t.ctx.database.db.updateTable('templates').set({ status: 'REJECTED' }).where('id', '=', id).execute();
    clock.advance(hour);
    await worker.drain();
    expect(await read(created.id)).toMatchObject({ status: 'failed', error: expect.stringContaining('no longer approved'), recipients: 0, started_at: null });
  });

  it('lists broadcasts newest first, page by page, and filters by status', async () => {
    const first = await api.get('/api/v1/broadcasts?limit=2');
    expect(first.statusCode, first.body).toBe(200);
    const page = first.json() as { data: Broadcast[]; next_cursor: string };
    expect(page.data).toHaveLength(2);
    const second = (await api.get(`/api/v1/broadcasts?limit=2&cursor=${page.next_cursor}`)).json() as { data: Broadcast[] };
    const ids = [...page.data, ...second.data].map((b) => b.id);
    expect(ids).toEqual([...ids].sort().reverse());
    const completed = (await api.get('/api/v1/broadcasts?status=completed&limit=100')).json() as { data: Broadcast[] };
    expect(completed.data.length).toBeGreaterThan(0);
    expect(completed.data.every((b) => b.status === 'completed')).toBe(true);
  });

  it('refuses bad input with a 4xx naming the field, and stores nothing', async () => {
    const member = await api.contact({ tags: 'bad-input' });
    await api.contact({ tags: 'empty-soon' });
    const pending = await api.template({ name: 'under_review', language: 'en_US', category: 'MARKETING', body: 'Hi' });
    await t.ctx.database.db.updateTable('templates').set({ status: 'PENDING' }).where('id', '=', pending).execute();
    const foreign = (await api.post('/api/v1/actions/create-contact', { phone: '+14155557777' }, { authorization: `Bearer ${t.other.token}` })).json().id as string;
    const count = async () => Number((await t.ctx.database.db.selectFrom('broadcasts').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
    const before = await count();
    const good = { template_id: templateId, variables, audience: { tag: 'bad-input' } };
    const cases: Array<[Record<string, unknown>, string, number?]> = [
      [{ ...good, template_id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b' }, 'template_id'],
      [{ ...good, template_id: 'not-a-template' }, 'template_id'],
      [{ ...good, template_id: 5 }, 'template_id'],
      [{ ...good, template_id: pending, variables: {} }, 'template_id'],
      [{ ...good, audience: { contact_ids: [] } }, 'audience.contact_ids'],
      [{ ...good, audience: 'bad-input' }, 'audience'],
      [{ ...good, audience: {} }, 'audience'],
      [{ ...good, audience: { tag: 'bad-input', segment_id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b' } }, 'audience'],
      [{ ...good, audience: { tag: 'no-such-tag' } }, 'audience.tag'],
      [{ ...good, audience: { segment_id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b' } }, 'audience.segment_id'],
      [{ ...good, audience: { contact_ids: [member.id, foreign] } }, 'audience.contact_ids.1'],
      [{ ...good, audience: { contact_ids: ['nope'] } }, 'audience.contact_ids'],
      [{ ...good, audience: { type: 'segment', tag: 'bad-input' } }, 'audience.type'],
      [{ ...good, scheduled_at: new Date(clock.now() - hour).toISOString() }, 'scheduled_at'],
      [{ ...good, scheduled_at: '2026-05-07 09:00' }, 'scheduled_at'],
      [{ ...good, scheduled_at: 1778140800000 }, 'scheduled_at'],
      [{ ...good, variables: { '1': 'Ana' } }, 'variables.2'],
      [{ ...good, variables: { ...variables, '3': 'extra' } }, 'variables.3'],
      [{ ...good, variables: { ...variables, '1': 5 } }, 'variables.1'],
      [{ ...good, variables: { ...variables, '1': '{{event.city}}' } }, 'variables.1'],
      [{ ...good, language: 'fr' }, 'language'],
      [{ ...good, name: '' }, 'name'],
      [{ ...good, colour: 'blue' }, 'colour'],
    ];
    for (const [payload, field] of cases) {
      const res = await api.post('/api/v1/broadcasts', payload);
      const label = JSON.stringify(payload).slice(0, 160);
      expect(res.statusCode, `${label} → ${res.body}`).toBeGreaterThanOrEqual(400);
      expect(res.statusCode, label).toBeLessThan(500);
      const body = res.json();
      expect(body.error, label).toBe(body.message);
      expect(Object.keys(body.errors ?? {}).join(' '), `${label} → ${res.body}`).toContain(field);
    }
    expect(await count()).toBe(before);

    // Sending an audience that is empty right now.
    const emptying = await api.broadcast({ ...good, audience: { tag: 'empty-soon' } });
    const tagged = (await api.get('/api/v1/contacts?tag=empty-soon')).json().data as Array<{ id: string }>;
    await api.post('/api/v1/actions/remove-tag', { contact_id: tagged[0]!.id, tag: 'empty-soon' });
    const empty = await api.post(`/api/v1/broadcasts/${emptying.id}/send`);
    expect(empty.statusCode).toBe(422);
    expect(empty.json().errors).toHaveProperty('audience');
    expect((await read(emptying.id)).status).toBe('draft');

    // Changes are checked as a whole: a new template must still be filled by the variables.
    const other = await api.template({ name: 'three_slots', language: 'en_US', category: 'MARKETING', body: '{{1}} {{2}} {{3}}' });
    const patched = await api.patch(`/api/v1/broadcasts/${emptying.id}`, { template_id: other });
    expect(patched.statusCode).toBe(422);
    expect(patched.json().errors).toHaveProperty(['variables.3']);
    expect((await api.patch(`/api/v1/broadcasts/${emptying.id}`, { scheduled_at: 'tomorrow' })).json().errors).toHaveProperty('scheduled_at');
    expect((await api.get('/api/v1/broadcasts/not-an-id')).statusCode).toBe(404);
  });
});

describe.each(dialects)('broadcasts through the dispatcher on %s', (dialect) => {
  const clock = new ManualClock(Date.UTC(2026, 4, 7, 8, 0, 0));
  let t: TestApp;
  let api: ReturnType<typeof client>;
  let templateId: string;

  beforeAll(async () => {
    t = await createTestApp(dialect, { clock, env: { NUDGE_SANDBOX_DELIVERY: 'dispatch' } });
    api = client(t);
    templateId = await api.template({ name: 'weekly', language: 'en', category: 'MARKETING', body: 'News for {{1}}' });
  });
  afterAll(async () => t.close());

  it('stops a broadcast cancelled mid-way: queued messages are cancelled and the rest of the audience is never queued', async () => {
    const worker = createTestWorker(t.ctx, { broadcastChunkSize: 2 });
    const audience = await Promise.all(Array.from({ length: 7 }, () => api.contact({ tags: 'midway' })));
    const created = await api.broadcast({ template_id: templateId, variables: { '1': '{{first_name|you}}' }, audience: { tag: 'midway' } });
    await api.post(`/api/v1/broadcasts/${created.id}/send`);

    // First chunk queued; the second waits while the first is still in the queue.
    await worker.runBroadcastsOnce();
    expect(await api.messages(created.id)).toHaveLength(2);
    await worker.runDispatcherOnce();
    clock.advance(1000);
    await worker.runBroadcastsOnce();
    const queued = await api.messages(created.id);
    expect(queued.map((m) => m.status).sort()).toEqual(['delivered', 'delivered', 'queued', 'queued']);

    const cancelled = await api.post(`/api/v1/broadcasts/${created.id}/cancel`);
    expect(cancelled.statusCode, cancelled.body).toBe(200);
    expect(cancelled.json()).toMatchObject({ status: 'cancelled', recipients: 4, counts: { delivered: 2, cancelled: 2, queued: 0 } });
    clock.advance(hour);
    await worker.drain();
    const after = await api.messages(created.id);
    expect(after.map((m) => m.status).sort()).toEqual(['cancelled', 'cancelled', 'delivered', 'delivered']);
    expect(new Set(after.map((m) => m.contact_id)).size).toBe(4);
    expect(audience.filter((c) => after.some((m) => m.contact_id === c.id))).toHaveLength(4);
  });

  it('queues a large audience a chunk at a time, each once the previous one has gone out, each contact once', async () => {
    const worker = createTestWorker(t.ctx, { broadcastChunkSize: 3 });
    const audience = await Promise.all(Array.from({ length: 10 }, () => api.contact({ tags: 'chunked' })));
    const created = await api.broadcast({ template_id: templateId, variables: { '1': 'all' }, audience: { tag: 'chunked' } });
    await api.post(`/api/v1/broadcasts/${created.id}/send`);
    const waiting: number[] = [];
    for (let round = 0; round < 10; round += 1) {
      await worker.runBroadcastsOnce();
      waiting.push((await api.messages(created.id)).filter((m) => m.status === 'queued').length);
      await worker.runDispatcherOnce();
      clock.advance(1000);
    }
    // Never more than one chunk in the queue at a time: other traffic is never stuck behind the broadcast.
    expect(waiting).toEqual([3, 3, 3, 1, 0, 0, 0, 0, 0, 0]);
    const done = (await api.get(`/api/v1/broadcasts/${created.id}`)).json() as Broadcast;
    expect(done).toMatchObject({ status: 'completed', recipients: 10, counts: { sent: 10, delivered: 10, queued: 0 } });
    const messages = await api.messages(created.id);
    expect(messages.map((m) => m.contact_id).sort()).toEqual(audience.map((c) => c.id).sort());
  });
});

describe.each(dialects)('broadcast counts as WhatsApp reports delivery on %s', (dialect) => {
  const fake = new FakeMeta();
  const clock = new ManualClock(Date.UTC(2026, 4, 7, 8, 0, 0));
  const phoneNumberId = '106540352242922';
  let t: TestApp;
  let api: ReturnType<typeof client>;
  let templateId: string;

  beforeAll(async () => {
    await fake.start();
    t = await createTestApp(dialect, { clock });
    api = client(t);
    await setProviderSettings(t.ctx, t.workspaceId, 'whatsapp', {
      phone_number_id: phoneNumberId,
      business_account_id: '102290129340398',
      base_url: fake.url,
      access_token: fake.accessToken,
      app_secret: fake.appSecret,
      verify_token: 'verify-me',
    });
    // Approved at Meta already (the review itself is the template suite's concern).
    templateId = newId();
    await insertTemplate(t.ctx.database.db, {
      id: templateId, workspace_id: t.workspaceId, name: 'flash_sale', language: 'en_US', category: 'MARKETING', status: 'APPROVED',
      components: JSON.stringify({ body: 'Flash sale for {{1}}' }), provider_template_id: '1234567890', rejected_reason: null, created_at: clock.now(), updated_at: clock.now(),
    });
  });
  afterAll(async () => {
    await t.close();
    await fake.stop();
  });

  const status = (id: string, value: string, errors?: unknown[]) => ({
    object: 'whatsapp_business_account',
    entry: [{ id: '102290129340398', changes: [{ field: 'messages', value: { messaging_product: 'whatsapp', metadata: { display_phone_number: '15550783881', phone_number_id: phoneNumberId }, statuses: [{ id, status: value, timestamp: String(Math.floor(clock.now() / 1000)), recipient_id: '14155550000', ...(errors ? { errors } : {}) }] } }] }],
  });
  const deliver = async (payload: unknown) => {
    const signed = fake.signedWebhook(payload);
    const res = await t.app.inject({ method: 'POST', url: '/webhooks/whatsapp', headers: signed.headers, payload: signed.raw });
    expect(res.statusCode, res.body).toBe(200);
  };

  it('sends each recipient the template through Meta and counts sent, delivered, read and failed from the status webhooks', async () => {
    const worker = createTestWorker(t.ctx);
    const audience = await Promise.all(Array.from({ length: 4 }, (_, i) => api.contact({ tags: 'flash', first_name: `C${i}` })));
    const created = await api.broadcast({ template_id: templateId, variables: { '1': '{{contact.first_name}}' }, audience: { tag: 'flash' } });
    await api.post(`/api/v1/broadcasts/${created.id}/send`);
    await worker.drain();

    const sends = fake.calls('/messages');
    expect(sends).toHaveLength(4);
    expect(sends.map((r) => (r.body as { template: { name: string } }).template.name)).toEqual(['flash_sale', 'flash_sale', 'flash_sale', 'flash_sale']);
    const counts = async () => ((await api.get(`/api/v1/broadcasts/${created.id}`)).json() as Broadcast).counts;
    expect(await counts()).toEqual({ queued: 0, sent: 4, delivered: 0, read: 0, failed: 0, skipped: 0, cancelled: 0 });

    const messages = await t.ctx.database.db.selectFrom('messages').select(['contact_id', 'provider_message_id']).where('broadcast_id', '=', created.id).execute();
    const wamid = (contact: Contact) => messages.find((m) => m.contact_id === contact.id)!.provider_message_id!;
    await deliver(status(wamid(audience[0]!), 'delivered'));
    await deliver(status(wamid(audience[1]!), 'delivered'));
    expect(await counts()).toMatchObject({ sent: 4, delivered: 2, read: 0 });
    await deliver(status(wamid(audience[1]!), 'read'));
    await deliver(status(wamid(audience[2]!), 'read'));
    await deliver(status(wamid(audience[3]!), 'failed', [{ code: 131026, title: 'Message undeliverable' }]));
    expect(await counts()).toEqual({ queued: 0, sent: 3, delivered: 3, read: 2, failed: 1, skipped: 0, cancelled: 0 });
  });
});
