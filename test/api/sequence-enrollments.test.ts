import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../../src/domain/ids.js';
import { SandboxOnlyRegistry } from '../../src/engine/channel-registry.js';
import { enrollContact } from '../../src/engine/automation.js';
import { automationRuleColumns, type AutomationRule } from '../../src/store/audience-repository.js';
import { createTestApp, ManualClock, type TestApp } from '../support/app.js';
import { dialects } from '../support/databases.js';
import { createTestWorker } from '../support/engine.js';

const day = 86_400_000;
const unknownId = '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b';

interface EnrollItem {
  email?: string;
  subscriberId: string;
  status: string;
  reason?: string;
  enrollmentId?: string;
}

interface EnrollmentView {
  id: string;
  subscriberId: string;
  email: string | null;
  status: string;
  currentNodeId: string | null;
  enrollmentKey: string | null;
  event: Record<string, unknown> | null;
  context: Record<string, unknown>;
  endReason: string | null;
  startedAt: string;
  updatedAt: string;
  endedAt: string | null;
  nextRunAt: string | null;
}

/** Two emails a day apart: after the first send, the run waits on `step-2-delay`. */
const twoEmails = [
  { subject: 'Welcome', html: '<p>Hello</p>' },
  { subject: 'Day 2', delay: { days: 1 }, html: '<p>Again</p>' },
];

describe.each(dialects)('sequence enrollments API on %s', (dialect) => {
  let t: TestApp;
  const clock = new ManualClock(Date.UTC(2026, 4, 7, 8, 0, 0));
  beforeAll(async () => {
    t = await createTestApp(dialect, { clock });
  });
  afterAll(async () => t.close());

  const post = async (url: string, payload?: unknown, headers = t.auth) =>
    t.app.inject({ method: 'POST', url, headers, ...(payload === undefined ? {} : { payload: payload as object }) });
  const get = async (url: string, headers = t.auth) => t.app.inject({ method: 'GET', url, headers });
  const db = () => t.ctx.database.db;

  async function createSequence(body: object): Promise<string> {
    const created = await post('/api/v1/sequences', body);
    expect(created.statusCode, created.body).toBe(201);
    return created.json().sequence.id as string;
  }

  async function publishedSequence(body: object): Promise<string> {
    const id = await createSequence(body);
    const published = await post(`/api/v1/sequences/${id}/enable`, {});
    expect(published.statusCode, published.body).toBe(200);
    return id;
  }

  async function enroll(id: string, body: object): Promise<{ success: boolean; enrolled: number; skipped: number; alreadyEnrolled: number; results: EnrollItem[] }> {
    const res = await post(`/api/v1/sequences/${id}/enroll`, body);
    expect(res.statusCode, res.body).toBe(200);
    return res.json();
  }

  async function list(id: string, query = ''): Promise<{ data: EnrollmentView[]; nextCursor: string | null }> {
    const res = await get(`/api/v1/sequences/${id}/enrollments${query ? `?${query}` : ''}`);
    expect(res.statusCode, res.body).toBe(200);
    return res.json();
  }

  async function contactCount(): Promise<number> {
    const row = await db().selectFrom('contacts').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async function sessionsOf(definitionId: string) {
    return db().selectFrom('sessions').selectAll().where('definition_id', '=', definitionId).orderBy('id').execute();
  }

  async function createContact(phone: string, email: string): Promise<string> {
    const res = await post('/api/v1/actions/create-contact', { phone, email });
    expect(res.statusCode, res.body).toBe(201);
    return res.json().id as string;
  }

  describe('pause-enrollments and resume-enrollments', () => {
    it('makes enroll answer skipped/enrollments_paused while paused, and resume lets subscribers in again', async () => {
      const id = await publishedSequence({ name: 'Pausable', steps: twoEmails });
      const paused = await post(`/api/v1/sequences/${id}/pause-enrollments`);
      expect(paused.statusCode, paused.body).toBe(200);
      expect(paused.json()).toMatchObject({ success: true, sequence: { id, status: 'active', enrollmentsPaused: true } });
      expect((await get(`/api/v1/sequences/${id}`)).json().sequence.enrollmentsPaused).toBe(true);

      const refused = await enroll(id, { emails: ['paused@example.com'] });
      expect(refused).toMatchObject({ success: true, enrolled: 0, skipped: 1, alreadyEnrolled: 0 });
      expect(refused.results).toEqual([{ email: 'paused@example.com', subscriberId: expect.any(String), status: 'skipped', reason: 'enrollments_paused' }]);
      expect(await sessionsOf(id)).toHaveLength(0);

      const resumed = await post(`/api/v1/sequences/${id}/resume-enrollments`);
      expect(resumed.statusCode, resumed.body).toBe(200);
      expect(resumed.json().sequence).toMatchObject({ id, status: 'active', enrollmentsPaused: false });

      const admitted = await enroll(id, { emails: ['paused@example.com'] });
      expect(admitted).toMatchObject({ enrolled: 1, skipped: 0 });
      expect(admitted.results[0]).toMatchObject({ status: 'enrolled', subscriberId: refused.results[0]!.subscriberId, enrollmentId: expect.any(String) });
      expect(await sessionsOf(id)).toHaveLength(1);
    });

    it('makes trigger-sequence answer 422 enrollments_paused while paused, and start the contact once resumed', async () => {
      const id = await publishedSequence({ name: 'Pausable trigger', steps: twoEmails });
      await post(`/api/v1/sequences/${id}/pause-enrollments`);
      const refused = await post('/api/v1/actions/trigger-sequence', { sequence_id: id, phone: '+14155557001' });
      expect(refused.statusCode, refused.body).toBe(422);
      expect(refused.json()).toMatchObject({ code: 'business_rule', reason: 'enrollments_paused' });
      expect(await sessionsOf(id)).toHaveLength(0);
      await post(`/api/v1/sequences/${id}/resume-enrollments`);
      const started = await post('/api/v1/actions/trigger-sequence', { sequence_id: id, phone: '+14155557001' });
      expect(started.statusCode, started.body).toBe(201);
      expect(await sessionsOf(id)).toHaveLength(1);
    });

    it('keeps running sessions running while enrollments are paused', async () => {
      const id = await publishedSequence({ name: 'Pause keeps runs', steps: twoEmails });
      const [item] = (await enroll(id, { emails: ['keeps-running@example.com'] })).results;
      await post(`/api/v1/sequences/${id}/pause-enrollments`);
      const [session] = await sessionsOf(id);
      expect(session).toMatchObject({ id: item!.enrollmentId, active: 1, status: 'running' });
    });

    it('answers 404 for an unknown id, a malformed id and another workspace\'s sequence, and 422 when archived', async () => {
      const id = await publishedSequence({ name: 'Pause 404', steps: twoEmails });
      for (const action of ['pause-enrollments', 'resume-enrollments']) {
        expect((await post(`/api/v1/sequences/${unknownId}/${action}`)).statusCode).toBe(404);
        expect((await post(`/api/v1/sequences/not-a-uuid/${action}`)).statusCode).toBe(404);
        expect((await post(`/api/v1/sequences/${id}/${action}`, undefined, { authorization: `Bearer ${t.other.token}` })).statusCode).toBe(404);
      }
      await post(`/api/v1/sequences/${id}/archive`);
      const archived = await post(`/api/v1/sequences/${id}/pause-enrollments`);
      expect(archived.statusCode).toBe(422);
      expect(archived.json().code).toBe('business_rule');
    });
  });

  describe('enroll', () => {
    it('finds subscribers by email ignoring case, creates the missing ones, starts a run each, and reports already_enrolled on a second call', async () => {
      const id = await publishedSequence({ name: 'Enroll by email', steps: twoEmails });
      const existing = await createContact('+14155550301', 'Known@Example.com');
      const before = await contactCount();

      const first = await enroll(id, { emails: ['KNOWN@example.com', ' New.Person@Example.com '], context: { plan: 'pro' } });
      expect(first).toMatchObject({ success: true, enrolled: 2, skipped: 0, alreadyEnrolled: 0 });
      expect(first.results).toEqual([
        { email: 'known@example.com', subscriberId: existing, status: 'enrolled', enrollmentId: expect.any(String) },
        { email: 'new.person@example.com', subscriberId: expect.any(String), status: 'enrolled', enrollmentId: expect.any(String) },
      ]);
      expect(await contactCount()).toBe(before + 1);
      const created = await db().selectFrom('contacts').selectAll().where('id', '=', first.results[1]!.subscriberId).executeTakeFirstOrThrow();
      expect(created).toMatchObject({ workspace_id: t.workspaceId, email: 'new.person@example.com', phone: null, source: 'api' });

      const sessions = await sessionsOf(id);
      expect(sessions.map((s) => s.id).sort()).toEqual(first.results.map((r) => r.enrollmentId).sort());
      for (const s of sessions) {
        expect(s).toMatchObject({ status: 'running', active: 1, source: 'api:enroll', current_node: 'step-1' });
        expect(JSON.parse(s.context)).toEqual({ plan: 'pro' });
      }

      const second = await enroll(id, { emails: ['new.person@EXAMPLE.com'], subscriberIds: [existing] });
      expect(second).toMatchObject({ enrolled: 0, skipped: 0, alreadyEnrolled: 2 });
      expect(second.results).toEqual([
        { email: 'new.person@example.com', subscriberId: first.results[1]!.subscriberId, status: 'already_enrolled', enrollmentId: first.results[1]!.enrollmentId },
        { email: 'known@example.com', subscriberId: existing, status: 'already_enrolled', enrollmentId: first.results[0]!.enrollmentId },
      ]);
      expect(await contactCount()).toBe(before + 1);
      expect(await sessionsOf(id)).toHaveLength(2);

      // The runs it started are real: the worker sends their first email.
      await createTestWorker(t.ctx).drain();
      const sent = await db().selectFrom('messages').select(['recipient', 'channel']).where('definition_id', '=', id).execute();
      expect(sent.map((m) => m.recipient).sort()).toEqual(['known@example.com', 'new.person@example.com']);
    });

    it('starts the contact_added sequences of the subscribers it creates, in the same call, and not of existing ones', async () => {
      const target = await publishedSequence({ name: 'Target', steps: twoEmails });
      // Created before the contact_added sequence exists, so it is not in it.
      const existing = await createContact('+14155550302', 'already-here@example.com');
      const onAdded = await publishedSequence({ name: 'On contact added', trigger: 'contact_added', steps: twoEmails });
      try {
        const outcome = await enroll(target, { emails: ['brand-new@example.com', 'already-here@example.com'] });
        expect(outcome.enrolled).toBe(2);
        const newId = outcome.results[0]!.subscriberId;
        const hooked = await sessionsOf(onAdded);
        expect(hooked.map((s) => s.contact_id)).toEqual([newId]);
        expect(hooked.map((s) => s.contact_id)).not.toContain(existing);
      } finally {
        await t.app.inject({ method: 'DELETE', url: `/api/v1/sequences/${onAdded}`, headers: t.auth });
      }
    });

    it('skips an unknown subscriberId with not_found and enrolls the others', async () => {
      const id = await publishedSequence({ name: 'Unknown ids', steps: twoEmails });
      const known = await createContact('+14155550303', 'known-id@example.com');
      const foreign = (await db().selectFrom('contacts').select('id').where('workspace_id', '=', t.other.workspaceId).executeTakeFirst())?.id;
      const ids = [unknownId, known, ...(foreign ? [foreign] : [])];
      const outcome = await enroll(id, { subscriberIds: ids });
      expect(outcome).toMatchObject({ enrolled: 1, skipped: ids.length - 1, alreadyEnrolled: 0 });
      expect(outcome.results[0]).toEqual({ subscriberId: unknownId, status: 'skipped', reason: 'not_found' });
      expect(outcome.results[1]).toMatchObject({ subscriberId: known, email: 'known-id@example.com', status: 'enrolled' });
      expect((await sessionsOf(id)).map((s) => s.contact_id)).toEqual([known]);
    });

    it("does not enroll another workspace's contact by id", async () => {
      const id = await publishedSequence({ name: 'Foreign contact', steps: twoEmails });
      const otherContact = await t.app.inject({
        method: 'POST',
        url: '/api/v1/actions/create-contact',
        headers: { authorization: `Bearer ${t.other.token}` },
        payload: { phone: '+14155550309', email: 'foreign@example.com' },
      });
      expect(otherContact.statusCode, otherContact.body).toBe(201);
      const outcome = await enroll(id, { subscriberIds: [otherContact.json().id] });
      expect(outcome.results).toEqual([{ subscriberId: otherContact.json().id, status: 'skipped', reason: 'not_found' }]);
      expect(await sessionsOf(id)).toHaveLength(0);
    });

    it('skips a subscriber opted out of email with reason unsubscribed when the sequence sends email', async () => {
      const id = await publishedSequence({ name: 'Opted out', steps: twoEmails });
      const contact = await createContact('+14155550304', 'opted-out@example.com');
      await db().updateTable('contacts').set({ email_opted_out_at: clock.now() }).where('id', '=', contact).execute();
      const outcome = await enroll(id, { emails: ['opted-out@example.com'] });
      expect(outcome.results).toEqual([{ email: 'opted-out@example.com', subscriberId: contact, status: 'skipped', reason: 'unsubscribed' }]);
      expect(await sessionsOf(id)).toHaveLength(0);

      // A sequence that sends no email lets the same subscriber in.
      const smsOnly = await publishedSequence({ name: 'SMS only', steps: [{ type: 'sms', text: 'hi' }] });
      expect((await enroll(smsOnly, { subscriberIds: [contact] })).results[0]!.status).toBe('enrolled');
    });

    it('refuses more than 500 entries in total with a 422 naming the field, and writes nothing', async () => {
      const id = await publishedSequence({ name: 'Too many', steps: twoEmails });
      const before = await contactCount();
      const emails = Array.from({ length: 501 }, (_, i) => `bulk${i}@example.com`);
      const tooMany = await post(`/api/v1/sequences/${id}/enroll`, { emails });
      expect(tooMany.statusCode).toBe(422);
      expect(tooMany.json().errors).toHaveProperty('emails');

      const split = await post(`/api/v1/sequences/${id}/enroll`, {
        emails: emails.slice(0, 300),
        subscriberIds: Array.from({ length: 201 }, () => unknownId),
      });
      expect(split.statusCode).toBe(422);
      expect(Object.keys(split.json().errors).sort()).toEqual(['emails', 'subscriberIds']);

      // Exactly 500 is allowed.
      const full = await enroll(id, { emails: emails.slice(0, 500) });
      expect(full.enrolled).toBe(500);
      expect(await contactCount()).toBe(before + 500);
    });

    it('answers 422 naming the field for no subscribers, a malformed email or id, or a context that is not an object', async () => {
      const id = await publishedSequence({ name: 'Bad input', steps: twoEmails });
      const before = await contactCount();
      const cases: Array<[object | undefined, string]> = [
        [{}, 'emails'],
        [undefined, 'body'],
        [{ emails: [] }, 'emails'],
        [{ emails: ['ok@example.com', 'not-an-email'] }, 'emails.1'],
        [{ subscriberIds: ['not-a-uuid'] }, 'subscriberIds.0'],
        [{ emails: ['ok@example.com'], context: 'text' }, 'context'],
        [{ emails: ['ok@example.com'], email: 'typo@example.com' }, 'email'],
      ];
      for (const [body, field] of cases) {
        const res = await post(`/api/v1/sequences/${id}/enroll`, body);
        expect(res.statusCode, JSON.stringify(body)).toBe(422);
        expect(res.json().errors, JSON.stringify(body)).toHaveProperty([field]);
      }
      expect(await contactCount()).toBe(before);
      expect(await sessionsOf(id)).toHaveLength(0);
    });

    it("answers 404 for another workspace's sequence, an unknown id and a malformed id", async () => {
      const id = await publishedSequence({ name: 'Mine', steps: twoEmails });
      const foreign = await post(`/api/v1/sequences/${id}/enroll`, { emails: ['x@example.com'] }, { authorization: `Bearer ${t.other.token}` });
      expect(foreign.statusCode).toBe(404);
      expect(foreign.json().code).toBe('not_found');
      expect((await post(`/api/v1/sequences/${unknownId}/enroll`, { emails: ['x@example.com'] })).statusCode).toBe(404);
      expect((await post('/api/v1/sequences/nope/enroll', { emails: ['x@example.com'] })).statusCode).toBe(404);
      expect(await sessionsOf(id)).toHaveLength(0);
    });

    it('answers 422 business_rule for a draft, a disabled, an archived or an empty sequence, saying why', async () => {
      const draft = await createSequence({ name: 'Draft', steps: twoEmails });
      const res = await post(`/api/v1/sequences/${draft}/enroll`, { emails: ['draft@example.com'] });
      expect(res.statusCode).toBe(422);
      expect(res.json()).toMatchObject({ code: 'business_rule' });
      expect(res.json().message).toMatch(/draft/);

      const disabled = await publishedSequence({ name: 'Disabled', steps: twoEmails });
      await post(`/api/v1/sequences/${disabled}/disable`);
      const off = await post(`/api/v1/sequences/${disabled}/enroll`, { emails: ['draft@example.com'] });
      expect(off.statusCode).toBe(422);
      expect(off.json().message).toMatch(/disabled/);

      const archived = await publishedSequence({ name: 'Archived', steps: twoEmails });
      await post(`/api/v1/sequences/${archived}/archive`);
      const gone = await post(`/api/v1/sequences/${archived}/enroll`, { emails: ['draft@example.com'] });
      expect(gone.statusCode).toBe(422);
      expect(gone.json().message).toMatch(/archived/);

      // Published with steps, then its version emptied underneath (publishing refuses an empty draft).
      const emptied = await publishedSequence({ name: 'Emptied', steps: twoEmails });
      const row = await db().selectFrom('definitions').select('current_version_id').where('id', '=', emptied).executeTakeFirstOrThrow();
      await db()
        .updateTable('definition_versions')
        .set({ body: JSON.stringify({ name: 'Emptied', kind: 'sequence', graph: { nodes: [], edges: [] }, settings: {}, trigger: { type: 'api' } }) })
        .where('id', '=', row.current_version_id!)
        .execute();
      const empty = await post(`/api/v1/sequences/${emptied}/enroll`, { emails: ['draft@example.com'] });
      expect(empty.statusCode).toBe(422);
      expect(empty.json()).toMatchObject({ code: 'business_rule' });
      expect(empty.json().message).toMatch(/no steps/);

      const made = await db().selectFrom('contacts').select('id').where('email', '=', 'draft@example.com').execute();
      expect(made).toHaveLength(0);
    });
  });

  describe('enrollments listing', () => {
    it('filters by status, node, subscriber and email, newest first, and pages with the cursor', async () => {
      const id = await publishedSequence({ name: 'Listed', steps: twoEmails });
      const emails = ['list-a@example.com', 'list-b@example.com', 'list-c@example.com'];
      const enrolled = (await enroll(id, { emails, context: { source: 'listing' } })).results;
      const [a, b, c] = enrolled;

      const fresh = await list(id);
      // Newest first: the reverse of the order they were enrolled in.
      expect(fresh.data.map((e) => e.id)).toEqual([c!.enrollmentId, b!.enrollmentId, a!.enrollmentId]);
      expect(fresh.nextCursor).toBeNull();
      expect(fresh.data[2]).toEqual({
        id: a!.enrollmentId,
        subscriberId: a!.subscriberId,
        email: 'list-a@example.com',
        status: 'running',
        currentNodeId: 'step-1',
        enrollmentKey: null,
        event: null,
        context: { source: 'listing' },
        endReason: null,
        startedAt: new Date(clock.now()).toISOString(),
        updatedAt: new Date(clock.now()).toISOString(),
        endedAt: null,
        nextRunAt: new Date(clock.now()).toISOString(),
      });
      expect((await list(id, 'nodeId=step-1')).data).toHaveLength(3);

      await createTestWorker(t.ctx).drain();
      const waiting = await list(id, 'nodeId=step-2-delay');
      expect(waiting.data.map((e) => e.id)).toEqual([c!.enrollmentId, b!.enrollmentId, a!.enrollmentId]);
      expect(waiting.data[0]!.nextRunAt).toBe(new Date(clock.now() + day).toISOString());
      expect((await list(id, 'nodeId=step-1')).data).toHaveLength(0);

      const cancelled = await post(`/api/v1/sequences/${id}/enrollments/cancel`, { subscriberIds: [b!.subscriberId] });
      expect(cancelled.statusCode, cancelled.body).toBe(200);

      expect((await list(id, 'status=active')).data.map((e) => e.id)).toEqual([c!.enrollmentId, a!.enrollmentId]);
      expect((await list(id, 'status=running')).data.map((e) => e.id)).toEqual([c!.enrollmentId, a!.enrollmentId]);
      expect((await list(id, 'status=waiting')).data).toEqual([]);
      const stopped = await list(id, 'status=stopped');
      expect(stopped.data.map((e) => e.id)).toEqual([b!.enrollmentId]);
      expect(stopped.data[0]).toMatchObject({ status: 'stopped', endReason: 'cancelled_by_api', endedAt: new Date(clock.now()).toISOString() });
      expect((await list(id, 'status=completed')).data).toEqual([]);
      expect((await list(id, `status=active&nodeId=step-2-delay`)).data).toHaveLength(2);

      expect((await list(id, `subscriberId=${a!.subscriberId}`)).data.map((e) => e.id)).toEqual([a!.enrollmentId]);
      expect((await list(id, 'email=LIST-C@example.com')).data.map((e) => e.id)).toEqual([c!.enrollmentId]);
      expect((await list(id, 'email=nobody@example.com')).data).toEqual([]);
      expect((await list(id, `email=list-c@example.com&subscriberId=${a!.subscriberId}`)).data).toEqual([]);
      expect((await list(id, `subscriberId=${unknownId}`)).data).toEqual([]);

      const first = await list(id, 'limit=2');
      expect(first.data.map((e) => e.id)).toEqual([c!.enrollmentId, b!.enrollmentId]);
      expect(first.nextCursor).toEqual(expect.any(String));
      const second = await list(id, `limit=2&cursor=${first.nextCursor}`);
      expect(second.data.map((e) => e.id)).toEqual([a!.enrollmentId]);
      expect(second.nextCursor).toBeNull();
      const filteredPage = await list(id, `limit=1&status=active`);
      expect(filteredPage.data.map((e) => e.id)).toEqual([c!.enrollmentId]);
      expect((await list(id, `limit=1&status=active&cursor=${filteredPage.nextCursor}`)).data.map((e) => e.id)).toEqual([a!.enrollmentId]);
    });

    it('answers 422 naming the parameter for a bad filter or cursor, and 404 for a sequence it cannot see', async () => {
      const id = await publishedSequence({ name: 'Listing errors', steps: twoEmails });
      const cases: Array<[string, string]> = [
        ['status=bogus', 'status'],
        ['limit=0', 'limit'],
        ['limit=201', 'limit'],
        ['cursor=not!a!cursor', 'cursor'],
        [`cursor=${Buffer.from('nope').toString('base64url')}`, 'cursor'],
        ['subscriberId=abc', 'subscriberId'],
        ['email=not-an-email', 'email'],
      ];
      for (const [query, field] of cases) {
        const res = await get(`/api/v1/sequences/${id}/enrollments?${query}`);
        expect(res.statusCode, query).toBe(422);
        expect(Object.keys(res.json().errors ?? {}).join(','), query).toContain(field);
      }
      expect((await get(`/api/v1/sequences/${id}/enrollments`, { authorization: `Bearer ${t.other.token}` })).statusCode).toBe(404);
      expect((await get(`/api/v1/sequences/${unknownId}/enrollments`)).statusCode).toBe(404);
      expect((await get('/api/v1/sequences/x/enrollments')).statusCode).toBe(404);
    });
  });

  describe('enrollments cancel', () => {
    it('stops the subscriber run and cancels its queued message, leaving the other runs alone', async () => {
      const id = await publishedSequence({ name: 'Cancel by subscriber', steps: twoEmails });
      const [keep, drop] = (await enroll(id, { emails: ['keep@example.com', 'drop@example.com'] })).results;
      // Queue the first emails without sending them.
      const scheduler = createTestWorker(t.ctx, { channels: new SandboxOnlyRegistry({ inline: false }) });
      await scheduler.runSchedulerOnce();
      const queued = await db().selectFrom('messages').select(['session_id', 'status']).where('definition_id', '=', id).execute();
      expect(queued.map((m) => m.status)).toEqual(['queued', 'queued']);

      const res = await post(`/api/v1/sequences/${id}/enrollments/cancel`, { emails: ['DROP@example.com'], reason: 'customer asked' });
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json()).toEqual({
        success: true,
        dryRun: false,
        cancelled: 1,
        enrollments: [{ id: drop!.enrollmentId, subscriberId: drop!.subscriberId, email: 'drop@example.com', enrollmentKey: null }],
      });
      const sessions = new Map((await sessionsOf(id)).map((s) => [s.id, s]));
      expect(sessions.get(drop!.enrollmentId!)).toMatchObject({ status: 'stopped', active: 0, end_reason: 'customer asked', wake_at: null });
      expect(sessions.get(keep!.enrollmentId!)).toMatchObject({ status: 'running', active: 1 });
      const messages = new Map((await db().selectFrom('messages').select(['session_id', 'status']).where('definition_id', '=', id).execute()).map((m) => [m.session_id, m.status]));
      expect(messages.get(drop!.enrollmentId!)).toBe('cancelled');
      expect(messages.get(keep!.enrollmentId!)).toBe('queued');

      // A second cancel finds nothing active; the stopped run never sends its second email.
      const again = await post(`/api/v1/sequences/${id}/enrollments/cancel`, { subscriberIds: [drop!.subscriberId] });
      expect(again.json()).toMatchObject({ cancelled: 0, enrollments: [] });
      const worker = createTestWorker(t.ctx);
      await worker.drain();
      clock.advance(day);
      await worker.drain();
      const sent = await db().selectFrom('messages').select(['session_id', 'status']).where('definition_id', '=', id).where('status', '!=', 'cancelled').execute();
      expect(sent.every((m) => m.session_id === keep!.enrollmentId)).toBe(true);
      expect(sent).toHaveLength(2);
    });

    it('cancels by a field of the stored event, the context or the enrollment key, matching only the right runs; dryRun changes nothing', async () => {
      const id = await publishedSequence({
        name: 'Order follow-up',
        trigger: 'event_received',
        eventName: 'order.placed',
        enrollmentMode: 'matching_field',
        enrollmentFieldPath: 'order.id',
        steps: twoEmails,
      });
      const ana = await createContact('+14155550311', 'ana-orders@example.com');
      const bo = await createContact('+14155550312', 'bo-orders@example.com');
      const rule: AutomationRule = await db()
        .selectFrom('definitions')
        .select(automationRuleColumns)
        .where('id', '=', id)
        .executeTakeFirstOrThrow();
      const start = async (contactId: string, orderId: string | number, batch: number) => {
        const result = await enrollContact(t.ctx, db(), rule, contactId, {
          source: 'test',
          event: { id: newId(clock.now()), name: 'order.placed', properties: { order: { id: orderId } }, occurredAt: clock.now() },
          context: { batch },
        });
        expect(result.status).toBe('enrolled');
        return result.sessionId!;
      };
      const anaA1 = await start(ana, 'A1', 1);
      const anaA2 = await start(ana, 'A2', 2);
      const boA1 = await start(bo, 'A1', 1);
      const bo1042 = await start(bo, 1042, 3);
      const active = async () => (await db().selectFrom('sessions').select('id').where('definition_id', '=', id).where('active', '=', 1).execute()).map((s) => s.id).sort();

      // The listing shows the stored event and the enrollment key.
      const listed = (await list(id, `subscriberId=${ana}`)).data;
      expect(listed.map((e) => [e.id, e.enrollmentKey, e.event])).toEqual([
        [anaA2, 'A2', { order: { id: 'A2' } }],
        [anaA1, 'A1', { order: { id: 'A1' } }],
      ]);

      const dry = await post(`/api/v1/sequences/${id}/enrollments/cancel`, { fieldPath: 'order.id', values: ['A1'], dryRun: true });
      expect(dry.statusCode, dry.body).toBe(200);
      expect(dry.json()).toMatchObject({ success: true, dryRun: true, cancelled: 2 });
      expect(dry.json().enrollments).toEqual([
        { id: anaA1, subscriberId: ana, email: 'ana-orders@example.com', enrollmentKey: 'A1' },
        { id: boA1, subscriberId: bo, email: 'bo-orders@example.com', enrollmentKey: 'A1' },
      ]);
      expect(await active()).toEqual([anaA1, anaA2, boA1, bo1042].sort());

      // Both selectors narrow each other.
      const narrowed = await post(`/api/v1/sequences/${id}/enrollments/cancel`, { subscriberIds: [bo], fieldPath: 'order.id', values: ['A1'] });
      expect(narrowed.json()).toMatchObject({ dryRun: false, cancelled: 1, enrollments: [{ id: boA1 }] });
      expect(await active()).toEqual([anaA1, anaA2, bo1042].sort());

      const byOrder = await post(`/api/v1/sequences/${id}/enrollments/cancel`, { fieldPath: 'order.id', values: ['A1', 'Z9'] });
      expect(byOrder.json()).toMatchObject({ cancelled: 1, enrollments: [{ id: anaA1, enrollmentKey: 'A1' }] });
      expect(await active()).toEqual([anaA2, bo1042].sort());

      // Numbers compare as strings, in either direction.
      expect((await post(`/api/v1/sequences/${id}/enrollments/cancel`, { fieldPath: 'order.id', values: ['1042'], dryRun: true })).json().enrollments).toEqual([
        expect.objectContaining({ id: bo1042 }),
      ]);
      const byContext = await post(`/api/v1/sequences/${id}/enrollments/cancel`, { fieldPath: 'context.batch', values: [3] });
      expect(byContext.json()).toMatchObject({ cancelled: 1, enrollments: [{ id: bo1042 }] });

      const byKey = await post(`/api/v1/sequences/${id}/enrollments/cancel`, { fieldPath: 'enrollmentKey', values: ['A2'], reason: 'refunded' });
      expect(byKey.json()).toMatchObject({ cancelled: 1, enrollments: [{ id: anaA2 }] });
      expect(await active()).toEqual([]);
      const ended = await db().selectFrom('sessions').select(['id', 'end_reason']).where('definition_id', '=', id).execute();
      expect(new Map(ended.map((s) => [s.id, s.end_reason]))).toEqual(
        new Map([
          [anaA1, 'cancelled_by_api'],
          [anaA2, 'refunded'],
          [boA1, 'cancelled_by_api'],
          [bo1042, 'cancelled_by_api'],
        ]),
      );
    });

    it('scans more active runs than one page holds', async () => {
      const id = await publishedSequence({ name: 'Many runs', steps: twoEmails });
      const emails = Array.from({ length: 500 }, (_, i) => `many${i}@example.com`);
      await enroll(id, { emails, context: { wave: 1 } });
      await enroll(id, { emails: Array.from({ length: 200 }, (_, i) => `more${i}@example.com`), context: { wave: 2 } });
      // The second wave's runs sit after the first 500 in id order: only a scan past the first page finds them.
      const second = await post(`/api/v1/sequences/${id}/enrollments/cancel`, { fieldPath: 'context.wave', values: [2], dryRun: true });
      expect(second.json().cancelled).toBe(200);
      expect(new Set(second.json().enrollments.map((e: { email: string }) => e.email.slice(0, 4)))).toEqual(new Set(['more']));
      const both = await post(`/api/v1/sequences/${id}/enrollments/cancel`, { fieldPath: 'context.wave', values: ['1', '2'], dryRun: true });
      expect(both.json().cancelled).toBe(700);
      const target = (await db().selectFrom('contacts').select('id').where('email', 'in', ['many3@example.com', 'more199@example.com']).execute()).map((c) => c.id);
      expect((await post(`/api/v1/sequences/${id}/enrollments/cancel`, { subscriberIds: target, dryRun: true })).json().cancelled).toBe(2);
      expect((await post(`/api/v1/sequences/${id}/enrollments/cancel`, { fieldPath: 'context.missing', values: ['x'] })).json().cancelled).toBe(0);

      const real = await post(`/api/v1/sequences/${id}/enrollments/cancel`, { fieldPath: 'context.wave', values: [1, 2] });
      expect(real.json().cancelled).toBe(700);
      const left = await db().selectFrom('sessions').select('id').where('definition_id', '=', id).where('active', '=', 1).execute();
      expect(left).toHaveLength(0);
    });

    it('answers 422 naming the field for a missing or incomplete selector and bad values, and 404 for a sequence it cannot see', async () => {
      const id = await publishedSequence({ name: 'Cancel errors', steps: twoEmails });
      const cases: Array<[object | undefined, string]> = [
        [{}, 'subscriberIds'],
        [undefined, 'body'],
        [{ dryRun: true }, 'subscriberIds'],
        [{ fieldPath: 'order.id' }, 'values'],
        [{ values: ['A1'] }, 'fieldPath'],
        [{ fieldPath: 'order.id', values: [] }, 'values'],
        [{ fieldPath: 'order..id', values: ['A1'] }, 'fieldPath'],
        [{ fieldPath: 'order.id', values: Array.from({ length: 501 }, (_, i) => i) }, 'values'],
        [{ fieldPath: 'order.id', values: [{ id: 1 }] }, 'values.0'],
        [{ subscriberIds: ['nope'] }, 'subscriberIds.0'],
        [{ emails: ['nope'] }, 'emails.0'],
        [{ subscriberIds: Array.from({ length: 501 }, () => unknownId) }, 'subscriberIds'],
        [{ subscriberIds: [unknownId], reason: 'x'.repeat(201) }, 'reason'],
        [{ subscriberIds: [unknownId], dryRun: 'yes' }, 'dryRun'],
      ];
      for (const [body, field] of cases) {
        const res = await post(`/api/v1/sequences/${id}/enrollments/cancel`, body);
        expect(res.statusCode, JSON.stringify(body)?.slice(0, 200)).toBe(422);
        expect(Object.keys(res.json().errors ?? {}).join(','), JSON.stringify(body)?.slice(0, 200)).toContain(field);
      }
      const foreign = await post(`/api/v1/sequences/${id}/enrollments/cancel`, { subscriberIds: [unknownId] }, { authorization: `Bearer ${t.other.token}` });
      expect(foreign.statusCode).toBe(404);
      expect((await post(`/api/v1/sequences/${unknownId}/enrollments/cancel`, { subscriberIds: [unknownId] })).statusCode).toBe(404);
    });

    it("never cancels another workspace's runs, even when their subscriber ids are given", async () => {
      const mine = await publishedSequence({ name: 'Mine to cancel', steps: twoEmails });
      const [own] = (await enroll(mine, { emails: ['own-run@example.com'] })).results;
      const other = { authorization: `Bearer ${t.other.token}` };
      const created = await t.app.inject({ method: 'POST', url: '/api/v1/sequences', headers: other, payload: { name: 'Theirs', steps: twoEmails } });
      const theirs = created.json().sequence.id as string;
      await t.app.inject({ method: 'POST', url: `/api/v1/sequences/${theirs}/enable`, headers: other, payload: {} });
      const res = await post(`/api/v1/sequences/${theirs}/enrollments/cancel`, { subscriberIds: [own!.subscriberId] });
      expect(res.statusCode).toBe(404);
      expect((await sessionsOf(mine))[0]).toMatchObject({ active: 1 });
    });
  });
});
