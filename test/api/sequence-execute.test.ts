import type { KyselyPlugin, PluginTransformQueryArgs, PluginTransformResultArgs, QueryResult, RootOperationNode, UnknownRow } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { executeSequence } from '../../src/engine/sequence-execution-service.js';
import type { Context } from '../../src/engine/context.js';
import { createTestApp, ManualClock, type TestApp } from '../support/app.js';
import { dialects } from '../support/databases.js';
import { createTestWorker } from '../support/engine.js';

interface ExecutionResult {
  index: number;
  email?: string | null;
  contactId: string | null;
  contactCreated?: boolean;
  status: 'queued' | 'skipped';
  reason?: string;
  errors?: Record<string, string[]>;
  sessionId?: string;
}

/** Counts the statements Kysely sends: a fixed number per call shows the batch is written in bulk. */
class StatementCounter implements KyselyPlugin {
  count = 0;
  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    this.count += 1;
    return args.node;
  }
  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    return args.result;
  }
}

const twoEmails = [
  { subject: 'Welcome {{contact.first_name|there}}', html: '<p>Hello</p>' },
  { subject: 'Day 2', delay: { days: 1 }, html: '<p>Again</p>' },
];

describe.each(dialects)('POST /api/v1/sequences/{id}/execute on %s', (dialect) => {
  let t: TestApp;
  const clock = new ManualClock(Date.UTC(2026, 4, 7, 8, 0, 0));
  beforeAll(async () => {
    t = await createTestApp(dialect, { clock });
  });
  afterAll(async () => t.close());

  const db = () => t.ctx.database.db;
  const post = (url: string, payload?: unknown, headers: Record<string, string> = t.auth) =>
    t.app.inject({ method: 'POST', url, headers, ...(payload === undefined ? {} : { payload: payload as object }) });
  const execute = (id: string, payload: unknown, headers?: Record<string, string>) => post(`/api/v1/sequences/${id}/execute`, payload, headers);

  async function sequence(body: object, publish = true): Promise<string> {
    const created = await post('/api/v1/sequences', body);
    expect(created.statusCode, created.body).toBe(201);
    const id = created.json().sequence.id as string;
    if (publish) expect((await post(`/api/v1/sequences/${id}/enable`, {})).statusCode).toBe(200);
    return id;
  }

  const counts = async () => {
    const n = async (table: 'contacts' | 'sessions') => Number((await db().selectFrom(table).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
    return { contacts: await n('contacts'), sessions: await n('sessions') };
  };
  const contactByEmail = (email: string) => db().selectFrom('contacts').selectAll().where('workspace_id', '=', t.workspaceId).where('email', '=', email).executeTakeFirst();

  it('enrolls the contact of the reference page’s curl, sent as it is', async () => {
    const id = await sequence({ name: 'API triggered', steps: twoEmails });
    // The request body byte for byte as the documentation's curl sends it (-d '…').
    const body = `{
    "contacts": [
      {
        "email": "customer@example.com",
        "firstName": "Jane",
        "lastName": "Doe",
        "phone": "+15551234567"
      }
    ]
  }`;
    const res = await t.app.inject({
      method: 'POST',
      url: `/api/v1/sequences/${id}/execute`,
      headers: { Authorization: `Bearer ${t.token}`, 'Content-Type': 'application/json' },
      payload: body,
    });
    expect(res.statusCode, res.body).toBe(200);
    const contact = await contactByEmail('customer@example.com');
    expect(contact).toMatchObject({ email: 'customer@example.com', first_name: 'Jane', last_name: 'Doe', name: 'Jane Doe', phone: '+15551234567', source: 'api' });
    expect(contact!.opted_in_at).not.toBeNull();
    const session = await db().selectFrom('sessions').selectAll().where('definition_id', '=', id).executeTakeFirstOrThrow();
    expect(res.json()).toEqual({
      success: true,
      sequenceId: id,
      queued: 1,
      skipped: 0,
      results: [{ index: 0, email: 'customer@example.com', contactId: contact!.id, contactCreated: true, status: 'queued', sessionId: session.id }],
    });
    expect(session).toMatchObject({ contact_id: contact!.id, status: 'running', source: 'api:execute', ab_variant: null });

    await createTestWorker(t.ctx).drain();
    const sent = await db().selectFrom('messages').selectAll().where('session_id', '=', session.id).execute();
    expect(sent).toHaveLength(1);
    expect(JSON.parse(sent[0]!.content).subject).toBe('Welcome Jane');
  });

  it('gives every contact its own result, naming it by index and email', async () => {
    const id = await sequence({ name: 'Mixed batch', steps: twoEmails });
    // An existing contact whose names and phone the call updates, and one that opted out of email.
    const known = (await post('/api/v1/actions/create-contact', { phone: '+14155550401', email: 'known@example.com', name: 'Old Name' })).json();
    const optedOut = (await post('/api/v1/actions/create-contact', { phone: '+14155550402', email: 'gone@example.com' })).json();
    await db().updateTable('contacts').set({ email_opted_out_at: clock.now() }).where('id', '=', optedOut.id).execute();
    const phoneOwner = (await post('/api/v1/actions/create-contact', { phone: '+14155550403' })).json();

    const res = await execute(id, {
      contacts: [
        { email: 'Known@Example.com', firstName: 'Kim', lastName: 'Lee', phone: '(415) 555-0404' },
        { email: 'not-an-email' },
        { firstName: 'No email' },
        { email: 'bad-phone@example.com', phone: 'call me' },
        { email: 'gone@example.com' },
        { email: 'taken-phone@example.com', phone: '+14155550403' },
        { email: 'new@example.com', firstName: '', lastName: null },
        { email: 'NEW@example.com' },
      ],
    });
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json() as { queued: number; skipped: number; results: ExecutionResult[] };
    const created = await contactByEmail('new@example.com');
    expect(body).toMatchObject({ queued: 2, skipped: 6 });
    expect(body.results).toEqual([
      { index: 0, email: 'Known@Example.com', contactId: known.id, contactCreated: false, status: 'queued', sessionId: expect.any(String) },
      { index: 1, email: 'not-an-email', contactId: null, status: 'skipped', reason: 'invalid', errors: { email: [expect.stringContaining('valid email')] } },
      { index: 2, email: null, contactId: null, status: 'skipped', reason: 'invalid', errors: { email: [expect.stringContaining('required')] } },
      { index: 3, email: 'bad-phone@example.com', contactId: null, status: 'skipped', reason: 'invalid', errors: { phone: [expect.stringContaining('valid phone number')] } },
      { index: 4, email: 'gone@example.com', contactId: optedOut.id, status: 'skipped', reason: 'unsubscribed' },
      { index: 5, email: 'taken-phone@example.com', contactId: null, status: 'skipped', reason: 'invalid', errors: { phone: ['phone is already used by another contact in this workspace'] } },
      { index: 6, email: 'new@example.com', contactId: created!.id, contactCreated: true, status: 'queued', sessionId: expect.any(String) },
      { index: 7, email: 'NEW@example.com', contactId: created!.id, contactCreated: false, status: 'skipped', reason: 'already_running', sessionId: body.results[6]!.sessionId },
    ]);
    expect(await contactByEmail('known@example.com')).toMatchObject({ id: known.id, first_name: 'Kim', last_name: 'Lee', name: 'Old Name', phone: '+14155550404' });
    // "" and null mean "not given": nothing is cleared.
    expect(created).toMatchObject({ first_name: null, last_name: null, phone: null });
    expect(await contactByEmail('bad-phone@example.com')).toBeUndefined();
    expect(await contactByEmail('taken-phone@example.com')).toBeUndefined();
    expect((await db().selectFrom('contacts').select('email').where('id', '=', phoneOwner.id).executeTakeFirstOrThrow()).email).toBeNull();

    const again = await execute(id, { contacts: [{ email: 'known@example.com' }] });
    expect(again.json().results).toEqual([{ index: 0, email: 'known@example.com', contactId: known.id, contactCreated: false, status: 'skipped', reason: 'already_running', sessionId: body.results[0]!.sessionId }]);
  });

  it('skips as unsubscribed only a contact opted out of every channel the sequence sends on', async () => {
    const id = await sequence({ name: 'Email and SMS', steps: [{ type: 'email', subject: 'Hi', html: '<p>Hi</p>' }, { type: 'sms', delay: { hours: 1 }, text: 'Hi' }] });
    const contact = (await post('/api/v1/actions/create-contact', { phone: '+14155550411', email: 'half@example.com' })).json();
    await db().updateTable('contacts').set({ email_opted_out_at: clock.now() }).where('id', '=', contact.id).execute();
    expect((await execute(id, { contacts: [{ email: 'half@example.com' }] })).json().results[0]).toMatchObject({ status: 'queued' });
  });

  it('starts the contact_added sequences of the contacts it creates, in the same call', async () => {
    const welcome = await sequence({ name: 'On new contact', trigger: 'contact_added', steps: twoEmails });
    const id = await sequence({ name: 'Executed', steps: twoEmails });
    const res = await execute(id, { contacts: [{ email: 'fresh-trigger@example.com' }] });
    const contactId = res.json().results[0].contactId as string;
    const started = await db().selectFrom('sessions').select(['definition_id', 'source']).where('contact_id', '=', contactId).orderBy('definition_id').execute();
    expect(started.map((s) => s.definition_id).sort()).toEqual([welcome, id].sort());
  });

  it('refuses 101 contacts and an empty list with a 422 naming contacts, and writes nothing', async () => {
    const id = await sequence({ name: 'Limits', steps: twoEmails });
    const before = await counts();
    const many = Array.from({ length: 101 }, (_, i) => ({ email: `bulk-${i}@example.com` }));
    for (const contacts of [many, [], 'customer@example.com']) {
      const res = await execute(id, { contacts });
      expect(res.statusCode, res.body).toBe(422);
      expect(res.json()).toMatchObject({ code: 'validation_failed', errors: { contacts: [expect.stringMatching(/^contacts /)] } });
    }
    expect((await execute(id, {})).json().errors).toHaveProperty('contacts');
    const unknownField = await execute(id, { contacts: [{ email: 'a@example.com', first_name: 'Ana' }] });
    expect(unknownField.statusCode).toBe(422);
    expect(unknownField.json().errors).toHaveProperty(['contacts.0.first_name']);
    const wrongType = await execute(id, { contacts: [{ email: 42 }] });
    expect(wrongType.json().errors).toHaveProperty(['contacts.0.email']);
    expect((await execute(id, { contacts: [{ email: 'a@example.com' }], context: 'x' })).json().errors).toHaveProperty('context');
    expect(await counts()).toEqual(before);
  });

  it('refuses a sequence that is not active or has no steps, saying why, and writes nothing', async () => {
    const before = await counts();
    const draft = await sequence({ name: 'Still a draft', steps: twoEmails }, false);
    const paused = await sequence({ name: 'Paused', steps: twoEmails });
    await post(`/api/v1/sequences/${paused}/disable`, {});
    const emptied = await sequence({ name: 'Emptied', steps: twoEmails });
    const row = await db().selectFrom('definitions').select('current_version_id').where('id', '=', emptied).executeTakeFirstOrThrow();
    await db()
      .updateTable('definition_versions')
      .set({ body: JSON.stringify({ name: 'Emptied', kind: 'sequence', graph: { nodes: [], edges: [] }, settings: {}, trigger: { type: 'api' } }) })
      .where('id', '=', row.current_version_id!)
      .execute();
    for (const [id, reason, words] of [
      [draft, 'sequence_not_active', /draft/],
      [paused, 'sequence_not_active', /disabled/],
      [emptied, 'sequence_has_no_steps', /no steps/],
    ] as const) {
      const res = await execute(id, { contacts: [{ email: 'refused@example.com' }] });
      expect(res.statusCode, res.body).toBe(422);
      expect(res.json()).toMatchObject({ code: 'business_rule', reason });
      expect(res.json().message).toMatch(words);
    }
    expect((await counts()).sessions).toBe(before.sessions);
    expect(await contactByEmail('refused@example.com')).toBeUndefined();
  });

  it('refuses a call where every contact is invalid or unsubscribed, with every result, and writes nothing', async () => {
    const id = await sequence({ name: 'Nobody to enroll', steps: twoEmails });
    const out = (await post('/api/v1/actions/create-contact', { phone: '+14155550421', email: 'out@example.com', name: 'Kept Name' })).json();
    await db().updateTable('contacts').set({ email_opted_out_at: clock.now() }).where('id', '=', out.id).execute();
    const before = await counts();
    const res = await execute(id, { contacts: [{ email: 'nope' }, { email: 'out@example.com', firstName: 'Changed' }, { email: 'ok@example.com', phone: '12' }] });
    expect(res.statusCode, res.body).toBe(422);
    expect(res.json()).toMatchObject({
      code: 'business_rule',
      reason: 'no_enrollable_contacts',
      errors: { 'contacts.0.email': [expect.any(String)], 'contacts.2.phone': [expect.any(String)] },
      results: [
        { index: 0, email: 'nope', status: 'skipped', reason: 'invalid' },
        { index: 1, email: 'out@example.com', contactId: out.id, status: 'skipped', reason: 'unsubscribed' },
        { index: 2, email: 'ok@example.com', status: 'skipped', reason: 'invalid' },
      ],
    });
    expect(res.json().message).toMatch(/2 invalid, 1 unsubscribed/);
    expect(await counts()).toEqual(before);
    expect((await contactByEmail('out@example.com'))!.first_name).toBe('Kept');
  });

  it('answers 200 with every contact skipped when all already run the sequence or enrollments are paused', async () => {
    const id = await sequence({ name: 'Already', steps: twoEmails });
    await execute(id, { contacts: [{ email: 'twice@example.com' }] });
    const again = await execute(id, { contacts: [{ email: 'twice@example.com' }] });
    expect(again.statusCode).toBe(200);
    expect(again.json()).toMatchObject({ queued: 0, skipped: 1, results: [{ reason: 'already_running' }] });
    await post(`/api/v1/sequences/${id}/pause-enrollments`, {});
    expect((await execute(id, { contacts: [{ email: 'paused@example.com' }] })).json().results[0]).toMatchObject({ status: 'skipped', reason: 'enrollments_paused' });
  });

  it('writes a batch of 100 contacts with as many statements as a batch of 10', async () => {
    const id = await sequence({ name: 'Bulk', steps: twoEmails });
    const statementsFor = async (size: number, prefix: string, firstPhone: number) => {
      const counter = new StatementCounter();
      const ctx: Context = { ...t.ctx, database: { ...t.ctx.database, db: t.ctx.database.db.withPlugin(counter) } };
      const outcome = await executeSequence(ctx, t.workspaceId, id, { contacts: Array.from({ length: size }, (_, i) => ({ email: `${prefix}-${i}@example.com`, firstName: `N${i}`, phone: `+1415556${String(firstPhone + i).padStart(4, '0')}` })) });
      expect(outcome.results.filter((r) => r.status !== 'queued')).toEqual([]);
      return counter.count;
    };
    // The first call reads the published version into the process cache; measure after it.
    await statementsFor(1, 'warm', 3000);
    const ten = await statementsFor(10, 'ten', 1000);
    const hundred = await statementsFor(100, 'hundred', 2000);
    expect(hundred).toBe(ten);
    expect(hundred).toBeLessThan(25);
    const sessions = await db().selectFrom('sessions').select('contact_id').where('definition_id', '=', id).execute();
    expect(new Set(sessions.map((s) => s.contact_id)).size).toBe(111);
  });

  it('replays a repeated Idempotency-Key without enrolling again', async () => {
    const id = await sequence({ name: 'Idempotent', steps: twoEmails });
    const headers = { ...t.auth, 'idempotency-key': 'exec-1' };
    const first = await execute(id, { contacts: [{ email: 'idem@example.com' }] }, headers);
    const second = await execute(id, { contacts: [{ email: 'idem@example.com' }] }, headers);
    expect(second.headers['idempotent-replayed']).toBe('true');
    expect(second.json()).toEqual(first.json());
  });

  it("answers 404 for another workspace's sequence, an unknown id and a malformed id", async () => {
    const id = await sequence({ name: 'Mine', steps: twoEmails });
    const other = { authorization: `Bearer ${t.other.token}` };
    for (const [url, headers] of [
      [`/api/v1/sequences/${id}/execute`, other],
      ['/api/v1/sequences/0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b/execute', t.auth],
      ['/api/v1/sequences/not-an-id/execute', t.auth],
    ] as const) {
      expect((await post(url, { contacts: [{ email: 'x@example.com' }] }, headers)).statusCode, url).toBe(404);
    }
    expect(await contactByEmail('x@example.com')).toBeUndefined();
  });
});
