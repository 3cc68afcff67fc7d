import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/domain/clock.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { dialects } from '../support/databases.js';
import { createTestWorker } from '../support/engine.js';

/** The create-sequence reference page's examples, verbatim. */
const blocksExample = {
  name: 'Welcome Sequence',
  trigger: 'contact_added',
  steps: [
    {
      subject: 'Welcome to our product!',
      blocks: [
        { id: 'heading-1', type: 'heading', content: 'Welcome!', level: 1 },
        { id: 'text-1', type: 'text', content: '<p>Thanks for signing up. We are excited to have you.</p>', variant: 'paragraph' },
      ],
    },
    {
      subject: 'Getting started guide',
      delay: { days: 1 },
      blocks: [
        { id: 'heading-2', type: 'heading', content: 'Getting Started', level: 1 },
        { id: 'text-2', type: 'text', content: '<p>Here is everything you need to get started...</p>', variant: 'paragraph' },
      ],
    },
  ],
};

const htmlExample = {
  name: 'Migrated Sequence',
  trigger: 'contact_added',
  steps: [
    {
      subject: 'Welcome!',
      html: '<h1>Welcome to our platform!</h1><p>We are thrilled to have you on board.</p><a href="https://example.com/start">Get Started</a>',
    },
    {
      subject: 'Quick tips to get started',
      delay: { days: 2 },
      html: '<h2>Getting Started Guide</h2><p>Here are some tips:</p><ul><li>Complete your profile</li><li>Explore the dashboard</li><li>Connect your integrations</li></ul>',
    },
  ],
};

interface Template {
  id: string;
  name: string;
  subject: string;
  previewText: string | null;
  blocks: Array<Record<string, unknown>>;
  sequenceId: string | null;
  flowId: string | null;
  nodeId: string | null;
  createdAt: string;
  updatedAt: string;
}

interface Sequence {
  id: string;
  status: string;
  hasUnpublishedChanges: boolean;
  currentVersionId: string | null;
  steps: Array<Record<string, unknown>> | null;
  graph: { nodes: Array<{ id: string; type: string; content?: { subject?: string; preview_text?: string; blocks?: unknown[]; html?: string } }> };
  emailTemplates: Array<{ nodeId: string; templateId: string }>;
}

const day = 86_400_000;

describe.each(dialects)('email templates of email steps on %s', (dialect) => {
  const clock = new ManualClock(Date.UTC(2026, 4, 7, 8, 0, 0));
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(dialect, { clock });
  });
  afterAll(async () => t.close());

  const call = (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: object) => t.app.inject({ method, url, headers: t.auth, ...(payload ? { payload } : {}) });
  const createSequence = async (body: object): Promise<Sequence> => {
    const res = await call('POST', '/api/v1/sequences', body);
    expect(res.statusCode, res.body).toBe(201);
    return (res.json() as { sequence: Sequence }).sequence;
  };
  const sequence = async (id: string): Promise<Sequence> => {
    const res = await call('GET', `/api/v1/sequences/${id}`);
    expect(res.statusCode, res.body).toBe(200);
    return (res.json() as { sequence: Sequence }).sequence;
  };
  const templatesOf = async (sequenceId: string): Promise<Template[]> => {
    const res = await call('GET', `/api/v1/email-templates?sequenceId=${sequenceId}`);
    expect(res.statusCode, res.body).toBe(200);
    return (res.json() as { data: Template[] }).data;
  };
  const template = async (id: string): Promise<Template> => {
    const res = await call('GET', `/api/v1/email-templates/${id}`);
    expect(res.statusCode, res.body).toBe(200);
    return (res.json() as { template: Template }).template;
  };
  const countTemplates = async () => Number((await t.ctx.database.db.selectFrom('email_templates').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);

  it('gives each email step of the reference page\u2019s blocks example a template holding its blocks', async () => {
    const created = await createSequence(blocksExample);
    const templates = await templatesOf(created.id);
    expect(templates).toEqual([
      {
        id: expect.any(String),
        name: 'Welcome Sequence \u2013 Email 1',
        subject: 'Welcome to our product!',
        previewText: null,
        blocks: blocksExample.steps[0]!.blocks,
        sequenceId: created.id,
        flowId: null,
        nodeId: 'step-1',
        createdAt: new Date(clock.now()).toISOString(),
        updatedAt: new Date(clock.now()).toISOString(),
      },
      expect.objectContaining({ name: 'Welcome Sequence \u2013 Email 2', subject: 'Getting started guide', blocks: blocksExample.steps[1]!.blocks, sequenceId: created.id, nodeId: 'step-2' }),
    ]);
    // The sequence shows each email step's template, in the create answer and when read.
    for (const view of [created, await sequence(created.id)]) {
      expect(view.steps!.map((s) => s.templateId)).toEqual(templates.map((tpl) => tpl.id));
      expect(view.emailTemplates).toEqual([
        { nodeId: 'step-1', templateId: templates[0]!.id },
        { nodeId: 'step-2', templateId: templates[1]!.id },
      ]);
    }
    expect(await template(templates[1]!.id)).toEqual(templates[1]);
  });

  it('gives each step of the reference page\u2019s HTML example a template with the HTML converted to blocks', async () => {
    const created = await createSequence(htmlExample);
    const templates = await templatesOf(created.id);
    expect(templates.map((tpl) => [tpl.name, tpl.subject, tpl.nodeId])).toEqual([
      ['Migrated Sequence \u2013 Email 1', 'Welcome!', 'step-1'],
      ['Migrated Sequence \u2013 Email 2', 'Quick tips to get started', 'step-2'],
    ]);
    expect(templates[0]!.blocks).toEqual([
      { id: 'heading-1', type: 'heading', content: 'Welcome to our platform!', level: 1 },
      { id: 'text-1', type: 'text', content: '<p>We are thrilled to have you on board.</p>', variant: 'paragraph' },
      { id: 'button-1', type: 'button', text: 'Get Started', url: 'https://example.com/start' },
    ]);
    expect(templates[1]!.blocks).toEqual([
      { id: 'heading-1', type: 'heading', content: 'Getting Started Guide', level: 2 },
      { id: 'text-1', type: 'text', content: '<p>Here are some tips:</p>', variant: 'paragraph' },
      { id: 'text-2', type: 'text', content: '<ul><li>Complete your profile</li><li>Explore the dashboard</li><li>Connect your integrations</li></ul>', variant: 'ul' },
    ]);
    // The same blocks the step's node holds: the template is the step's content.
    const nodes = (await sequence(created.id)).graph.nodes.filter((n) => n.type === 'send_message');
    expect(nodes.map((n) => n.content?.blocks)).toEqual(templates.map((tpl) => tpl.blocks));
  });

  it('sends an edited template from the next version, while a run started before keeps the email of its own version', async () => {
    const created = await createSequence({ ...blocksExample, name: 'Edited Welcome' });
    const [first, second] = await templatesOf(created.id);
    expect((await call('POST', `/api/v1/sequences/${created.id}/enable`, {})).statusCode).toBe(200);
    const enrollA = (await call('POST', `/api/v1/sequences/${created.id}/enroll`, { emails: ['early@example.com'] })).json() as { results: Array<{ enrollmentId: string }> };
    const sessionA = enrollA.results[0]!.enrollmentId;
    const worker = createTestWorker(t.ctx);
    await worker.drain();

    // Edit the second email (blocks) and the first (HTML, converted to blocks).
    const newBlocks = [
      { id: 'heading-2', type: 'heading', content: 'Your first week', level: 1 },
      { id: 'text-2', type: 'text', content: '<p>Three things to try today, {{contact.first_name|friend}}.</p>', variant: 'paragraph' },
    ];
    const edited = await call('PUT', `/api/v1/email-templates/${second!.id}`, { subject: 'Your first week', previewText: 'Three quick wins', blocks: newBlocks });
    expect(edited.statusCode, edited.body).toBe(200);
    expect(edited.json()).toMatchObject({ success: true, draftChanged: true, template: { id: second!.id, subject: 'Your first week', previewText: 'Three quick wins', blocks: newBlocks, nodeId: 'step-2' } });
    expect((edited.json() as { message: string }).message).toContain('enable');
    const html = await call('PUT', `/api/v1/email-templates/${first!.id}`, { html: '<h1>Hello again!</h1><p>We kept a seat for you.</p>' });
    expect(html.statusCode, html.body).toBe(200);
    expect((html.json() as { template: Template }).template.blocks).toEqual([
      { id: 'heading-1', type: 'heading', content: 'Hello again!', level: 1 },
      { id: 'text-1', type: 'text', content: '<p>We kept a seat for you.</p>', variant: 'paragraph' },
    ]);

    // The draft changed with it: the graph node and the linear step, still linked to the same template.
    const draft = await sequence(created.id);
    expect(draft.hasUnpublishedChanges).toBe(true);
    const node = draft.graph.nodes.find((n) => n.id === 'step-2')!;
    expect(node.content).toEqual({ subject: 'Your first week', preview_text: 'Three quick wins', blocks: newBlocks });
    expect(draft.steps![1]).toEqual({ subject: 'Your first week', previewText: 'Three quick wins', blocks: newBlocks, delay: { days: 1 }, templateId: second!.id });
    expect(draft.steps![0]).toMatchObject({ subject: 'Welcome to our product!', blocks: [expect.objectContaining({ content: 'Hello again!' }), expect.anything()], templateId: first!.id });

    const enabled = await call('POST', `/api/v1/sequences/${created.id}/enable`, {});
    expect(enabled.statusCode, enabled.body).toBe(200);
    expect((enabled.json() as { sequence: Sequence }).sequence.hasUnpublishedChanges).toBe(false);
    const enrollB = (await call('POST', `/api/v1/sequences/${created.id}/enroll`, { emails: ['late@example.com'] })).json() as { results: Array<{ enrollmentId: string }> };
    const sessionB = enrollB.results[0]!.enrollmentId;
    await worker.drain();
    clock.advance(day + 60_000);
    await worker.drain();

    type Sent = { channel: string; content: { subject: string; html: string; previewText?: string } };
    const sent = async (session: string) => ((await call('GET', `/api/v1/messages?session_id=${session}`)).json() as { data: Sent[] }).data.sort((a, b) => a.content.subject.localeCompare(b.content.subject));
    const early = await sent(sessionA);
    expect(early.map((m) => m.content.subject).sort()).toEqual(['Getting started guide', 'Welcome to our product!']);
    expect(early.find((m) => m.content.subject === 'Getting started guide')!.content.html).toContain('Here is everything you need to get started...');
    expect(early.find((m) => m.content.subject === 'Welcome to our product!')!.content.html).toContain('Thanks for signing up.');
    const late = await sent(sessionB);
    expect(late.map((m) => m.content.subject).sort()).toEqual(['Welcome to our product!', 'Your first week']);
    const week = late.find((m) => m.content.subject === 'Your first week')!;
    expect(week.content.html).toContain('Three things to try today, friend.');
    expect(week.content.previewText).toBe('Three quick wins');
    expect(week.content.html).not.toContain('Here is everything');
    expect(late.find((m) => m.content.subject === 'Welcome to our product!')!.content.html).toContain('We kept a seat for you.');
  });

  it('renaming a template leaves the draft alone', async () => {
    const created = await createSequence({ ...blocksExample, name: 'Renamed' });
    await call('POST', `/api/v1/sequences/${created.id}/enable`, {});
    const [first] = await templatesOf(created.id);
    const renamed = await call('PUT', `/api/v1/email-templates/${first!.id}`, { name: 'Day 0 welcome' });
    expect(renamed.statusCode, renamed.body).toBe(200);
    expect(renamed.json()).toMatchObject({ draftChanged: false, template: { name: 'Day 0 welcome', subject: 'Welcome to our product!' } });
    expect((await sequence(created.id)).hasUnpublishedChanges).toBe(false);
  });

  it('PUT of a sequence updates its steps\u2019 templates by node id, unlinks those of removed steps and moves them along when steps are reordered', async () => {
    const steps = [
      { subject: 'One', html: '<p>One</p>' },
      { subject: 'Two', delay: { days: 1 }, html: '<p>Two</p>' },
      { subject: 'Three', delay: { days: 1 }, html: '<p>Three</p>' },
    ];
    const created = await createSequence({ name: 'Reworked', steps });
    const [one, two, three] = await templatesOf(created.id);
    await call('PUT', `/api/v1/email-templates/${two!.id}`, { name: 'The second one' });
    clock.advance(1000);

    const put = await call('PUT', `/api/v1/sequences/${created.id}`, { steps: [{ subject: 'One, edited', html: '<p>One again</p>' }, steps[1], { type: 'sms', text: 'Three is a text now' }] });
    expect(put.statusCode, put.body).toBe(200);
    const linked = await templatesOf(created.id);
    expect(linked.map((tpl) => [tpl.id, tpl.nodeId, tpl.name, tpl.subject])).toEqual([
      [one!.id, 'step-1', 'Reworked \u2013 Email 1', 'One, edited'],
      [two!.id, 'step-2', 'The second one', 'Two'],
    ]);
    expect(linked[0]!.blocks).toEqual([{ id: 'text-1', type: 'text', content: '<p>One again</p>', variant: 'paragraph' }]);
    expect(linked[0]!.updatedAt).toBe(new Date(clock.now()).toISOString());
    expect(linked[1]!.updatedAt).toBe(two!.updatedAt);
    // The step that became a text message left its template in the library.
    expect(await template(three!.id)).toMatchObject({ subject: 'Three', sequenceId: null, nodeId: null });
    expect((put.json() as { sequence: Sequence }).sequence.emailTemplates).toEqual([
      { nodeId: 'step-1', templateId: one!.id },
      { nodeId: 'step-2', templateId: two!.id },
    ]);

    // Reading the steps and writing them back reversed moves each template with its step.
    const read = (await sequence(created.id)).steps!;
    const reversed = await call('PUT', `/api/v1/sequences/${created.id}`, { steps: [read[1], read[0]] });
    expect(reversed.statusCode, reversed.body).toBe(200);
    expect((await templatesOf(created.id)).map((tpl) => [tpl.id, tpl.nodeId, tpl.subject])).toEqual([
      [one!.id, 'step-2', 'One, edited'],
      [two!.id, 'step-1', 'Two'],
    ]);

    // A new goal empties the draft: every template goes to the library.
    const emptied = await call('PUT', `/api/v1/sequences/${created.id}`, { steps: [] });
    expect(emptied.statusCode, emptied.body).toBe(200);
    expect(await templatesOf(created.id)).toEqual([]);
    expect(await template(one!.id)).toMatchObject({ sequenceId: null, nodeId: null });
  });

  it('a step naming a library template takes it over with its content; a second step naming it gets a copy', async () => {
    const library = await call('POST', '/api/v1/email-templates', {
      name: 'Spring sale',
      subject: 'Spring sale for {{contact.first_name|you}}',
      previewText: '20% off',
      html: '<h1>Spring sale</h1><p>Everything is 20% off.</p>',
    });
    expect(library.statusCode, library.body).toBe(201);
    const libraryTemplate = (library.json() as { template: Template }).template;
    expect(libraryTemplate).toMatchObject({ name: 'Spring sale', sequenceId: null, nodeId: null, blocks: [expect.objectContaining({ type: 'heading', content: 'Spring sale' }), expect.objectContaining({ type: 'text' })] });

    const created = await createSequence({ name: 'Sale', steps: [{ templateId: libraryTemplate.id }, { templateId: libraryTemplate.id, subject: 'Last day of the sale', delay: { days: 3 } }] });
    expect(created.steps).toEqual([
      { subject: libraryTemplate.subject, previewText: '20% off', blocks: libraryTemplate.blocks, templateId: libraryTemplate.id },
      { subject: 'Last day of the sale', previewText: '20% off', blocks: libraryTemplate.blocks, delay: { days: 3 }, templateId: expect.any(String) },
    ]);
    const templates = await templatesOf(created.id);
    expect(templates.map((tpl) => [tpl.id === libraryTemplate.id, tpl.name, tpl.subject, tpl.nodeId])).toEqual([
      [true, 'Spring sale', libraryTemplate.subject, 'step-1'],
      [false, 'Sale \u2013 Email 2', 'Last day of the sale', 'step-2'],
    ]);
    expect(templates[1]!.blocks).toEqual(libraryTemplate.blocks);

    // Named by another sequence, a template that is already a step's is copied, not taken.
    const other = await createSequence({ name: 'Copycat', steps: [{ templateId: libraryTemplate.id }] });
    const [copy] = await templatesOf(other.id);
    expect(copy!.id).not.toBe(libraryTemplate.id);
    expect(copy).toMatchObject({ name: 'Copycat \u2013 Email 1', subject: libraryTemplate.subject, blocks: libraryTemplate.blocks });
    expect(await template(libraryTemplate.id)).toMatchObject({ sequenceId: created.id, nodeId: 'step-1' });
  });

  it('refuses a templateId that is unknown, another workspace\u2019s, malformed or on a step that is not an email, naming steps.<i>.templateId, and writes nothing', async () => {
    const foreign = await t.app.inject({
      method: 'POST',
      url: '/api/v1/email-templates',
      headers: { authorization: `Bearer ${t.other.token}` },
      payload: { subject: 'Theirs', blocks: [{ type: 'text', content: '<p>Theirs</p>' }] },
    });
    expect(foreign.statusCode, foreign.body).toBe(201);
    const foreignId = (foreign.json() as { template: Template }).template.id;
    const before = { templates: await countTemplates(), sequences: ((await call('GET', '/api/v1/sequences?limit=200')).json() as { data: unknown[] }).data.length };
    const cases: Array<[object[], string]> = [
      [[{ subject: 'Fine', html: '<p>Fine</p>' }, { templateId: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4aff' }], 'steps.1.templateId'],
      [[{ templateId: foreignId }], 'steps.0.templateId'],
      [[{ templateId: 'not-a-uuid' }], 'steps.0.templateId'],
      [[{ type: 'sms', text: 'Hi', templateId: foreignId }], 'steps.0.templateId'],
    ];
    for (const [steps, field] of cases) {
      const res = await call('POST', '/api/v1/sequences', { name: 'Refused', steps });
      expect({ status: res.statusCode, fields: Object.keys((res.json() as { errors?: object }).errors ?? {}) }, res.body).toEqual({ status: 422, fields: [field] });
      expect((res.json() as { message: string }).message).toContain(`steps[${field.split('.')[1]}]: templateId`);
    }
    const existing = await createSequence({ name: 'Kept', steps: [{ subject: 'Kept', html: '<p>Kept</p>' }] });
    const refusedPut = await call('PUT', `/api/v1/sequences/${existing.id}`, { steps: [{ templateId: foreignId }] });
    expect(refusedPut.statusCode).toBe(422);
    expect((await sequence(existing.id)).steps![0]).toMatchObject({ subject: 'Kept' });
    expect(await countTemplates()).toBe(before.templates + 1);
    expect(((await call('GET', '/api/v1/sequences?limit=200')).json() as { data: unknown[] }).data.length).toBe(before.sequences + 1);
  });

  it('answers bad template input with 422 naming the field, and changes nothing', async () => {
    const created = await createSequence({ ...blocksExample, name: 'Guarded' });
    await call('POST', `/api/v1/sequences/${created.id}/enable`, {});
    const [first] = await templatesOf(created.id);
    const before = await countTemplates();
    const posts: Array<[object, string]> = [
      [{ blocks: [{ type: 'text', content: '<p>x</p>' }] }, 'subject'],
      [{ subject: 'No content' }, 'blocks'],
      [{ subject: 'Both', html: '<p>x</p>', blocks: [{ type: 'text', content: '<p>x</p>' }] }, 'html'],
      [{ subject: 'Empty', html: '<!-- nothing -->' }, 'html'],
      [{ subject: 'Hi {{contct.first_name}}', html: '<p>x</p>' }, 'subject'],
      [{ subject: 'Tags', blocks: [{ type: 'text', content: '<p>{{nope}}</p>' }] }, 'blocks.0.content'],
      [{ subject: 'None', blocks: [] }, 'blocks'],
      [{ subject: 'Bad block', blocks: [{ content: 'no type' }] }, 'blocks.0.type'],
      [{ subject: 'x', html: '<p>x</p>', colour: 'red' }, 'colour'],
      [{ subject: '   ', html: '<p>x</p>' }, 'subject'],
    ];
    for (const [payload, field] of posts) {
      const res = await call('POST', '/api/v1/email-templates', payload);
      const errors = (res.json() as { errors?: Record<string, string[]> }).errors ?? {};
      expect({ payload, status: res.statusCode, named: Object.keys(errors).some((key) => key === field || key.startsWith(`${field}.`)) }, res.body).toEqual({ payload, status: 422, named: true });
    }
    const puts: Array<[object, string]> = [
      [{}, 'body'],
      [{ subject: '' }, 'subject'],
      [{ previewText: 5 }, 'previewText'],
      [{ blocks: [{ type: 'text', content: '<p>{{webhook.order.status}}</p>' }] }, 'blocks.0.content'],
      [{ name: '' }, 'name'],
    ];
    for (const [payload, field] of puts) {
      const res = await call('PUT', `/api/v1/email-templates/${first!.id}`, payload);
      const errors = (res.json() as { errors?: Record<string, string[]> }).errors ?? {};
      expect({ payload, status: res.statusCode, named: Object.keys(errors).some((key) => key === field || key.startsWith(`${field}.`)) }, res.body).toEqual({ payload, status: 422, named: true });
    }
    expect(await countTemplates()).toBe(before);
    expect(await template(first!.id)).toEqual(first);
    expect((await sequence(created.id)).hasUnpublishedChanges).toBe(false);
    for (const url of ['/api/v1/email-templates/not-a-uuid', '/api/v1/email-templates/0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4aff']) expect((await call('GET', url)).statusCode).toBe(404);
    expect((await call('GET', '/api/v1/email-templates?sequenceId=nope')).statusCode).toBe(422);
    expect((await call('GET', '/api/v1/email-templates?cursor=%21%21')).statusCode).toBe(422);
  });

  it('accepts webhook results in a library template, since its graph is not known yet', async () => {
    const res = await call('POST', '/api/v1/email-templates', { subject: 'Order {{webhook.order.body.number}}', blocks: [{ type: 'text', content: '<p>Status: {{webhook.order.status}}</p>' }] });
    expect(res.statusCode, res.body).toBe(201);
    expect((res.json() as { template: Template }).template.name).toBe('Order {{webhook.order.body.number}}');
  });

  it('refuses to delete a template while its sequence may still be published; deletes it once archived, and a deleted sequence leaves its templates in the library', async () => {
    const created = await createSequence({ ...blocksExample, name: 'Deletable' });
    const [first, second] = await templatesOf(created.id);
    const refused = await call('DELETE', `/api/v1/email-templates/${first!.id}`);
    expect(refused.statusCode).toBe(422);
    expect((refused.json() as { message: string }).message).toContain('step-1');
    expect((await template(first!.id)).sequenceId).toBe(created.id);

    expect((await call('POST', `/api/v1/sequences/${created.id}/archive`, {})).statusCode).toBe(200);
    expect((await call('DELETE', `/api/v1/email-templates/${first!.id}`)).json()).toEqual({ success: true, id: first!.id });
    expect((await call('GET', `/api/v1/email-templates/${first!.id}`)).statusCode).toBe(404);
    expect((await sequence(created.id)).emailTemplates).toEqual([{ nodeId: 'step-2', templateId: second!.id }]);

    expect((await call('DELETE', `/api/v1/sequences/${created.id}`)).statusCode).toBe(200);
    expect(await template(second!.id)).toMatchObject({ sequenceId: null, nodeId: null, subject: 'Getting started guide' });
    expect((await call('DELETE', `/api/v1/email-templates/${second!.id}`)).statusCode).toBe(200);

    const library = (await call('POST', '/api/v1/email-templates', { subject: 'Loose', html: '<p>Loose</p>' })).json() as { template: Template };
    expect((await call('DELETE', `/api/v1/email-templates/${library.template.id}`)).statusCode).toBe(200);
    expect((await call('DELETE', `/api/v1/email-templates/${library.template.id}`)).statusCode).toBe(404);
  });

  it('gives a flow\u2019s email nodes templates too, shown with flowId', async () => {
    const res = await call('POST', '/api/v1/flows', {
      name: 'Receipt flow',
      graph: { entry: 'mail', nodes: [{ id: 'mail', type: 'send_message', channel: 'email', content: { subject: 'Your receipt', text: 'Thanks for your order.\n\nSee you soon.' } }], edges: [] },
    });
    expect(res.statusCode, res.body).toBe(201);
    const flow = (res.json() as { flow: Sequence }).flow;
    const [receipt] = await templatesOf(flow.id);
    expect(receipt).toMatchObject({ name: 'Receipt flow \u2013 Email 1', sequenceId: null, flowId: flow.id, nodeId: 'mail', subject: 'Your receipt' });
    expect(receipt!.blocks).toEqual([
      { id: 'text-1', type: 'text', content: '<p>Thanks for your order.</p>', variant: 'paragraph' },
      { id: 'text-2', type: 'text', content: '<p>See you soon.</p>', variant: 'paragraph' },
    ]);
    expect(flow.emailTemplates).toEqual([{ nodeId: 'mail', templateId: receipt!.id }]);
    const edited = await call('PUT', `/api/v1/email-templates/${receipt!.id}`, { subject: 'Your receipt is ready' });
    expect(edited.statusCode, edited.body).toBe(200);
    const node = ((await call('GET', `/api/v1/flows/${flow.id}`)).json() as { flow: Sequence }).flow.graph.nodes[0]!;
    expect(node.content).toEqual({ subject: 'Your receipt is ready', blocks: receipt!.blocks });
  });

  it('keeps a step and its template equal when template edits and sequence PUTs race', async () => {
    const created = await createSequence({ ...blocksExample, name: 'Raced' });
    const [first] = await templatesOf(created.id);
    const writes = Array.from({ length: 24 }, (_, i) => {
      if (i % 3 === 0) return call('PUT', `/api/v1/email-templates/${first!.id}`, { subject: `Edit ${i}`, blocks: [{ type: 'text', content: `<p>Edit ${i}</p>` }] });
      if (i % 3 === 1) return call('PUT', `/api/v1/sequences/${created.id}`, { name: `Raced ${i}` });
      return call('PUT', `/api/v1/sequences/${created.id}`, { steps: [{ subject: `Put ${i}`, html: `<p>Put ${i}</p>` }, blocksExample.steps[1]] });
    });
    const statuses = (await Promise.all(writes)).map((res) => res.statusCode);
    expect(statuses.filter((status) => status !== 200)).toEqual([]);
    const draft = await sequence(created.id);
    const [linked] = await templatesOf(created.id);
    expect(linked!.id).toBe(first!.id);
    const node = draft.graph.nodes.find((n) => n.id === 'step-1')!;
    expect({ subject: node.content?.subject, blocks: node.content?.blocks }).toEqual({ subject: linked!.subject, blocks: linked!.blocks });
    expect(draft.steps![0]).toMatchObject({ subject: linked!.subject });
  });

  it('lists a page at a time', async () => {
    const all: string[] = [];
    let cursor: string | null = null;
    do {
      const res = await call('GET', `/api/v1/email-templates?limit=3${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.statusCode, res.body).toBe(200);
      const page = res.json() as { data: Template[]; nextCursor: string | null };
      expect(page.data.length).toBeLessThanOrEqual(3);
      all.push(...page.data.map((tpl) => tpl.id));
      cursor = page.nextCursor;
    } while (cursor !== null);
    expect(all.length).toBe(await countTemplates() - 1); // The other workspace's template is not listed.
    expect([...all].sort()).toEqual(all);
  });

  it('documents the email template routes in the OpenAPI document', async () => {
    const document = (await t.app.inject({ method: 'GET', url: '/api/v1/openapi.json' })).json() as { paths: Record<string, Record<string, { tags?: string[] }>> };
    expect(Object.keys(document.paths['/api/v1/email-templates']!).sort()).toEqual(['get', 'post']);
    expect(Object.keys(document.paths['/api/v1/email-templates/{id}']!).sort()).toEqual(['delete', 'get', 'put']);
    expect(document.paths['/api/v1/email-templates']!.get!.tags).toEqual(['Email templates']);
  });
});
