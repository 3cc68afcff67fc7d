import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { dialects } from '../support/databases.js';
import { createTestWorker } from '../support/engine.js';

/** An email step carries a signed per-contact unsubscribe link in its body and its List-Unsubscribe headers, and the link works. */
describe.each(dialects)('email unsubscribe from a sequence on %s', (dialect) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(dialect);
  });
  afterAll(async () => t.close());

  it('sends the one-click headers and honours the link', async () => {
    const post = (url: string, payload: object) => t.app.inject({ method: 'POST', url, headers: t.auth, payload });
    const contact = (await post('/api/v1/actions/create-contact', { phone: '+14155550950', email: 'ada@example.com', name: 'Ada <b>' })).json();
    const created = await post('/api/v1/sequences', {
      name: 'Newsletter',
      steps: [
        { subject: 'Hello {{contact.first_name}}', html: '<p>Hi {{contact.name}}</p>' },
        { subject: 'Second', delay: { days: 1 }, html: '<p>Again</p>' },
      ],
    });
    expect(created.statusCode, created.body).toBe(201);
    const id = created.json().sequence.id;
    // The HTML was kept editable as blocks.
    const stored = created.json().sequence.graph.nodes.find((n: { id: string }) => n.id === 'step-1');
    expect(stored.content.html).toBeUndefined();
    expect(stored.content.blocks).toEqual([expect.objectContaining({ type: 'text', content: expect.stringContaining('Hi {{contact.name}}') })]);
    await post(`/api/v1/sequences/${id}/publish`, {});
    const session = (await post('/api/v1/actions/trigger-sequence', { sequence_id: id, contact_id: contact.id })).json();
    await createTestWorker(t.ctx).drain();
    const [message] = (await t.app.inject({ method: 'GET', url: `/api/v1/messages?session_id=${session.id}`, headers: t.auth })).json().data;
    expect(message.channel).toBe('email');
    expect(message.content.html).toContain('Ada &lt;b&gt;');
    const header = message.content.headers['List-Unsubscribe'] as string;
    expect(message.content.headers['List-Unsubscribe-Post']).toBe('List-Unsubscribe=One-Click');
    const link = /<(http[^>]+\/unsubscribe\/[^>]+)>/.exec(header)![1]!;
    expect(message.content.html).toContain(link);
    const path = new URL(link).pathname;
    expect((await t.app.inject({ method: 'GET', url: path })).statusCode).toBe(200);
    const oneClick = await t.app.inject({ method: 'POST', url: path, headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'List-Unsubscribe=One-Click' });
    expect(oneClick.statusCode).toBe(200);
    const after = (await post('/api/v1/actions/get-contact', { contact_id: contact.id })).json();
    expect(after.opted_out_at).not.toBeNull();
  });
});
