import { CompiledQuery, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contactsGoneQuietQuery } from '../../src/store/audience-repository.js';
import { ManualClock } from '../../src/domain/clock.js';
import { createTestApp, enabledSequence, type TestApp } from '../support/app.js';
import { dialects } from '../support/databases.js';
import { createTestWorker } from '../support/engine.js';

const day = 86_400_000;

/**
 * Event-driven sequences end to end: the reference page's examples, events that start
 * sequences and feed {{event.*}} merge tags, enrollment modes, stop conditions, list,
 * tag, segment, inactivity and frequency triggers.
 */
describe.each(dialects)('event-driven sequences on %s', (dialect) => {
  let t: TestApp;
  const clock = new ManualClock(Date.UTC(2026, 4, 1, 9));
  const post = (url: string, payload: unknown) => t.app.inject({ method: 'POST', url, headers: t.auth, payload: payload as object });
  const get = (url: string) => t.app.inject({ method: 'GET', url, headers: t.auth });
  const worker = () => createTestWorker(t.ctx);

  beforeAll(async () => {
    // Messages wait for the dispatcher, so a stop can be seen cancelling one.
    t = await createTestApp(dialect, { clock, env: { NUDGE_SANDBOX_DELIVERY: 'dispatch' } });
  });
  afterAll(async () => t.close());

  const enabled = (body: object) => enabledSequence(t, body);

  async function messagesOf(email: string): Promise<Array<{ status: string; content: { subject?: string; html?: string; text?: string }; definition_id: string | null }>> {
    const row = await t.ctx.database.db.selectFrom('contacts').select('id').where('workspace_id', '=', t.workspaceId).where('email', '=', email).executeTakeFirstOrThrow();
    const page = (await get(`/api/v1/messages?contact_id=${row.id}&limit=100`)).json();
    return page.data;
  }

  async function sessionsOf(definitionId: string) {
    return t.ctx.database.db.selectFrom('sessions').selectAll().where('definition_id', '=', definitionId).orderBy('created_at').execute();
  }

  it('accepts the reference page’s explicit examples verbatim and enables them', async () => {
    const blocks = await post('/api/v1/sequences', {
      name: 'Welcome Sequence',
      trigger: 'contact_added',
      steps: [
        { subject: 'Welcome to our product!', blocks: [{ id: 'heading-1', type: 'heading', content: 'Welcome!', level: 1 }, { id: 'text-1', type: 'text', content: '<p>Thanks for signing up. We are excited to have you.</p>', variant: 'paragraph' }] },
        { subject: 'Getting started guide', delay: { days: 1 }, blocks: [{ id: 'heading-2', type: 'heading', content: 'Getting Started', level: 1 }, { id: 'text-2', type: 'text', content: '<p>Here is everything you need to get started...</p>', variant: 'paragraph' }] },
      ],
    });
    expect(blocks.statusCode, blocks.body).toBe(201);
    expect(blocks.json()).toMatchObject({ success: true, sequence: { name: 'Welcome Sequence', status: 'draft', emailCount: 2 } });
    const html = await post('/api/v1/sequences', {
      name: 'Migrated Sequence',
      trigger: 'contact_added',
      steps: [
        { subject: 'Welcome!', html: '<h1>Welcome to our platform!</h1><p>We are thrilled to have you on board.</p><a href="https://example.com/start">Get Started</a>' },
        { subject: 'Quick tips to get started', delay: { days: 2 }, html: '<h2>Getting Started Guide</h2><p>Here are some tips:</p><ul><li>Complete your profile</li><li>Explore the dashboard</li><li>Connect your integrations</li></ul>' },
      ],
    });
    expect(html.statusCode, html.body).toBe(201);
    expect(html.json().sequence.emailCount).toBe(2);
    const wind = await post('/api/v1/sequences', {
      name: 'Wind Alert Follow-up',
      trigger: 'event_received',
      eventName: 'weather.wind_alert',
      steps: [
        { subject: 'Wind alert for {{event.city}}', html: '<p>Winds may reach {{event.alert.maxSpeed}} km/h for {{event.duration.hours|a few}} hours.</p>' },
        { subject: 'Stay safe in {{event.city}}', delay: { hours: 12 }, html: '<p>The original alert is still active for {{event.city}}. Check local guidance if conditions change.</p>' },
      ],
    });
    expect(wind.statusCode, wind.body).toBe(201);
    // Also under the old path.
    const alias = await post('/v1/sequences', { name: 'Alias', trigger: 'contact_added', steps: [{ subject: 'Hi', html: '<p>Hi</p>' }] });
    expect(alias.statusCode, alias.body).toBe(201);
    for (const created of [blocks, html, wind, alias]) {
      // Disabled again right after, so these do not fire in the tests below.
      const id = created.json().sequence.id;
      expect((await post(`/api/v1/sequences/${id}/enable`, {})).statusCode).toBe(200);
      expect((await post(`/api/v1/sequences/${id}/archive`, {})).statusCode).toBe(200);
    }
  });

  it('refuses trigger settings that cannot work, naming the field', async () => {
    const cases: Array<[object, string]> = [
      [{ trigger: 'event_received' }, 'eventName'],
      [{ trigger: 'tag_added' }, 'tagName'],
      [{ trigger: 'inactivity', eventName: 'login' }, 'inactiveDays'],
      [{ trigger: 'frequency', eventName: 'login', minCount: 0, timeWindowDays: 7 }, 'minCount'],
      [{ trigger: 'segment_entered', segmentId: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b' }, 'segmentId'],
      [{ trigger: 'contact_added', listId: 'nope' }, 'listId'],
      [{ trigger: 'tag_added', tagName: 'x', enrollmentMode: 'matching_field' }, 'enrollmentMode'],
      [{ trigger: 'event_received', eventName: 'x', enrollmentMode: 'sometimes' }, 'enrollmentMode'],
      [{ trigger: 'contact_added', stopCondition: { type: 'has_tag' } }, 'stopCondition.value'],
      [{ trigger: 'contact_added', stopCondition: { type: 'when_bored', value: 'x' } }, 'stopCondition.type'],
      [{ trigger: 'shooting_star' }, 'trigger'],
    ];
    for (const [fields, field] of cases) {
      const response = await post('/api/v1/sequences', { name: 'Bad', steps: [{ subject: 'Hi', html: '<p>Hi</p>' }], ...fields });
      expect(response.statusCode, JSON.stringify(fields)).toBe(422);
      expect(response.json().errors, JSON.stringify(fields)).toHaveProperty([field]);
    }
    const count = await t.ctx.database.db.selectFrom('definitions').select((eb) => eb.fn.countAll<number>().as('n')).where('name', '=', 'Bad').executeTakeFirst();
    expect(Number(count?.n)).toBe(0);
  });

  it('starts an event_received sequence from an event and renders the event snapshot a day later with the original values', async () => {
    const id = await enabled({
      name: 'Storm',
      trigger: 'event_received',
      eventName: 'weather.storm',
      steps: [
        { subject: 'Storm over {{event.city}}', html: '<p>Lasting {{event.duration.hours|a few}} hours.</p>' },
        { subject: 'Still {{event.city}}', delay: { days: 1 }, html: '<p>{{event.city}} for {{event.duration.hours|a few}} hours; gusts {{event.alert.maxSpeed|unknown}}.</p>' },
      ],
    });
    const tracked = await post('/api/v1/subscribers/events', { email: 'storm@example.com', event: 'weather.storm', properties: { city: 'Tel Aviv', duration: {} } });
    expect(tracked.statusCode, tracked.body).toBe(200);
    expect(tracked.json()).toMatchObject({ success: true, subscriberCreated: true, enrollments: [{ sequenceId: id, status: 'enrolled' }] });
    await worker().drain();
    clock.advance(day);
    // A later event with other values enrolls nothing (one run at a time) and changes nothing.
    const again = await post('/api/v1/subscribers/events', { email: 'storm@example.com', event: 'weather.storm', properties: { city: 'Haifa', duration: { hours: 3 } } });
    expect(again.json().enrollments).toEqual([expect.objectContaining({ status: 'already_enrolled' })]);
    await worker().drain();
    const sent = (await messagesOf('storm@example.com')).filter((m) => m.definition_id === id);
    expect(sent.map((m) => m.content.subject).sort()).toEqual(['Still Tel Aviv', 'Storm over Tel Aviv']);
    const second = sent.find((m) => m.content.subject === 'Still Tel Aviv')!;
    expect(second.content.html).toContain('Tel Aviv for a few hours; gusts unknown.');
    const [session] = await sessionsOf(id);
    expect(JSON.parse(session!.event!)).toEqual({ city: 'Tel Aviv', duration: {} });
  });

  it('keeps one run per order.id with matching_field and refuses a duplicate for the same key', async () => {
    const id = await enabled({
      name: 'Order follow-up',
      trigger: 'event_received',
      eventName: 'ecommerce.order_placed',
      enrollmentMode: 'matching_field',
      enrollmentFieldPath: 'order.id',
      steps: [{ subject: 'Thanks for order {{event.order.id}}', delay: { days: 3 }, html: '<p>How was it?</p>' }],
    });
    const event = (orderId: unknown) => post('/api/v1/subscribers/events', { email: 'buyer@example.com', event: 'ecommerce.order_placed', properties: { order: { id: orderId } } });
    expect((await event('A-1')).json().enrollments[0].status).toBe('enrolled');
    expect((await event('A-2')).json().enrollments[0].status).toBe('enrolled');
    const duplicate = (await event('A-1')).json().enrollments[0];
    expect(duplicate.status).toBe('already_enrolled');
    expect((await post('/api/v1/subscribers/events', { email: 'buyer@example.com', event: 'ecommerce.order_placed', properties: {} })).json().enrollments[0]).toMatchObject({ status: 'skipped', reason: 'enrollment_key_missing' });
    const runs = await sessionsOf(id);
    expect(runs.map((s) => s.enrollment_key).sort()).toEqual(['A-1', 'A-2']);
    // Concurrent duplicates: the database lets exactly one through.
    const burst = await Promise.all(Array.from({ length: 10 }, () => event('B-7')));
    expect(burst.filter((r) => r.json().enrollments[0].status === 'enrolled')).toHaveLength(1);
    expect((await sessionsOf(id)).filter((s) => s.enrollment_key === 'B-7')).toHaveLength(1);
  });

  it('gives back-in-stock sequences one run per variant by default, keyed by the event’s own fields', async () => {
    const created = await post('/api/v1/sequences', { name: 'Back in stock', trigger: 'event_received', eventName: 'shopify.back_in_stock', steps: [{ subject: '{{event.product.title}} is back', html: '<p>x</p>' }] });
    expect(created.statusCode, created.body).toBe(201);
    const id = created.json().sequence.id as string;
    expect((await get(`/api/v1/sequences/${id}`)).json().sequence.enrollmentMode).toBe('matching_field');
    await post(`/api/v1/sequences/${id}/enable`, {});
    const restock = (properties: object) => post('/api/v1/subscribers/events', { email: 'waiting@example.com', event: 'shopify.back_in_stock', properties });
    expect((await restock({ product: { title: 'Mug', id: 'p1' }, variant: { id: 'v-red' } })).json().enrollments[0].status).toBe('enrolled');
    expect((await restock({ product: { title: 'Mug', id: 'p1' }, variant: { id: 'v-blue' } })).json().enrollments[0].status).toBe('enrolled');
    expect((await restock({ product: { title: 'Mug', id: 'p1' }, variant: { id: 'v-red' } })).json().enrollments[0].status).toBe('already_enrolled');
    expect((await restock({ sequenceEnrollmentKey: 'manual-1' })).json().enrollments[0].status).toBe('enrolled');
    expect((await sessionsOf(id)).map((s) => s.enrollment_key).sort()).toEqual(['manual-1', 'v-blue', 'v-red']);
    await post(`/api/v1/sequences/${id}/archive`, {});
  });

  it('enrolls a one_time sequence once, ever, even after the run ends', async () => {
    const id = await enabled({ name: 'Once', trigger: 'tag_added', tagName: 'vip-once', enrollmentMode: 'one_time', steps: [{ subject: 'Welcome VIP', html: '<p>Hi</p>' }] });
    await post('/api/v1/subscribers/tags', { email: 'once@example.com', tags: ['vip-once'] });
    await worker().drain();
    expect((await sessionsOf(id)).map((s) => s.status)).toEqual(['completed']);
    await post('/api/v1/subscribers/tags', { email: 'once@example.com', tags: ['vip-once'], action: 'remove' });
    await post('/api/v1/subscribers/tags', { email: 'once@example.com', tags: ['vip-once'] });
    await worker().drain();
    expect(await sessionsOf(id)).toHaveLength(1);
  });

  it('stops a run with a has_tag stop condition and cancels its unsent message, in the same transaction', async () => {
    const id = await enabled({
      name: 'Trial nurture',
      trigger: 'tag_added',
      tagName: 'trial',
      stopCondition: { type: 'has_tag', value: 'Customer' },
      steps: [{ subject: 'Day 1', html: '<p>Hi</p>' }, { subject: 'Day 2', delay: { days: 1 }, html: '<p>Again</p>' }],
    });
    await post('/api/v1/subscribers', { email: 'trial@example.com', tags: ['trial'] });
    // The scheduler queues the first email; the dispatcher has not sent it yet.
    await worker().runSchedulerOnce();
    expect((await messagesOf('trial@example.com')).map((m) => m.status)).toEqual(['queued']);
    const tagged = await post('/api/v1/subscribers/tags', { email: 'trial@example.com', tags: ['customer'] });
    expect(tagged.statusCode, tagged.body).toBe(200);
    const [run] = await sessionsOf(id);
    expect(run).toMatchObject({ status: 'stopped', active: 0, end_reason: 'stop_condition:has_tag' });
    expect((await messagesOf('trial@example.com')).map((m) => m.status)).toEqual(['cancelled']);
    clock.advance(day);
    await worker().drain();
    expect((await messagesOf('trial@example.com')).map((m) => m.status)).toEqual(['cancelled']);
  });

  it('answers concurrent tag and event requests each on its own: every stop, enrollment and refusal as if they came one by one', async () => {
    // On SQLite concurrent requests share one commit, each under its own savepoint.
    const stoppable = await enabled({
      name: 'Trial, concurrently',
      trigger: 'tag_added',
      tagName: 'trial-many',
      stopCondition: { type: 'has_tag', value: 'customer-many' },
      steps: [{ subject: 'Day 1', html: '<p>Hi</p>' }, { subject: 'Day 2', delay: { days: 1 }, html: '<p>Again</p>' }],
    });
    const byEvent = await enabled({ name: 'Viewed, concurrently', trigger: 'event_received', eventName: 'viewed-many', steps: [{ subject: 'Seen it?', html: '<p>x</p>' }] });
    const emails = Array.from({ length: 12 }, (_, i) => `many-${i}@example.com`);
    for (const email of emails) expect((await post('/api/v1/subscribers', { email, tags: ['trial-many'] })).statusCode).toBe(201);
    await worker().runSchedulerOnce();

    const answers = await Promise.all([
      ...emails.map((email) => post('/api/v1/subscribers/tags', { email, tags: ['customer-many'] })),
      ...emails.map((email) => post('/api/v1/subscribers/events', { email, event: 'viewed-many' })),
      post('/api/v1/subscribers/tags', { email: 'nobody-many@example.com', tags: ['customer-many'], action: 'remove' }),
      post('/api/v1/subscribers/tags', { email: emails[0], tags: [] }),
    ]);
    expect(answers.slice(0, 24).map((a) => a.statusCode)).toEqual(Array(24).fill(200));
    expect(answers.slice(24).map((a) => a.statusCode)).toEqual([404, 422]);
    for (const answer of answers.slice(12, 24)) expect(answer.json().enrollments[0].status).toBe('enrolled');

    const stopped = await sessionsOf(stoppable);
    expect(stopped).toHaveLength(emails.length);
    for (const run of stopped) expect(run).toMatchObject({ status: 'stopped', active: 0, end_reason: 'stop_condition:has_tag' });
    for (const email of emails) expect((await messagesOf(email)).filter((m) => m.definition_id === stoppable).map((m) => m.status)).toEqual(['cancelled']);
    expect((await sessionsOf(byEvent)).map((s) => s.status)).toEqual(Array(emails.length).fill('running'));
    const nobody = await t.ctx.database.db.selectFrom('contacts').select('id').where('email', '=', 'nobody-many@example.com').execute();
    expect(nobody).toEqual([]);
  });

  it('does not start a run for a contact who already meets its has_tag or added_to_list stop condition', async () => {
    const vip = (await post('/api/v1/lists', { name: 'VIP' })).json().list.id as string;
    const byTag = await enabled({ name: 'Convert', trigger: 'tag_added', tagName: 'lead', stopCondition: { type: 'has_tag', value: 'paying' }, steps: [{ subject: 'Buy', html: '<p>x</p>' }] });
    const byList = await enabled({ name: 'Upsell', trigger: 'tag_added', tagName: 'lead', enrollmentMode: 'one_time', stopCondition: { type: 'added_to_list', value: vip }, steps: [{ subject: 'Upgrade', html: '<p>x</p>' }] });
    await post('/api/v1/subscribers', { email: 'paying@example.com', tags: ['paying'] });
    await post(`/api/v1/lists/${vip}/subscribers`, { emails: ['paying@example.com'] });
    const tagged = await post('/api/v1/subscribers/tags', { email: 'paying@example.com', tags: ['lead'] });
    expect(tagged.statusCode, tagged.body).toBe(200);
    expect(await sessionsOf(byTag)).toHaveLength(0);
    expect(await sessionsOf(byList)).toHaveLength(0);
    // Through the API trigger too, with the reason.
    const phone = await t.app.inject({ method: 'PATCH', url: '/api/v1/subscribers/paying@example.com', headers: t.auth, payload: { phone: '+14155550999' } });
    expect(phone.statusCode, phone.body).toBe(200);
    const refused = await post('/api/v1/actions/trigger-sequence', { sequence_id: byTag, phone: '+14155550999' });
    expect(refused.statusCode).toBe(422);
    expect(refused.json()).toMatchObject({ reason: 'stop_condition_met' });
    // Leaving the list gives the one_time sequence its one run back.
    expect((await post(`/api/v1/lists/${vip}/subscribers/remove`, { emails: ['paying@example.com'] })).statusCode).toBe(200);
    await post('/api/v1/subscribers/tags', { email: 'paying@example.com', tags: ['lead'], action: 'remove' });
    await post('/api/v1/subscribers/tags', { email: 'paying@example.com', tags: ['lead'] });
    expect(await sessionsOf(byList)).toHaveLength(1);
    for (const id of [byTag, byList]) await post(`/api/v1/sequences/${id}/archive`, {});
  });

  it('stops runs on does_not_have_tag, event_received, added_to_list and removed_from_list', async () => {
    const list = (await post('/api/v1/lists', { name: 'Churned' })).json().list.id as string;
    const stays = (await post('/api/v1/lists', { name: 'Members' })).json().list.id as string;
    const steps = [{ subject: 'Later', delay: { days: 5 }, html: '<p>x</p>' }];
    const ids = {
      noTag: await enabled({ name: 'S1', trigger: 'tag_added', tagName: 'stop-test', stopCondition: { type: 'does_not_have_tag', value: 'active' }, steps }),
      event: await enabled({ name: 'S2', trigger: 'tag_added', tagName: 'stop-test', stopCondition: { type: 'event_received', value: 'purchase' }, steps }),
      added: await enabled({ name: 'S3', trigger: 'tag_added', tagName: 'stop-test', stopCondition: { type: 'added_to_list', value: list }, steps }),
      removed: await enabled({ name: 'S4', trigger: 'tag_added', tagName: 'stop-test', stopCondition: { type: 'removed_from_list', value: stays }, steps }),
    };
    await post('/api/v1/lists/' + stays + '/subscribers', { emails: ['stops@example.com'] });
    await post('/api/v1/subscribers/tags', { email: 'stops@example.com', tags: ['stop-test', 'active'] });
    await worker().drain();
    const status = async (id: string) => {
      const run = (await sessionsOf(id))[0]!;
      return run.active === 1 ? 'active' : run.status;
    };
    for (const id of Object.values(ids)) expect(await status(id)).toBe('active');
    await post('/api/v1/subscribers/tags', { email: 'stops@example.com', tags: ['active'], action: 'remove' });
    expect(await status(ids.noTag)).toBe('stopped');
    expect(await status(ids.event)).toBe('active');
    await post('/api/v1/subscribers/events', { email: 'stops@example.com', event: 'purchase' });
    expect(await status(ids.event)).toBe('stopped');
    await post(`/api/v1/lists/${list}/subscribers`, { emails: ['stops@example.com'] });
    expect(await status(ids.added)).toBe('stopped');
    expect(await status(ids.removed)).toBe('active');
    await post(`/api/v1/lists/${stays}/subscribers/remove`, { emails: ['stops@example.com'] });
    expect(await status(ids.removed)).toBe('stopped');
    expect((await sessionsOf(ids.removed))[0]!.end_reason).toBe('stop_condition:removed_from_list');
    for (const id of Object.values(ids)) await post(`/api/v1/sequences/${id}/archive`, {});
  });

  it('starts contact_added sequences for a list, and for any new subscriber when no list is named', async () => {
    const list = (await post('/api/v1/lists', { name: 'Newsletter' })).json().list.id as string;
    const ofList = await enabled({ name: 'List welcome', trigger: 'contact_added', listId: list, steps: [{ subject: 'Welcome to the list', html: '<p>x</p>' }] });
    const anyNew = await enabled({ name: 'Any new', trigger: 'contact_added', steps: [{ subject: 'Welcome', html: '<p>x</p>' }] });
    const added = await post(`/api/v1/lists/${list}/subscribers`, { emails: ['new1@example.com'] });
    expect(added.json()).toMatchObject({ added: 1, results: [{ email: 'new1@example.com', status: 'added' }] });
    expect(await sessionsOf(ofList)).toHaveLength(1);
    expect(await sessionsOf(anyNew)).toHaveLength(1);
    // Adding again starts nothing; an existing subscriber joining starts the list's sequence only.
    await post(`/api/v1/lists/${list}/subscribers`, { emails: ['new1@example.com', 'storm@example.com'] });
    expect(await sessionsOf(ofList)).toHaveLength(2);
    expect(await sessionsOf(anyNew)).toHaveLength(1);
    const members = (await get(`/api/v1/lists/${list}/subscribers`)).json();
    expect(members.data.map((m: { email: string }) => m.email).sort()).toEqual(['new1@example.com', 'storm@example.com']);
    expect((await get(`/api/v1/lists/${list}`)).json().list.subscriberCount).toBe(2);
    await post(`/api/v1/sequences/${ofList}/archive`, {});
    await post(`/api/v1/sequences/${anyNew}/archive`, {});
  });

  it('keeps segment membership current on tag, list, attribute and event changes, and starts segment_entered sequences', async () => {
    const list = (await post('/api/v1/lists', { name: 'Beta' })).json().list.id as string;
    const created = await post('/api/v1/segments', {
      name: 'Engaged pros',
      filter: {
        match: 'all',
        conditions: [
          { type: 'attribute', field: 'attributes.plan', operator: 'equals', value: 'pro' },
          { match: 'any', conditions: [{ type: 'tag', operator: 'has', tag: 'engaged' }, { type: 'list', operator: 'in', listId: list }] },
          { type: 'event', eventName: 'login', operator: 'gte', count: 2, withinDays: 7 },
        ],
      },
    });
    expect(created.statusCode, created.body).toBe(201);
    const segment = created.json().segment.id as string;
    const id = await enabled({ name: 'Pro onboarding', trigger: 'segment_entered', segmentId: segment, steps: [{ subject: 'Welcome, pro', html: '<p>x</p>' }] });
    const count = async () => (await get(`/api/v1/segments/${segment}`)).json().segment.subscriberCount;

    await post('/api/v1/subscribers', { email: 'seg@example.com', customAttributes: { plan: 'pro' } });
    await post('/api/v1/subscribers/events', { email: 'seg@example.com', event: 'login' });
    await post('/api/v1/subscribers/events', { email: 'seg@example.com', event: 'login' });
    expect(await count()).toBe(0);
    await post(`/api/v1/lists/${list}/subscribers`, { emails: ['seg@example.com'] });
    expect(await count()).toBe(1);
    expect(await sessionsOf(id)).toHaveLength(1);
    expect((await get(`/api/v1/segments/${segment}/subscribers`)).json().data[0].email).toBe('seg@example.com');
    // Leaving and entering again starts it again once the first run is over.
    await worker().drain();
    const patched = await t.app.inject({ method: 'PATCH', url: '/api/v1/subscribers/seg@example.com', headers: t.auth, payload: { customAttributes: { plan: 'free' } } });
    expect(patched.statusCode, patched.body).toBe(200);
    expect(await count()).toBe(0);
    await t.app.inject({ method: 'PATCH', url: '/api/v1/subscribers/seg@example.com', headers: t.auth, payload: { customAttributes: { plan: 'pro' } } });
    expect(await count()).toBe(1);
    expect(await sessionsOf(id)).toHaveLength(2);
    // The event window moves with the clock alone: eight days later the logins are too old.
    clock.advance(8 * day);
    await worker().drain();
    expect(await count()).toBe(0);
    clock.advance(-8 * day);
    await post(`/api/v1/sequences/${id}/archive`, {});
  });

  it('deletes a list as if each member left it, and refuses while a sequence or a segment depends on it', async () => {
    const list = (await post('/api/v1/lists', { name: 'Trial' })).json().list.id as string;
    const starter = await enabled({ name: 'Trial welcome', trigger: 'contact_added', listId: list, steps: [{ subject: 'Hi', html: '<p>x</p>' }] });
    const watcher = await enabled({ name: 'Trial drip', trigger: 'tag_added', tagName: 'trialist', stopCondition: { type: 'removed_from_list', value: list }, steps: [{ subject: 'Day 1', delay: { days: 1 }, html: '<p>x</p>' }] });
    const segment = (await post('/api/v1/segments', { name: 'In trial', filter: { match: 'all', conditions: [{ type: 'list', operator: 'in', listId: list }] } })).json().segment.id as string;
    await post('/api/v1/subscribers', { email: 'trial@example.com', tags: ['trialist'] });
    await post(`/api/v1/lists/${list}/subscribers`, { emails: ['trial@example.com'] });
    const del = () => t.app.inject({ method: 'DELETE', url: `/api/v1/lists/${list}`, headers: t.auth });

    const refused = await del();
    expect(refused.statusCode).toBe(422);
    expect(refused.json().message).toContain(starter);
    await post(`/api/v1/sequences/${starter}/disable`, {});
    const bySegment = await del();
    expect(bySegment.statusCode).toBe(422);
    expect(bySegment.json().message).toContain(segment);
    await t.app.inject({ method: 'DELETE', url: `/api/v1/segments/${segment}`, headers: t.auth });

    const [run] = await sessionsOf(watcher);
    expect(run!.active).toBe(1);
    expect((await del()).statusCode).toBe(200);
    expect((await get(`/api/v1/lists/${list}`)).statusCode).toBe(404);
    const [stopped] = await sessionsOf(watcher);
    expect(stopped).toMatchObject({ status: 'stopped', end_reason: 'stop_condition:removed_from_list' });
    await post(`/api/v1/sequences/${watcher}/archive`, {});
  });

  it('keeps segments on message engagement current as messages are delivered and answered', async () => {
    const delivered = (await post('/api/v1/segments', { name: 'Got an email', filter: { match: 'all', conditions: [{ type: 'engagement', metric: 'delivered', channel: 'email', operator: 'gte', count: 1 }] } })).json().segment.id as string;
    const replied = (await post('/api/v1/segments', { name: 'Wrote back', filter: { match: 'all', conditions: [{ type: 'engagement', metric: 'replied', operator: 'gte', count: 1 }] } })).json().segment.id as string;
    const followUp = await enabled({ name: 'After first email', trigger: 'segment_entered', segmentId: delivered, steps: [{ subject: 'Glad you are here', html: '<p>x</p>' }] });
    const newsletter = await enabled({ name: 'Newsletter', trigger: 'tag_added', tagName: 'newsletter', steps: [{ subject: 'Issue 1', html: '<p>x</p>' }] });
    const member = async (id: string) => {
      const page = (await get(`/api/v1/segments/${id}/subscribers?limit=100`)).json().data as Array<{ email: string }>;
      return page.some((m) => m.email === 'engaged@example.com');
    };

    await post('/api/v1/subscribers', { email: 'engaged@example.com', tags: ['newsletter'] });
    expect(await sessionsOf(newsletter)).toHaveLength(1);
    expect(await member(delivered)).toBe(false);
    // The scheduler queues the email, the dispatcher delivers it: the contact enters the segment.
    await worker().drain();
    expect(await member(delivered)).toBe(true);
    const engaged = await t.ctx.database.db.selectFrom('contacts').select('id').where('workspace_id', '=', t.workspaceId).where('email', '=', 'engaged@example.com').executeTakeFirstOrThrow();
    expect((await sessionsOf(followUp)).filter((s) => s.contact_id === engaged.id).map((s) => s.source)).toEqual(['trigger:segment_entered']);

    expect(await member(replied)).toBe(false);
    const reply = await post('/api/v1/sandbox/inbound', { channel: 'email', email: 'engaged@example.com', text: 'Thanks!' });
    expect(reply.statusCode, reply.body).toBe(201);
    expect(await member(replied)).toBe(true);
    for (const id of [followUp, newsletter]) await post(`/api/v1/sequences/${id}/archive`, {});
    for (const id of [delivered, replied]) await t.app.inject({ method: 'DELETE', url: `/api/v1/segments/${id}`, headers: t.auth });
  });

  it('computes a new segment over existing subscribers without starting segment_entered sequences for them', async () => {
    await post('/api/v1/subscribers', { email: 'pre1@example.com', tags: ['preexisting'] });
    await post('/api/v1/subscribers', { email: 'pre2@example.com', tags: ['preexisting'] });
    const segment = (await post('/api/v1/segments', { name: 'Pre', filter: { match: 'all', conditions: [{ type: 'tag', operator: 'has', tag: 'preexisting' }] } })).json().segment;
    expect(segment.subscriberCount).toBe(2);
    const bad = await post('/api/v1/segments', { name: 'Bad', filter: { match: 'all', conditions: [{ type: 'tag', operator: 'maybe', tag: 'x' }] } });
    expect(bad.statusCode).toBe(422);
    expect(Object.keys(bad.json().errors)).toEqual(['filter.conditions[0].operator']);
  });

  it('computes a new segment over more than a page of subscribers, with event windows and lists, and lets the windows expire', async () => {
    const list = (await post('/api/v1/lists', { name: 'Bulk list' })).json().list.id as string;
    const emails = Array.from({ length: 700 }, (_, i) => `bulkseg${i}@example.com`);
    // Every third buys; every other one also joins the list.
    const events = emails.map((email, i) => ({ email, event: i % 3 === 0 ? 'bulk.purchase' : 'bulk.visit' }));
    expect((await post('/api/v1/subscribers/events/bulk', { events })).statusCode).toBe(200);
    expect((await post(`/api/v1/lists/${list}/subscribers`, { emails: emails.filter((_, i) => i % 2 === 0) })).statusCode).toBe(200);
    const created = await post('/api/v1/segments', {
      name: 'Recent buyers on the list',
      filter: { match: 'all', conditions: [{ type: 'event', eventName: 'bulk.purchase', operator: 'gte', count: 1, withinDays: 7 }, { type: 'list', operator: 'in', listId: list }] },
    });
    expect(created.statusCode, created.body).toBe(201);
    const expected = emails.filter((_, i) => i % 3 === 0 && i % 2 === 0).length;
    expect(created.json().segment.subscriberCount).toBe(expected);
    const id = created.json().segment.id as string;
    clock.advance(8 * day);
    await worker().drain();
    expect((await get(`/api/v1/segments/${id}`)).json().segment.subscriberCount).toBe(0);
    clock.advance(-8 * day);
    await t.app.inject({ method: 'DELETE', url: `/api/v1/segments/${id}`, headers: t.auth });
  });

  it('fires a frequency trigger when the count is reached, once per window', async () => {
    const id = await enabled({ name: 'Loyal', trigger: 'frequency', eventName: 'purchase.done', minCount: 3, timeWindowDays: 7, steps: [{ subject: 'You are on a roll', html: '<p>x</p>' }] });
    const buy = () => post('/api/v1/subscribers/events', { email: 'freq@example.com', event: 'purchase.done' });
    await buy();
    clock.advance(day);
    expect((await buy()).json().enrollments).toEqual([]);
    expect(await sessionsOf(id)).toHaveLength(0);
    clock.advance(day);
    expect((await buy()).json().enrollments).toEqual([expect.objectContaining({ sequenceId: id, status: 'enrolled' })]);
    await worker().drain();
    // A fourth and fifth purchase in the same window fire nothing more.
    clock.advance(day);
    expect((await buy()).json().enrollments).toEqual([]);
    expect((await buy()).json().enrollments).toEqual([]);
    expect(await sessionsOf(id)).toHaveLength(1);
    // Once the old purchases have left the window, three more fire it again.
    clock.advance(8 * day);
    await buy();
    await buy();
    expect((await buy()).json().enrollments).toEqual([expect.objectContaining({ status: 'enrolled' })]);
    expect(await sessionsOf(id)).toHaveLength(2);
    await post(`/api/v1/sequences/${id}/archive`, {});
  });

  it('fires an inactivity trigger when the last event is inactiveDays old, once per quiet spell', async () => {
    const id = await enabled({ name: 'Win-back', trigger: 'inactivity', eventName: 'app.open', inactiveDays: 14, steps: [{ subject: 'We miss you', html: '<p>x</p>' }] });
    await post('/api/v1/subscribers/events', { email: 'quiet@example.com', event: 'app.open' });
    await post('/api/v1/subscribers/events', { email: 'busy@example.com', event: 'app.open' });
    const w = worker();
    clock.advance(13 * day);
    await post('/api/v1/subscribers/events', { email: 'busy@example.com', event: 'app.open' });
    await w.drain();
    expect(await sessionsOf(id)).toHaveLength(0);
    clock.advance(day + 1000);
    await w.drain();
    const runs = await sessionsOf(id);
    expect(runs).toHaveLength(1);
    const quiet = await t.ctx.database.db.selectFrom('contacts').select('id').where('email', '=', 'quiet@example.com').where('workspace_id', '=', t.workspaceId).executeTakeFirstOrThrow();
    expect(runs[0]!.contact_id).toBe(quiet.id);
    // Scanning again fires nothing more for the same quiet spell.
    clock.advance(day);
    await w.drain();
    expect(await sessionsOf(id)).toHaveLength(1);
    // busy@ goes quiet 14 days after its last open; quiet@ comes back and goes quiet again.
    await post('/api/v1/subscribers/events', { email: 'quiet@example.com', event: 'app.open' });
    clock.advance(14 * day + 1000);
    await w.drain();
    expect(await sessionsOf(id)).toHaveLength(3);
    await post(`/api/v1/sequences/${id}/archive`, {});
  });

  it('reads only the contacts that crossed the inactivity threshold (the index range), not the active ones', async () => {
    const db = t.ctx.database.db;
    // The scan's own query, as the repository builds it, explained by each engine.
    const compiled = contactsGoneQuietQuery(db, t.workspaceId, 'login', 1, 2, 500).compile();
    const explain = dialect === 'sqlite' ? 'explain query plan ' : 'explain ';
    // One transaction holds one connection, so the setting applies to the explain (tiny test tables would otherwise be scanned).
    const plan = await db.transaction().execute(async (trx) => {
      if (dialect === 'postgres') await sql`set local enable_seqscan = off`.execute(trx);
      return JSON.stringify((await trx.executeQuery(CompiledQuery.raw(explain + compiled.sql, [...compiled.parameters]))).rows);
    });
    expect(plan).toContain('contact_event_stats_last');
    // A range of the index, not a scan of it and not a sort.
    expect(plan).not.toMatch(/TEMP B-TREE|Sort/i);
  });

  it('handles subscribers: duplicateStrategy skip, merge and overwrite; get, patch and delete by email', async () => {
    const first = await post('/api/v1/subscribers', { email: 'Dup@Example.com', firstName: 'Ana', customAttributes: { plan: 'pro', city: 'Lisbon' }, tags: ['a'] });
    expect(first.statusCode).toBe(201);
    expect(first.json().subscriber).toMatchObject({ email: 'dup@example.com', firstName: 'Ana', status: 'active', tags: ['a'] });
    const skip = await post('/api/v1/subscribers', { email: 'dup@example.com', firstName: 'Bea', duplicateStrategy: 'skip' });
    expect(skip.statusCode).toBe(200);
    expect(skip.json()).toMatchObject({ created: false, skipped: true, subscriber: { firstName: 'Ana' } });
    const merge = await post('/api/v1/subscribers', { email: 'dup@example.com', lastName: 'Silva', customAttributes: { plan: 'team' }, tags: ['b'] });
    expect(merge.json().subscriber).toMatchObject({ firstName: 'Ana', lastName: 'Silva', customAttributes: { plan: 'team', city: 'Lisbon' } });
    expect(merge.json().subscriber.tags.sort()).toEqual(['a', 'b']);
    const overwrite = await post('/api/v1/subscribers', { email: 'dup@example.com', firstName: 'Cy', customAttributes: { plan: 'free' }, tags: ['c'], duplicateStrategy: 'overwrite' });
    expect(overwrite.json().subscriber).toMatchObject({ firstName: 'Cy', lastName: null, customAttributes: { plan: 'free' }, tags: ['c'] });
    expect((await post('/api/v1/subscribers', { email: 'dup@example.com', duplicateStrategy: 'sometimes' })).statusCode).toBe(422);
    expect((await post('/api/v1/subscribers', { firstName: 'No email' })).json().errors).toHaveProperty('email');

    const fetched = await get('/api/v1/subscribers/DUP%40example.com');
    expect(fetched.statusCode).toBe(200);
    const unsub = await t.app.inject({ method: 'PATCH', url: '/api/v1/subscribers/dup@example.com', headers: t.auth, payload: { status: 'unsubscribed' } });
    expect(unsub.json().subscriber.status).toBe('unsubscribed');
    // Another workspace sees nothing.
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/subscribers/dup@example.com', headers: { authorization: `Bearer ${t.other.token}` } })).statusCode).toBe(404);
    const deleted = await t.app.inject({ method: 'DELETE', url: '/api/v1/subscribers/dup@example.com', headers: t.auth });
    expect(deleted.statusCode).toBe(200);
    expect((await get('/api/v1/subscribers/dup@example.com')).statusCode).toBe(404);
  });

  it('records bulk events all or nothing, naming the bad item', async () => {
    const before = await t.ctx.database.db.selectFrom('events').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirst();
    const bad = await post('/api/v1/subscribers/events/bulk', { events: [{ email: 'bulk1@example.com', event: 'x' }, { email: 'not-an-email', event: 'x' }, { email: 'bulk3@example.com' }] });
    expect(bad.statusCode).toBe(422);
    expect(Object.keys(bad.json().errors).sort()).toEqual(['events[1].email', 'events[2].event']);
    const after = await t.ctx.database.db.selectFrom('events').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirst();
    expect(Number(after?.n)).toBe(Number(before?.n));
    expect((await get('/api/v1/subscribers/bulk1@example.com')).statusCode).toBe(404);
    const good = await post('/api/v1/subscribers/events/bulk', { events: [{ email: 'bulk1@example.com', event: 'x', properties: { n: 1 } }, { email: 'bulk2@example.com', event: 'y', occurredAt: '2026-04-30T10:00:00Z' }] });
    expect(good.statusCode, good.body).toBe(200);
    expect(good.json()).toMatchObject({ success: true, processed: 2 });
  });

  it('takes the event time as time, timestamp or occurredAt, in ISO 8601 or Unix seconds or milliseconds, and refuses one far ahead', async () => {
    const stored = async (email: string) => {
      const contact = await t.ctx.database.db.selectFrom('contacts').select('id').where('workspace_id', '=', t.workspaceId).where('email', '=', email).executeTakeFirstOrThrow();
      return (await t.ctx.database.db.selectFrom('events').select('occurred_at').where('contact_id', '=', contact.id).execute()).map((e) => Number(e.occurred_at));
    };
    const at = Date.UTC(2026, 3, 30, 10);
    expect((await post('/api/v1/subscribers/events', { email: 'when1@example.com', event: 'seen', time: '2026-04-30T10:00:00Z' })).statusCode).toBe(200);
    expect((await post('/api/v1/subscribers/events', { email: 'when2@example.com', event: 'seen', timestamp: at / 1000 })).statusCode).toBe(200);
    expect((await post('/api/v1/subscribers/events', { email: 'when3@example.com', event: 'seen', occurredAt: at })).statusCode).toBe(200);
    for (const email of ['when1@example.com', 'when2@example.com', 'when3@example.com']) expect(await stored(email)).toEqual([at]);
    // A clock a minute fast is taken as now; an hour ahead is refused and writes nothing.
    expect((await post('/api/v1/subscribers/events', { email: 'when4@example.com', event: 'seen', occurredAt: clock.now() + 60_000 })).statusCode).toBe(200);
    expect(await stored('when4@example.com')).toEqual([clock.now()]);
    const ahead = await post('/api/v1/subscribers/events', { email: 'when5@example.com', event: 'seen', occurredAt: new Date(clock.now() + 3_600_000).toISOString() });
    expect(ahead.statusCode).toBe(422);
    expect(Object.keys(ahead.json().errors)).toEqual(['occurredAt']);
    expect((await get('/api/v1/subscribers/when5@example.com')).statusCode).toBe(404);
    expect((await post('/api/v1/subscribers/events', { email: 'when6@example.com', event: 'seen', time: 'last tuesday' })).json().errors).toHaveProperty('time');
  });

  it('creates a subscriber known only by externalId, and finds it by that id next time', async () => {
    const first = await post('/api/v1/subscribers/events', { externalId: 'crm-778', event: 'signed_up' });
    expect(first.statusCode, first.body).toBe(200);
    expect(first.json().subscriberCreated).toBe(true);
    const second = await post('/api/v1/subscribers/events', { externalId: 'crm-778', event: 'logged_in' });
    expect(second.json()).toMatchObject({ subscriberCreated: false, subscriberId: first.json().subscriberId });
    // An email given later is attached to the same subscriber.
    const third = await post('/api/v1/subscribers/events', { externalId: 'crm-778', email: 'crm778@example.com', event: 'logged_in' });
    expect(third.json().subscriberId).toBe(first.json().subscriberId);
    expect((await get('/api/v1/subscribers/crm778@example.com')).json().subscriber.id).toBe(first.json().subscriberId);
  });
});
