import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { computeTwilioSignature } from '../../src/channels/twilio-webhooks.js';
import { abSide } from '../../src/domain/ab-split.js';
import { newId } from '../../src/domain/ids.js';
import { readTrackingToken } from '../../src/domain/link-tracking.js';
import { setProviderSettings } from '../../src/engine/provider-settings-service.js';
import { createTestApp, ManualClock, type TestApp } from '../support/app.js';
import { dialects } from '../support/databases.js';
import { createTestWorker } from '../support/engine.js';
import { startFakeTwilio, type FakeTwilio } from '../support/fake-twilio.js';

const publicUrl = 'https://nudge.example.com';
let phoneSeq = 0;
/** A fresh US phone number per call, so contacts of different tests never share one. */
const phone = () => `+1415557${String(++phoneSeq).padStart(4, '0')}`;

interface SessionView {
  id: string;
  contact_id: string;
  definition_id: string;
  version_id: string;
  ab_variant: string | null;
  ab_parent_id: string | null;
  status: string;
}

describe.each(dialects)('A/B tests of sequences on %s', (dialect) => {
  let t: TestApp;
  const clock = new ManualClock(Date.UTC(2026, 4, 7, 8, 0, 0));
  beforeAll(async () => {
    t = await createTestApp(dialect, { clock, env: { NUDGE_PUBLIC_URL: publicUrl } });
  });
  afterAll(async () => t.close());

  const db = () => t.ctx.database.db;
  const request = (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: unknown, headers: Record<string, string> = t.auth) =>
    t.app.inject({ method, url, headers, ...(payload === undefined ? {} : { payload: payload as object }) });
  const post = (url: string, payload?: unknown, headers?: Record<string, string>) => request('POST', url, payload ?? {}, headers);

  async function sequence(name: string, body: object = {}, publish = true): Promise<string> {
    const created = await post('/api/v1/sequences', { name, steps: [{ type: 'sms', text: `${name} says hi` }], ...body });
    expect(created.statusCode, created.body).toBe(201);
    const id = created.json().sequence.id as string;
    if (publish) expect((await post(`/api/v1/sequences/${id}/enable`)).statusCode).toBe(200);
    return id;
  }

  async function abPair(splitPercent: number, options: { a?: object; b?: object } = {}): Promise<{ a: string; b: string }> {
    const a = await sequence(`A ${newId()}`, options.a);
    const b = await sequence(`B ${newId()}`, options.b);
    const res = await request('PUT', `/api/v1/sequences/${a}/ab-test`, { variantSequenceId: b, splitPercent });
    expect(res.statusCode, res.body).toBe(200);
    return { a, b };
  }

  const sessionsOfTest = (a: string): Promise<SessionView[]> =>
    db().selectFrom('sessions').select(['id', 'contact_id', 'definition_id', 'version_id', 'ab_variant', 'ab_parent_id', 'status']).where('ab_parent_id', '=', a).orderBy('id').execute();
  const versionOf = async (id: string) => (await db().selectFrom('definitions').select('current_version_id').where('id', '=', id).executeTakeFirstOrThrow()).current_version_id;

  /** Every session of the test runs the side its contact hashes to, with that side's sequence and published version. */
  async function expectSidesHonoured(a: string, b: string, splitPercent: number, sessions: SessionView[]): Promise<void> {
    const [versionA, versionB] = [await versionOf(a), await versionOf(b)];
    for (const s of sessions) {
      const side = abSide(a, s.contact_id, splitPercent);
      expect({ contact: s.contact_id, side: s.ab_variant, parent: s.ab_parent_id, definition: s.definition_id, version: s.version_id }).toEqual({
        contact: s.contact_id,
        side,
        parent: a,
        definition: side === 'B' ? b : a,
        version: side === 'B' ? versionB : versionA,
      });
    }
  }

  describe('configuration', () => {
    it('sets a test, shows it on the sequence, and removes it', async () => {
      const a = await sequence('Welcome long');
      const b = await sequence('Welcome short');
      const set = await request('PUT', `/api/v1/sequences/${a}/ab-test`, { variantSequenceId: b, splitPercent: 30 });
      expect(set.statusCode, set.body).toBe(200);
      expect(set.json()).toEqual({ success: true, abTest: { sequenceId: a, variantSequenceId: b, variantSequenceName: 'Welcome short', variantStatus: 'active', splitPercent: 30 } });
      expect((await request('GET', `/api/v1/sequences/${a}`)).json().sequence.abTest).toEqual({ variantSequenceId: b, splitPercent: 30 });
      expect((await request('GET', `/api/v1/sequences/${b}`)).json().sequence.abTest).toBeNull();

      expect((await request('PUT', `/api/v1/sequences/${a}/ab-test`, { variantSequenceId: b, splitPercent: 60 })).json().abTest.splitPercent).toBe(60);
      const removed = await request('DELETE', `/api/v1/sequences/${a}/ab-test`);
      expect(removed.json()).toEqual({ success: true, removed: true });
      expect((await request('GET', `/api/v1/sequences/${a}`)).json().sequence.abTest).toBeNull();
      expect((await request('DELETE', `/api/v1/sequences/${a}/ab-test`)).json()).toEqual({ success: true, removed: false });
    });

    it('refuses a bad variant or percentage with a 422 naming the field, and changes nothing', async () => {
      const a = await sequence('Tested');
      const b = await sequence('Variant');
      const flow = (await post('/api/v1/flows', { name: 'A flow', steps: [{ type: 'whatsapp', text: 'hi' }] })).json().flow.id as string;
      const foreign = (await post('/api/v1/sequences', { name: 'Theirs', steps: [{ type: 'sms', text: 'x' }] }, { authorization: `Bearer ${t.other.token}` })).json().sequence.id as string;
      const withTest = await abPair(50);
      const cases: Array<[unknown, string, RegExp?]> = [
        [{ splitPercent: 30 }, 'variantSequenceId'],
        [{ variantSequenceId: b }, 'splitPercent'],
        [{ variantSequenceId: 'not-an-id', splitPercent: 30 }, 'variantSequenceId', /UUID/],
        [{ variantSequenceId: a, splitPercent: 30 }, 'variantSequenceId', /own variant/],
        [{ variantSequenceId: flow, splitPercent: 30 }, 'variantSequenceId', /no sequence/],
        [{ variantSequenceId: foreign, splitPercent: 30 }, 'variantSequenceId', /no sequence/],
        [{ variantSequenceId: withTest.a, splitPercent: 30 }, 'variantSequenceId', /variant cannot have a variant/],
        [{ variantSequenceId: b, splitPercent: 0 }, 'splitPercent'],
        [{ variantSequenceId: b, splitPercent: 100 }, 'splitPercent'],
        [{ variantSequenceId: b, splitPercent: 12.5 }, 'splitPercent'],
        [{ variantSequenceId: b, splitPercent: '30' }, 'splitPercent'],
        [{ variantSequenceId: b, splitPercent: 30, extra: true }, 'extra'],
      ];
      for (const [payload, field, message] of cases) {
        const res = await request('PUT', `/api/v1/sequences/${a}/ab-test`, payload);
        expect(res.statusCode, JSON.stringify(payload)).toBe(422);
        expect(Object.keys(res.json().errors ?? {}), JSON.stringify(payload)).toContain(field);
        if (message) expect(res.json().message).toMatch(message);
      }
      // The variant of a test cannot run a test of its own.
      const variantAsA = await request('PUT', `/api/v1/sequences/${withTest.b}/ab-test`, { variantSequenceId: b, splitPercent: 30 });
      expect(variantAsA.statusCode).toBe(422);
      expect(variantAsA.json()).toMatchObject({ code: 'business_rule', reason: 'sequence_is_a_variant' });
      expect((await request('GET', `/api/v1/sequences/${a}`)).json().sequence.abTest).toBeNull();
      expect((await request('GET', `/api/v1/sequences/${withTest.b}`)).json().sequence.abTest).toBeNull();
    });

    it('ends the test when its variant is deleted, so A takes enrollments again', async () => {
      const { a, b } = await abPair(50);
      expect((await request('DELETE', `/api/v1/sequences/${b}`)).statusCode).toBe(200);
      expect((await request('GET', `/api/v1/sequences/${a}`)).json().sequence.abTest).toBeNull();
      const res = await post(`/api/v1/sequences/${a}/execute`, { contacts: [{ email: `after-delete-${newId()}@example.com` }] });
      expect(res.json().results[0]).toMatchObject({ status: 'queued' });
    });
  });

  describe('assignment', () => {
    it('splits 10,000 contacts within one percentage point of the setting', () => {
      // Ids from a seeded generator, shaped like the UUIDv7s contacts get: random ids
      // would make the check itself random (1 point is two standard deviations at 50%).
      let seed = 0x9e3779b9;
      const next = () => {
        seed = (seed + 0x6d2b79f5) | 0;
        let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
        t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
        return ((t ^ (t >>> 14)) >>> 0).toString(16).padStart(8, '0');
      };
      const seededId = () => {
        const hex = next() + next() + next() + next();
        return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-7${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
      };
      const a = seededId();
      const contacts = Array.from({ length: 10_000 }, seededId);
      for (const percent of [10, 30, 50, 80]) {
        const onB = contacts.filter((contact) => abSide(a, contact, percent) === 'B').length;
        expect(Math.abs(onB / 10_000 - percent / 100), `${percent}%`).toBeLessThanOrEqual(0.01);
      }
    });

    it('puts each of 300 contacts executed through the API on its side, running that side’s sequence', async () => {
      const { a, b } = await abPair(30);
      for (let call = 0; call < 3; call += 1) {
        const res = await post(`/api/v1/sequences/${a}/execute`, { contacts: Array.from({ length: 100 }, (_, i) => ({ email: `split-${call}-${i}@example.com`, phone: phone() })) });
        expect(res.statusCode, res.body).toBe(200);
        for (const r of res.json().results) expect(r).toMatchObject({ status: 'queued', variant: abSide(a, r.contactId, 30), variantSequenceId: abSide(a, r.contactId, 30) === 'B' ? b : a });
      }
      const sessions = await sessionsOfTest(a);
      expect(sessions).toHaveLength(300);
      await expectSidesHonoured(a, b, 30, sessions);
      // Both sides are used (the exact share of 300 is left to the 10,000-contact check).
      const onB = sessions.filter((s) => s.ab_variant === 'B').length;
      expect(onB).toBeGreaterThan(50);
      expect(onB).toBeLessThan(130);
    });

    it('honours the split on every enrollment path: trigger-sequence, enroll, execute and the automation', async () => {
      const { a, b } = await abPair(50, { a: { trigger: 'tag_added', tagName: 'ab-path' } });
      const viaTrigger: string[] = [];
      for (let i = 0; i < 20; i += 1) {
        const res = await post('/api/v1/actions/trigger-sequence', { sequence_id: a, phone: phone() });
        expect(res.statusCode, res.body).toBe(201);
        viaTrigger.push(res.json().contact_id);
      }
      const enrolled = await post(`/api/v1/sequences/${a}/enroll`, { emails: Array.from({ length: 20 }, (_, i) => `enroll-path-${i}@example.com`) });
      expect(enrolled.json().enrolled).toBe(20);
      const executed = await post(`/api/v1/sequences/${a}/execute`, { contacts: Array.from({ length: 20 }, (_, i) => ({ email: `execute-path-${i}@example.com` })) });
      expect(executed.json().queued).toBe(20);
      for (let i = 0; i < 20; i += 1) {
        const contact = (await post('/api/v1/actions/create-contact', { phone: phone() })).json();
        expect((await post('/api/v1/actions/add-tag', { contact_id: contact.id, tag: 'ab-path' })).statusCode).toBe(200);
      }
      const sessions = await sessionsOfTest(a);
      const bySource = new Map<string, number>();
      const rows = await db().selectFrom('sessions').select(['source']).where('ab_parent_id', '=', a).execute();
      for (const r of rows) bySource.set(r.source, (bySource.get(r.source) ?? 0) + 1);
      expect(Object.fromEntries(bySource)).toEqual({ api: 20, 'api:enroll': 20, 'api:execute': 20, 'trigger:tag_added': 20 });
      expect(sessions).toHaveLength(80);
      await expectSidesHonoured(a, b, 50, sessions);
      expect(new Set(sessions.map((s) => s.ab_variant))).toEqual(new Set(['A', 'B']));
      // No session of the test's contacts bypassed it.
      const bypassed = await db().selectFrom('sessions').select('id').where('definition_id', 'in', [a, b]).where('ab_parent_id', 'is', null).execute();
      expect(bypassed).toEqual([]);
      expect(viaTrigger.every((c) => sessions.some((s) => s.contact_id === c))).toBe(true);
    });

    it('keeps a contact on its side when it enrolls again after its run ended, and reports already_running across the split', async () => {
      const { a, b } = await abPair(50);
      const contacts = Array.from({ length: 40 }, (_, i) => ({ email: `sticky-${i}@example.com`, phone: phone() }));
      const first = (await post(`/api/v1/sequences/${a}/execute`, { contacts })).json().results as Array<{ contactId: string; sessionId: string; variant: string }>;
      const again = (await post(`/api/v1/sequences/${a}/execute`, { contacts })).json().results as Array<{ status: string; reason: string; sessionId: string; variant: string }>;
      again.forEach((r, i) => expect(r).toMatchObject({ status: 'skipped', reason: 'already_running', sessionId: first[i]!.sessionId, variant: first[i]!.variant }));

      await createTestWorker(t.ctx).drain();
      expect((await sessionsOfTest(a)).every((s) => s.status === 'completed')).toBe(true);
      const rerun = (await post(`/api/v1/sequences/${a}/execute`, { contacts })).json().results as Array<{ status: string; contactId: string; variant: string }>;
      rerun.forEach((r, i) => expect(r).toMatchObject({ status: 'queued', contactId: first[i]!.contactId, variant: first[i]!.variant }));
      const sessions = await sessionsOfTest(a);
      expect(sessions).toHaveLength(80);
      await expectSidesHonoured(a, b, 50, sessions);
    });

    it('does not start a second run on the other side for a contact already running A when the test begins', async () => {
      const a = await sequence('Running before the test', { steps: [{ type: 'sms', text: 'one' }, { type: 'sms', delay: { days: 1 }, text: 'two' }] });
      const b = await sequence('Variant arriving later');
      const contacts = Array.from({ length: 30 }, (_, i) => ({ email: `before-test-${i}@example.com` }));
      const before = (await post(`/api/v1/sequences/${a}/execute`, { contacts })).json().results as Array<{ sessionId: string; contactId: string }>;
      expect((await request('PUT', `/api/v1/sequences/${a}/ab-test`, { variantSequenceId: b, splitPercent: 50 })).statusCode).toBe(200);
      const during = (await post(`/api/v1/sequences/${a}/execute`, { contacts })).json().results as Array<{ status: string; reason: string; sessionId: string }>;
      expect(before.some((r) => abSide(a, r.contactId, 50) === 'B')).toBe(true);
      during.forEach((r, i) => expect(r).toMatchObject({ status: 'skipped', reason: 'already_running', sessionId: before[i]!.sessionId }));
      expect(await db().selectFrom('sessions').select('id').where('definition_id', '=', b).execute()).toEqual([]);
    });

    it('refuses enrollment with 422 while the variant is not active or has no steps, and writes nothing', async () => {
      const { a, b } = await abPair(50, { a: { trigger: 'tag_added', tagName: 'ab-refused' } });
      await post(`/api/v1/sequences/${b}/disable`);
      const count = async () => Number((await db().selectFrom('sessions').select((eb) => eb.fn.countAll<number>().as('n')).where('definition_id', 'in', [a, b]).executeTakeFirstOrThrow()).n);
      const contactsBefore = Number((await db().selectFrom('contacts').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);

      const executed = await post(`/api/v1/sequences/${a}/execute`, { contacts: [{ email: 'refused-ab@example.com' }] });
      expect(executed.statusCode).toBe(422);
      expect(executed.json()).toMatchObject({ code: 'business_rule', reason: 'ab_variant_not_active', variantSequenceId: b });
      expect(executed.json().message).toMatch(/paused/);
      const enrolled = await post(`/api/v1/sequences/${a}/enroll`, { emails: ['refused-ab@example.com'] });
      expect(enrolled.json()).toMatchObject({ code: 'business_rule', reason: 'ab_variant_not_active' });
      const triggered = await post('/api/v1/actions/trigger-sequence', { sequence_id: a, phone: '+14155559001' });
      expect(triggered.statusCode).toBe(422);
      expect(triggered.json()).toMatchObject({ code: 'business_rule', reason: 'ab_variant_not_active' });
      expect(Number((await db().selectFrom('contacts').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n)).toBe(contactsBefore);
      // A trigger firing from a contact change is not the caller's fault: the change goes through, nothing starts.
      const contact = (await post('/api/v1/actions/create-contact', { phone: '+14155559002' })).json();
      expect((await post('/api/v1/actions/add-tag', { contact_id: contact.id, tag: 'ab-refused' })).statusCode).toBe(200);
      expect(await count()).toBe(0);

      // Active again, but its published version emptied underneath (publishing refuses an empty draft).
      await post(`/api/v1/sequences/${b}/enable`);
      const version = await versionOf(b);
      await db()
        .updateTable('definition_versions')
        .set({ body: JSON.stringify({ name: 'B', kind: 'sequence', graph: { nodes: [], edges: [] }, settings: {}, trigger: { type: 'api' } }) })
        .where('id', '=', version!)
        .execute();
      const empty = await post(`/api/v1/sequences/${a}/execute`, { contacts: [{ email: 'refused-ab@example.com' }] });
      expect(empty.statusCode).toBe(422);
      expect(empty.json()).toMatchObject({ reason: 'ab_variant_has_no_steps' });
      expect(await count()).toBe(0);
    });
  });

  describe('results', () => {
    it('computes the significance of known numbers from the sessions', async () => {
      const { a, b } = await abPair(50, { a: { steps: [{ type: 'sms', text: 'a' }, { type: 'goal' }] } });
      const [versionA, versionB] = [(await versionOf(a))!, (await versionOf(b))!];
      const now = clock.now();
      const contacts = Array.from({ length: 2000 }, () => ({ id: newId(now), phone: phone() }));
      const contactRows = contacts.map((c) => ({ id: c.id, workspace_id: t.workspaceId, phone: c.phone, email: null, name: null, first_name: null, last_name: null, metadata: '{}', timezone: null, language: null, source: 'test', search_text: '', opted_in_at: now, opted_out_at: null, whatsapp_opted_out_at: null, sms_opted_out_at: null, email_opted_out_at: null, whatsapp_last_inbound_at: null, sms_last_inbound_at: null, last_message_at: null, total_messages: 0, created_at: now, updated_at: now }));
      for (let i = 0; i < contactRows.length; i += 500) await db().insertInto('contacts').values(contactRows.slice(i, i + 500)).execute();
      // 1,000 per side; 50 reach the goal on A and 80 on B (Python: z = 2.7211, p = 0.0065066).
      const sessions = contacts.map((c, i) => {
        const side = i < 1000 ? 'A' : 'B';
        const goal = side === 'A' ? i < 50 : i - 1000 < 80;
        return {
          id: newId(now), workspace_id: t.workspaceId, definition_id: side === 'A' ? a : b, version_id: side === 'A' ? versionA : versionB, kind: 'sequence' as const, contact_id: c.id,
          status: 'completed', active: 0, enrollment_key: '', current_node: null, wake_at: null, expires_at: null, context: '{}', event: null, state: '{"visits":{}}', source: 'test',
          end_reason: goal ? 'goal_reached' : 'completed', steps_run: 1, created_at: now, updated_at: now, ended_at: now, ab_variant: side, ab_parent_id: a,
        };
      });
      for (let i = 0; i < sessions.length; i += 500) await db().insertInto('sessions').values(sessions.slice(i, i + 500)).execute();
      const steps = sessions.filter((s) => s.end_reason === 'goal_reached').map((s) => ({ id: newId(now), workspace_id: t.workspaceId, session_id: s.id, node_id: 'step-2', node_type: 'goal', visit: 1, outcome: 'goal_reached', detail: null, at: now }));
      await db().insertInto('session_steps').values(steps).execute();

      const res = await request('GET', `/api/v1/sequences/${a}/ab-test/results`);
      expect(res.statusCode, res.body).toBe(200);
      const body = res.json();
      expect(body.variants.map((v: { variant: string; enrolled: number; goalReached: number; rates: { goalReached: number } }) => [v.variant, v.enrolled, v.goalReached, v.rates.goalReached])).toEqual([
        ['A', 1000, 50, 0.05],
        ['B', 1000, 80, 0.08],
      ]);
      expect(body.significance).toMatchObject({ metric: 'goalReached', test: 'two-proportion z-test', alpha: 0.05, rateA: 0.05, rateB: 0.08, difference: 0.03, z: 2.7211, significant: true, winner: 'B' });
      expect(body.significance.pValue).toBeCloseTo(0.006506597483637838, 6);

      const clicked = (await request('GET', `/api/v1/sequences/${a}/ab-test/results?metric=clicked`)).json();
      expect(clicked.significance).toMatchObject({ metric: 'clicked', rateA: 0, rateB: 0, z: null, pValue: null, significant: false, winner: null });
      const bad = await request('GET', `/api/v1/sequences/${a}/ab-test/results?metric=opens`);
      expect(bad.statusCode).toBe(422);
      expect(Object.keys(bad.json().errors)).toContain('metric');
    });
  });
});

describe.each(dialects)('A/B test results from real sends on %s', (dialect) => {
  const accountSid = `AC${'2'.repeat(32)}`;
  const authToken = 'fedcba9876543210fedcba9876543210';
  const ourNumber = '+14155552346';
  const clock = new ManualClock(Date.UTC(2026, 4, 7, 8, 0, 0));
  let t: TestApp;
  let twilio: FakeTwilio;

  beforeAll(async () => {
    twilio = await startFakeTwilio(accountSid, authToken);
    t = await createTestApp(dialect, { clock, env: { NUDGE_PUBLIC_URL: publicUrl } });
    await setProviderSettings(t.ctx, t.workspaceId, 'sms', { account_sid: accountSid, auth_token: authToken, from: ourNumber, base_url: twilio.baseUrl });
  });
  afterAll(async () => {
    await t.close();
    await twilio.close();
  });

  const db = () => t.ctx.database.db;
  const post = (url: string, payload: unknown = {}) => t.app.inject({ method: 'POST', url, headers: t.auth, payload: payload as object });
  /** A Twilio webhook as Twilio sends it: form-encoded, signed over the public URL. */
  const twilioWebhook = (path: string, params: Record<string, string>) =>
    t.app.inject({
      method: 'POST',
      url: path,
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': computeTwilioSignature(authToken, `${publicUrl}${path}`, params) },
      payload: new URLSearchParams(params).toString(),
    });
  const status = (sid: string, to: string, value: string) =>
    twilioWebhook('/webhooks/twilio/status', { MessageSid: sid, SmsSid: sid, AccountSid: accountSid, MessageStatus: value, SmsStatus: value, From: ourNumber, To: to, ApiVersion: '2010-04-01' });

  it('counts sends, delivery and read statuses, a click through /t/ and a reply per side', async () => {
    const steps = (label: string, goal: boolean) => [
      { type: 'sms', text: `${label}: your order shipped` },
      { type: 'email', subject: `${label} picks`, html: `<p>Picked for you</p><a href="https://shop.example.com/${label}?utm=mail&amp;x=1">Shop</a>` },
      ...(goal ? [{ type: 'goal' }] : []),
    ];
    const a = (await post('/api/v1/sequences', { name: 'Long', steps: steps('long', true) })).json().sequence.id as string;
    const b = (await post('/api/v1/sequences', { name: 'Short', steps: steps('short', false) })).json().sequence.id as string;
    for (const id of [a, b]) expect((await post(`/api/v1/sequences/${id}/enable`)).statusCode).toBe(200);
    expect((await t.app.inject({ method: 'PUT', url: `/api/v1/sequences/${a}/ab-test`, headers: t.auth, payload: { variantSequenceId: b, splitPercent: 50 } })).statusCode).toBe(200);

    const contacts = Array.from({ length: 24 }, (_, i) => ({ email: `results-${i}@example.com`, phone: phone() }));
    const executed = (await post(`/api/v1/sequences/${a}/execute`, { contacts })).json().results as Array<{ contactId: string; variant: 'A' | 'B'; sessionId: string }>;
    await createTestWorker(t.ctx).drain();
    const sideOf = new Map(executed.map((r) => [r.sessionId, r.variant]));
    const sideCount = { A: executed.filter((r) => r.variant === 'A').length, B: executed.filter((r) => r.variant === 'B').length };
    expect(sideCount.A).toBeGreaterThan(2);
    expect(sideCount.B).toBeGreaterThan(2);

    const outbound = await db().selectFrom('messages').selectAll().where('direction', '=', 'outbound').where('session_id', 'in', executed.map((r) => r.sessionId)).orderBy('id').execute();
    const sms = outbound.filter((m) => m.channel === 'sms');
    const emails = outbound.filter((m) => m.channel === 'email');
    expect(sms.every((m) => m.provider === 'twilio' && m.status === 'sent' && m.provider_message_id !== null)).toBe(true);
    expect(emails.every((m) => m.status === 'delivered')).toBe(true);
    const smsOf = (side: 'A' | 'B') => sms.filter((m) => sideOf.get(m.session_id!) === side);
    const emailsOf = (side: 'A' | 'B') => emails.filter((m) => sideOf.get(m.session_id!) === side);

    // Twilio reports two A-side SMS delivered, one of them read, and three B-side SMS delivered.
    for (const m of smsOf('A').slice(0, 2)) expect((await status(m.provider_message_id!, m.recipient!, 'delivered')).statusCode).toBe(200);
    expect((await status(smsOf('A')[0]!.provider_message_id!, smsOf('A')[0]!.recipient!, 'read')).statusCode).toBe(200);
    for (const m of smsOf('B').slice(0, 3)) expect((await status(m.provider_message_id!, m.recipient!, 'delivered')).statusCode).toBe(200);

    // Every link of the emails is tracked under its own message; a B-side contact clicks twice.
    const clickedEmail = emailsOf('B')[0]!;
    const html = JSON.parse(clickedEmail.content).html as string;
    const links = [...html.matchAll(/href="https:\/\/nudge\.example\.com\/t\/([^"]+)"/g)].map((m) => m[1]!);
    expect(links).toHaveLength(1);
    expect(readTrackingToken(links[0]!, t.ctx.secretKey)).toEqual({ messageId: clickedEmail.id, url: 'https://shop.example.com/short?utm=mail&x=1' });
    expect(html).toContain(`${publicUrl}/unsubscribe/`);
    for (let i = 0; i < 2; i += 1) {
      clock.advance(60_000);
      const click = await t.app.inject({ method: 'GET', url: `/t/${links[0]}` });
      expect(click.statusCode).toBe(302);
      expect(click.headers.location).toBe('https://shop.example.com/short?utm=mail&x=1');
      expect(click.headers['referrer-policy']).toBe('no-referrer');
    }
    expect((await db().selectFrom('link_clicks').selectAll().where('message_id', '=', clickedEmail.id).execute()).map((c) => c.url)).toEqual(['https://shop.example.com/short?utm=mail&x=1', 'https://shop.example.com/short?utm=mail&x=1']);
    const afterClicks = await db().selectFrom('messages').select('clicked_at').where('id', '=', clickedEmail.id).executeTakeFirstOrThrow();
    expect(Number(afterClicks.clicked_at)).toBe(clock.now() - 60_000);

    // An A-side contact answers the SMS: the reply is credited to its latest SMS of the session.
    const replier = smsOf('A')[1]!;
    const sid = `SM${'7'.repeat(32)}`;
    const inbound = await twilioWebhook('/webhooks/twilio/inbound', { MessageSid: sid, SmsSid: sid, SmsMessageSid: sid, AccountSid: accountSid, From: replier.recipient!, To: ourNumber, Body: 'Thanks!', NumMedia: '0', NumSegments: '1', SmsStatus: 'received', ApiVersion: '2010-04-01' });
    expect(inbound.statusCode, inbound.body).toBe(200);
    expect((await db().selectFrom('messages').select('replied_at').where('id', '=', replier.id).executeTakeFirstOrThrow()).replied_at).not.toBeNull();

    const results = (await t.app.inject({ method: 'GET', url: `/api/v1/sequences/${a}/ab-test/results`, headers: t.auth })).json();
    const [resultA, resultB] = results.variants;
    expect(resultA).toMatchObject({
      variant: 'A', sequenceId: a, enrolled: sideCount.A, sent: sideCount.A, delivered: sideCount.A, read: 1, clicked: 0, replied: 1, goalReached: sideCount.A,
      messages: { sent: 2 * sideCount.A, delivered: sideCount.A + 2, read: 1, clicked: 0, replied: 1 },
    });
    expect(resultB).toMatchObject({
      variant: 'B', sequenceId: b, enrolled: sideCount.B, sent: sideCount.B, delivered: sideCount.B, read: 0, clicked: 1, replied: 0, goalReached: 0,
      messages: { sent: 2 * sideCount.B, delivered: sideCount.B + 3, read: 0, clicked: 1, replied: 0 },
    });
    expect(resultB.rates.clicked).toBe(Math.round((1 / sideCount.B) * 10_000) / 10_000);
    // A has a goal step: the default metric is the goal, reached by every A-side run and no B-side one.
    expect(results.significance).toMatchObject({ metric: 'goalReached', rateA: 1, rateB: 0, significant: true, winner: 'A' });
  });

  it('redirects a HEAD request without counting a click, and refuses a forged or changed token with 404', async () => {
    const message = await db().selectFrom('messages').select(['id', 'content', 'clicked_at']).where('channel', '=', 'email').where('clicked_at', 'is', null).executeTakeFirstOrThrow();
    const token = /\/t\/([^"]+)"/.exec(JSON.parse(message.content).html as string)![1]!;
    const head = await t.app.inject({ method: 'HEAD', url: `/t/${token}` });
    expect(head.statusCode).toBe(302);
    expect((await db().selectFrom('messages').select('clicked_at').where('id', '=', message.id).executeTakeFirstOrThrow()).clicked_at).toBeNull();

    const [payload, signature] = token.split('.') as [string, string];
    const bytes = Buffer.from(payload, 'base64url');
    const evil = Buffer.concat([bytes.subarray(0, 16), Buffer.from('https://evil.example.com/')]).toString('base64url');
    for (const bad of [`${evil}.${signature}`, `${payload}.${signature.slice(0, -1)}${signature.endsWith('A') ? 'B' : 'A'}`, 'nothing', '']) {
      const res = await t.app.inject({ method: 'GET', url: `/t/${bad}` });
      expect(res.statusCode, bad).toBe(404);
      expect(res.headers.location).toBeUndefined();
    }
    const json = await t.app.inject({ method: 'GET', url: '/t/forged.token', headers: { accept: 'application/json' } });
    expect(json.json()).toMatchObject({ code: 'not_found' });
    const long = await t.app.inject({ method: 'GET', url: `/t/${'a'.repeat(9000)}`, headers: { accept: 'application/json' } });
    expect(long.statusCode).toBe(422);
    expect(Object.keys(long.json().errors)).toEqual(['token']);
    expect(await db().selectFrom('link_clicks').select('id').where('message_id', '=', message.id).execute()).toEqual([]);
  });
});

describe.each(dialects)('email links with click tracking off on %s', (dialect) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(dialect, { env: { NUDGE_CLICK_TRACKING: 'off', NUDGE_PUBLIC_URL: publicUrl } });
  });
  afterAll(async () => t.close());

  it('sends links as written', async () => {
    const post = (url: string, payload: unknown = {}) => t.app.inject({ method: 'POST', url, headers: t.auth, payload: payload as object });
    const id = (await post('/api/v1/sequences', { name: 'Untracked', steps: [{ type: 'email', subject: 'Hi', html: '<a href="https://shop.example.com/">Shop</a>' }] })).json().sequence.id;
    await post(`/api/v1/sequences/${id}/enable`);
    await post(`/api/v1/sequences/${id}/execute`, { contacts: [{ email: 'untracked@example.com' }] });
    await createTestWorker(t.ctx).drain();
    const message = await t.ctx.database.db.selectFrom('messages').select('content').where('definition_id', '=', id).executeTakeFirstOrThrow();
    const html = JSON.parse(message.content).html as string;
    expect(html).toContain('href="https://shop.example.com/"');
    expect(html).not.toContain('/t/');
  });
});
