import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/domain/clock.js';
import { writePendingSequences } from '../../src/engine/enrichment-service.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { dialects } from '../support/databases.js';
import { createTestWorker } from '../support/engine.js';
import { aiError, sampleEmails, startFakeAi, type AiRequest, type FakeAi } from '../support/fake-ai.js';

const spec = {
  message: 'Sequence created. AI is generating email content based on your brand. This typically takes 30-60 seconds.',
  // The reference page's "AI-Generated Content" example, verbatim.
  body: {
    name: 'Onboarding Sequence',
    trigger: 'contact_added',
    stopCondition: { type: 'has_tag', value: 'customer' },
    goal: 'Welcome new users and help them get started with our product',
    emailCount: 5,
  },
};

const second = 1000;
const minute = 60 * second;

/** What the sequences API shows; only the fields these tests read. */
interface SequenceView {
  id: string;
  name: string;
  status: string;
  emailCount: number;
  steps: Array<{ subject?: string; previewText?: string; html?: string; delay?: unknown }> | null;
  graph: { nodes: Array<{ id: string; type: string; channel?: string; duration?: unknown; content?: { subject?: string; html?: string; blocks?: unknown[] } }> };
  triggerConfig: Record<string, unknown>;
  enrichment: { status: string; goal: string; emailCount: number; error: string | null; completedAt: string | null } | null;
}

function userPrompt(request: AiRequest): string {
  return (request.body?.messages ?? [])
    .filter((m) => m.role === 'user')
    .map((m) => String(m.content))
    .join('\n');
}

for (const dialect of dialects) {
  describe(`sequences written from a goal on ${dialect}`, () => {
    const clock = new ManualClock(Date.UTC(2026, 4, 7, 8, 0, 0));
    let fake: FakeAi;
    let t: TestApp;

    beforeAll(async () => {
      fake = await startFakeAi({ apiKey: 'k' });
      t = await createTestApp(dialect, { clock, env: { NUDGE_AI_BASE_URL: fake.baseUrl, NUDGE_AI_API_KEY: 'k', NUDGE_AI_MODEL: 'gpt-test' } });
    });
    afterEach(async () => {
      fake.script.length = 0;
      fake.reply = null;
      // A test that failed half-way must not leave a sequence due for the next test's worker (and its scripted answers).
      await t.ctx.database.db.updateTable('definitions').set({ enrichment_due_at: null }).where('enrichment_due_at', 'is not', null).execute();
    });
    afterAll(async () => {
      await t.close();
      await fake.close();
    });

    const post = (url: string, payload: object) => t.app.inject({ method: 'POST', url, headers: t.auth, payload });
    const view = async (id: string): Promise<SequenceView> => {
      const res = await t.app.inject({ method: 'GET', url: `/api/v1/sequences/${id}`, headers: t.auth });
      expect(res.statusCode, res.body).toBe(200);
      return (res.json() as { sequence: SequenceView }).sequence;
    };
    /** The fake's requests for one sequence, told apart by the name in the prompt. */
    const callsFor = (name: string) => fake.requests.filter((r) => userPrompt(r).includes(`Sequence: ${name}\n`));
    const createFromGoal = async (name: string, extra: object = {}): Promise<string> => {
      const res = await post('/api/v1/sequences', { name, trigger: 'contact_added', goal: `Explain ${name}`, emailCount: 3, ...extra });
      expect(res.statusCode, res.body).toBe(201);
      return (res.json() as { sequence: { id: string } }).sequence.id;
    };

    it('creates the reference example as a pending draft, writes its five emails in the worker, then enables it', async () => {
      const created = await post('/api/v1/sequences', spec.body);
      expect(created.statusCode, created.body).toBe(201);
      const body = created.json() as { success: boolean; message: string; sequence: SequenceView };
      expect(body.message).toBe(spec.message);
      expect(body).toMatchObject({ success: true, sequence: { id: expect.any(String), name: 'Onboarding Sequence', status: 'draft', emailCount: 5 } });
      const id = body.sequence.id;

      const pending = await view(id);
      expect(pending.enrichment).toEqual({ status: 'pending', goal: spec.body.goal, emailCount: 5, error: null, completedAt: null });
      expect(pending.graph.nodes).toEqual([]);
      const early = await post(`/api/v1/sequences/${id}/enable`, {});
      expect(early.statusCode).toBe(422);
      expect((early.json() as { message: string }).message).toContain('still being written');

      const worker = createTestWorker(t.ctx);
      await worker.drain();

      const written = await view(id);
      expect(written.enrichment).toEqual({ status: 'completed', goal: spec.body.goal, emailCount: 5, error: null, completedAt: new Date(clock.now()).toISOString() });
      expect(written.status).toBe('draft');
      expect(written.emailCount).toBe(5);
      const expected = JSON.parse(sampleEmails(5)) as { emails: Array<{ subject: string; previewText: string; html: string }> };
      expect(written.steps).toEqual(
        expected.emails.map((email, i) => ({
          subject: email.subject,
          previewText: email.previewText,
          html: email.html,
          ...(i === 0 ? {} : { delay: { days: i === 1 ? 1 : 2 } }),
          templateId: expect.any(String),
        })),
      );
      // Each written email got its email template when the draft was stored, with the email's content as blocks.
      const templates = await t.app.inject({ method: 'GET', url: `/api/v1/email-templates?sequenceId=${id}`, headers: t.auth });
      const listed = (templates.json() as { data: Array<{ id: string; name: string; subject: string; previewText: string | null; nodeId: string; blocks: unknown[] }> }).data;
      expect(listed.map((tpl) => [tpl.name, tpl.subject, tpl.previewText, tpl.nodeId])).toEqual(
        expected.emails.map((email, i) => [`Onboarding Sequence \u2013 Email ${i + 1}`, email.subject, email.previewText, `step-${i + 1}`]),
      );
      expect(listed.map((tpl) => tpl.id)).toEqual(written.steps!.map((s) => (s as { templateId?: string }).templateId));
      expect(listed[0]!.blocks[0]).toMatchObject({ type: 'heading', content: 'Step 1' });
      // The graph the engine runs: email nodes with the HTML as editable blocks, delay nodes between them.
      const emails = written.graph.nodes.filter((n) => n.type === 'send_message');
      expect(emails.map((n) => [n.channel, n.content?.subject])).toEqual(expected.emails.map((e) => ['email', e.subject]));
      for (const node of emails) {
        expect(node.content?.html).toBeUndefined();
        expect(node.content?.blocks?.length).toBeGreaterThan(0);
      }
      expect(written.graph.nodes.filter((n) => n.type === 'delay').map((n) => [n.id, n.duration])).toEqual([
        ['step-2-delay', { days: 1 }],
        ['step-3-delay', { days: 2 }],
        ['step-4-delay', { days: 2 }],
        ['step-5-delay', { days: 2 }],
      ]);
      expect(written.triggerConfig).toMatchObject({ type: 'contact_added', stopCondition: { type: 'has_tag', value: 'customer' } });

      const calls = callsFor('Onboarding Sequence');
      expect(calls).toHaveLength(1);
      expect(calls[0]!.authorization).toBe('Bearer k');
      expect(calls[0]!.body?.model).toBe('gpt-test');
      expect(calls[0]!.body?.messages?.map((m) => m.role)).toEqual(['system', 'user']);
      expect(userPrompt(calls[0]!)).toContain(`Goal: ${spec.body.goal}`);
      expect(userPrompt(calls[0]!)).toContain('Brand: Acme');
      expect(userPrompt(calls[0]!)).toContain('exactly 5 emails');

      const enabled = await post(`/api/v1/sequences/${id}/enable`, {});
      expect(enabled.statusCode, enabled.body).toBe(200);
      expect((enabled.json() as { sequence: SequenceView }).sequence.status).toBe('active');

      // Written once: later passes leave it alone.
      clock.advance(60 * minute);
      await worker.drain();
      expect(callsFor('Onboarding Sequence')).toHaveLength(1);
    });

    it('refuses a goal on a server without an AI endpoint, naming goal', async () => {
      const bare = await createTestApp(dialect, { clock });
      try {
        const res = await bare.app.inject({ method: 'POST', url: '/api/v1/sequences', headers: bare.auth, payload: spec.body });
        expect(res.statusCode).toBe(422);
        const error = res.json() as { message: string; errors: Record<string, string[]> };
        expect(error.message).toContain('NUDGE_AI_BASE_URL');
        expect(Object.keys(error.errors)).toEqual(['goal']);
        const list = await bare.app.inject({ method: 'GET', url: '/api/v1/sequences', headers: bare.auth });
        expect((list.json() as { data: unknown[] }).data).toEqual([]);
      } finally {
        await bare.close();
      }
    });

    it('refuses emailCount 11, naming emailCount', async () => {
      const res = await post('/api/v1/sequences', { ...spec.body, name: 'Too many', emailCount: 11 });
      expect(res.statusCode).toBe(422);
      expect(Object.keys((res.json() as { errors: Record<string, string[]> }).errors)).toEqual(['emailCount']);
      expect(callsFor('Too many')).toHaveLength(0);
    });

    it('retries after the endpoint answers 500 twice, waiting 30 s then 60 s, and completes', async () => {
      fake.script.push(aiError(500, 'The server had an error while processing your request.', 'server_error'), aiError(500, 'The server had an error while processing your request.', 'server_error'));
      const id = await createFromGoal('Flaky endpoint');
      const worker = createTestWorker(t.ctx);

      await worker.drain();
      expect(callsFor('Flaky endpoint')).toHaveLength(1);
      let seen = await view(id);
      expect(seen.enrichment).toMatchObject({ status: 'pending', completedAt: null });
      expect(seen.enrichment?.error).toContain('AI endpoint 500');

      clock.advance(30 * second - 1);
      await worker.drain();
      expect(callsFor('Flaky endpoint')).toHaveLength(1);
      clock.advance(1);
      await worker.drain();
      expect(callsFor('Flaky endpoint')).toHaveLength(2);
      expect((await view(id)).enrichment?.status).toBe('pending');

      clock.advance(60 * second - 1);
      await worker.drain();
      expect(callsFor('Flaky endpoint')).toHaveLength(2);
      clock.advance(1);
      await worker.drain();
      expect(callsFor('Flaky endpoint')).toHaveLength(3);
      seen = await view(id);
      expect(seen.enrichment).toMatchObject({ status: 'completed', error: null });
      expect(seen.steps).toHaveLength(3);
    });

    it('waits for Retry-After when it is longer than the backoff', async () => {
      fake.script.push({ ...aiError(429, 'Rate limit reached for gpt-test.', 'requests', 'rate_limit_exceeded'), headers: { 'retry-after': '120' } });
      const id = await createFromGoal('Rate limited');
      const worker = createTestWorker(t.ctx);
      await worker.drain();
      clock.advance(120 * second - 1);
      await worker.drain();
      expect(callsFor('Rate limited')).toHaveLength(1);
      clock.advance(1);
      await worker.drain();
      expect(callsFor('Rate limited')).toHaveLength(2);
      expect((await view(id)).enrichment?.status).toBe('completed');
    });

    it('marks the sequence failed with the endpoint message on a 401, without retrying, and lets the user give steps', async () => {
      const message = 'Incorrect API key provided: sk-****abcd. You can find your API key at https://platform.openai.com/account/api-keys.';
      fake.script.push(aiError(401, message, 'invalid_request_error', 'invalid_api_key'));
      const id = await createFromGoal('Bad key');
      const worker = createTestWorker(t.ctx);
      await worker.drain();
      const failed = await view(id);
      expect(failed.enrichment?.status).toBe('failed');
      expect(failed.enrichment?.error).toContain(message);
      expect(failed.graph.nodes).toEqual([]);

      clock.advance(2 * 60 * minute);
      await worker.drain();
      expect(callsFor('Bad key')).toHaveLength(1);

      // A failed enrichment leaves an ordinary empty draft: enabling asks for steps, and steps given by hand work.
      const empty = await post(`/api/v1/sequences/${id}/enable`, {});
      expect(empty.statusCode).toBe(422);
      expect((empty.json() as { message: string }).message).toContain('no steps');
      const put = await t.app.inject({ method: 'PUT', url: `/api/v1/sequences/${id}`, headers: t.auth, payload: { steps: [{ subject: 'Hello', html: '<p>Hi</p>' }] } });
      expect(put.statusCode, put.body).toBe(200);
      const enabled = await post(`/api/v1/sequences/${id}/enable`, {});
      expect(enabled.statusCode, enabled.body).toBe(200);
    });

    it('gives up after five retryable failures', async () => {
      for (let i = 0; i < 6; i += 1) fake.script.push(aiError(503, 'The engine is currently overloaded, please try again later.', 'server_error'));
      const id = await createFromGoal('Always overloaded');
      const worker = createTestWorker(t.ctx);
      for (let i = 0; i < 8; i += 1) {
        await worker.drain();
        clock.advance(30 * minute);
      }
      expect(callsFor('Always overloaded')).toHaveLength(5);
      const failed = await view(id);
      expect(failed.enrichment?.status).toBe('failed');
      expect(failed.enrichment?.error).toContain('overloaded');
    });

    it('treats written emails that do not compile as a retryable failure', async () => {
      fake.reply = () => JSON.stringify({ emails: [{ subject: 'Hi {{contct.first_name}}', html: '<p>Hello</p>', delayDays: 0 }] });
      const id = await createFromGoal('Typo in tag');
      const worker = createTestWorker(t.ctx);
      await worker.drain();
      const pending = await view(id);
      expect(pending.enrichment?.status).toBe('pending');
      expect(pending.enrichment?.error).toContain('contct.first_name');
      expect(pending.graph.nodes).toEqual([]);

      fake.reply = null;
      clock.advance(30 * second);
      await worker.drain();
      expect((await view(id)).enrichment?.status).toBe('completed');
      expect(callsFor('Typo in tag')).toHaveLength(2);
    });

    it('passes the event name of an event trigger to the writer', async () => {
      const id = await createFromGoal('After purchase', { trigger: 'event_received', eventName: 'order.placed' });
      await createTestWorker(t.ctx).drain();
      expect((await view(id)).enrichment?.status).toBe('completed');
      expect(userPrompt(callsFor('After purchase')[0]!)).toContain('order.placed');
    });

    it('does not write a sequence deleted before its turn, and takes it off the due index', async () => {
      const id = await createFromGoal('Deleted early');
      const deleted = await t.app.inject({ method: 'DELETE', url: `/api/v1/sequences/${id}`, headers: t.auth });
      expect(deleted.statusCode).toBe(200);
      await createTestWorker(t.ctx).drain();
      expect(callsFor('Deleted early')).toHaveLength(0);
      const row = await t.ctx.database.db.selectFrom('definitions').select(['enrichment_due_at', 'draft']).where('id', '=', id).executeTakeFirstOrThrow();
      expect(row.enrichment_due_at).toBeNull();
      expect(JSON.parse(row.draft)).toMatchObject({ graph: { nodes: [] } });
    });

    it('refuses goal together with steps, naming goal, and writes nothing', async () => {
      const res = await post('/api/v1/sequences', { name: 'Both ways', trigger: 'contact_added', goal: 'Welcome people', steps: [{ subject: 'Hi', html: '<p>Hi</p>' }] });
      expect(res.statusCode).toBe(422);
      expect(Object.keys((res.json() as { errors: Record<string, string[]> }).errors)).toEqual(['goal']);
      const names = (await t.ctx.database.db.selectFrom('definitions').select('name').execute()).map((r) => r.name);
      expect(names).not.toContain('Both ways');
    });

    it('writes the emails again from a new goal given with PUT, replacing the draft steps', async () => {
      const created = await post('/api/v1/sequences', { name: 'Rewritten', trigger: 'contact_added', steps: [{ subject: 'Old', html: '<p>Old</p>' }] });
      const id = (created.json() as { sequence: { id: string } }).sequence.id;
      const put = await t.app.inject({ method: 'PUT', url: `/api/v1/sequences/${id}`, headers: t.auth, payload: { goal: 'Explain Rewritten', emailCount: 2 } });
      expect(put.statusCode, put.body).toBe(200);
      expect((await view(id)).enrichment).toMatchObject({ status: 'pending', goal: 'Explain Rewritten', emailCount: 2 });
      const again = await t.app.inject({ method: 'PUT', url: `/api/v1/sequences/${id}`, headers: t.auth, payload: { goal: 'Something else' } });
      expect(again.statusCode).toBe(422);
      await createTestWorker(t.ctx).drain();
      expect(callsFor('Rewritten')).toHaveLength(1);
      const written = await view(id);
      expect(written.enrichment?.status).toBe('completed');
      expect(written.steps?.map((s) => s.subject)).not.toContain('Old');
      expect(written.steps).toHaveLength(2);
      // The old email's template left the sequence for the library; the two written ones are its templates now.
      const linked = (await t.app.inject({ method: 'GET', url: `/api/v1/email-templates?sequenceId=${id}`, headers: t.auth })).json() as { data: Array<{ subject: string }> };
      expect(linked.data.map((tpl) => tpl.subject)).not.toContain('Old');
      expect(linked.data).toHaveLength(2);
    });

    it('keeps steps the user gave while the emails were being written', async () => {
      const id = await createFromGoal('Written by hand');
      const put = await t.app.inject({ method: 'PUT', url: `/api/v1/sequences/${id}`, headers: t.auth, payload: { steps: [{ subject: 'Mine', html: '<p>Mine</p>' }] } });
      expect(put.statusCode, put.body).toBe(200);
      await createTestWorker(t.ctx).drain();
      expect(callsFor('Written by hand')).toHaveLength(1);
      const kept = await view(id);
      expect(kept.enrichment?.status).toBe('completed');
      expect(kept.steps).toEqual([{ subject: 'Mine', html: '<p>Mine</p>', templateId: expect.any(String) }]);
      const linked = (await t.app.inject({ method: 'GET', url: `/api/v1/email-templates?sequenceId=${id}`, headers: t.auth })).json() as { data: Array<{ subject: string }> };
      expect(linked.data.map((tpl) => tpl.subject)).toEqual(['Mine']);
    });

    it('leaves a claimed sequence alone until its lease ends, then writes it (a worker killed mid-call)', async () => {
      const id = await createFromGoal('Orphaned claim');
      // What a worker that claimed the row and died leaves behind: a lease in the future.
      const lease = clock.now() + 90 * second;
      await t.ctx.database.db.updateTable('definitions').set({ enrichment_due_at: lease }).where('id', '=', id).execute();
      const worker = createTestWorker(t.ctx);
      await worker.drain();
      expect(callsFor('Orphaned claim')).toHaveLength(0);
      clock.set(lease);
      await worker.drain();
      expect(callsFor('Orphaned claim')).toHaveLength(1);
      expect((await view(id)).enrichment?.status).toBe('completed');
    });

    it('keeps pending sequences pending while the server has no AI endpoint', async () => {
      const id = await createFromGoal('Endpoint removed');
      const withoutAi = { ...t.ctx, config: { ...t.ctx.config, ai: null } };
      expect(await writePendingSequences(withoutAi)).toBe(0);
      expect(callsFor('Endpoint removed')).toHaveLength(0);
      expect((await view(id)).enrichment?.status).toBe('pending');
      await createTestWorker(t.ctx).drain();
      expect((await view(id)).enrichment?.status).toBe('completed');
    });

    it('calls the endpoint once per sequence when two workers drain at the same time', async () => {
      const names = Array.from({ length: 12 }, (_, i) => `Concurrent ${i + 1}`);
      const ids = await Promise.all(names.map((name) => createFromGoal(name)));
      const a = createTestWorker(t.ctx);
      const b = createTestWorker(t.ctx);
      await Promise.all([a.drain(), b.drain(), writePendingSequences(t.ctx), writePendingSequences(t.ctx)]);
      for (const name of names) expect(callsFor(name), name).toHaveLength(1);
      for (const id of ids) expect((await view(id)).enrichment?.status).toBe('completed');
    });
  });
}
