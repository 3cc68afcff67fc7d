import type { KyselyPlugin } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/domain/clock.js';
import { newId } from '../../src/domain/ids.js';
import { applyContactChanges } from '../../src/engine/automation.js';
import { createTestApp, enabledSequence, type TestApp } from '../support/app.js';
import { dialects } from '../support/databases.js';
import { createTestWorker } from '../support/engine.js';

const day = 86_400_000;

/**
 * Stop conditions met by many contacts at once (a list import, a bulk change): every
 * matching run of those contacts stops, nothing else does, and the statements do not
 * grow with the number of contacts.
 */
describe.each(dialects)('stop conditions for many contacts at once on %s', (dialect) => {
  let t: TestApp;
  const clock = new ManualClock(Date.UTC(2026, 4, 1, 9));
  const post = (url: string, payload: unknown) => t.app.inject({ method: 'POST', url, headers: t.auth, payload: payload as object });

  beforeAll(async () => {
    t = await createTestApp(dialect, { clock, env: { NUDGE_SANDBOX_DELIVERY: 'dispatch' } });
  });
  afterAll(async () => t.close());

  const enabled = (body: object) => enabledSequence(t, body);

  const runs = (definitionId: string) =>
    t.ctx.database.db.selectFrom('sessions').innerJoin('contacts', 'contacts.id', 'sessions.contact_id').select(['contacts.email', 'sessions.status', 'sessions.end_reason']).where('definition_id', '=', definitionId).orderBy('contacts.email').execute();

  it('stops the matching runs of every contact added to a list in one request, and only those', async () => {
    const paid = (await post('/api/v1/lists', { name: 'Paid' })).json().list.id as string;
    const other = (await post('/api/v1/lists', { name: 'Other' })).json().list.id as string;
    const steps = [{ subject: 'Day 1', html: '<p>Hi</p>' }, { subject: 'Day 2', delay: { days: 1 }, html: '<p>Again</p>' }];
    const nurture = await enabled({ name: 'Nurture', trigger: 'tag_added', tagName: 'trial', stopCondition: { type: 'added_to_list', value: paid }, steps });
    const upsell = await enabled({ name: 'Upsell', trigger: 'tag_added', tagName: 'trial', stopCondition: { type: 'added_to_list', value: paid }, steps });
    const unrelated = await enabled({ name: 'Unrelated', trigger: 'tag_added', tagName: 'trial', stopCondition: { type: 'added_to_list', value: other }, steps });
    const emails = ['a@example.com', 'b@example.com', 'c@example.com'];
    for (const email of emails) expect((await post('/api/v1/subscribers', { email, tags: ['trial'] })).statusCode).toBe(201);
    await createTestWorker(t.ctx).runSchedulerOnce();

    const added = await post(`/api/v1/lists/${paid}/subscribers`, { emails: ['a@example.com', 'c@example.com'] });
    expect(added.statusCode, added.body).toBe(200);

    const stopped = { status: 'stopped', end_reason: 'stop_condition:added_to_list' };
    for (const id of [nurture, upsell]) {
      expect(await runs(id)).toEqual([
        { email: 'a@example.com', ...stopped },
        { email: 'b@example.com', status: 'running', end_reason: null },
        { email: 'c@example.com', ...stopped },
      ]);
    }
    expect((await runs(unrelated)).map((r) => r.status)).toEqual(['running', 'running', 'running']);
    // Their queued messages were cancelled with them; the others still go out.
    clock.advance(day);
    await createTestWorker(t.ctx).drain();
    const statuses = await t.ctx.database.db.selectFrom('messages').innerJoin('contacts', 'contacts.id', 'messages.contact_id').select(['contacts.email', 'messages.status', 'messages.definition_id']).where('messages.definition_id', '=', nurture).execute();
    const of = (email: string) => statuses.filter((m) => m.email === email).map((m) => m.status);
    expect(of('a@example.com')).toEqual(['cancelled']);
    expect(of('c@example.com')).toEqual(['cancelled']);
    expect(of('b@example.com')).toHaveLength(2);
    expect(of('b@example.com')).not.toContain('cancelled');
  });

  it('reads and stops in a few statements whatever the number of contacts, each contact by the rules it met', async () => {
    const steps = [{ subject: 'Day 1', html: '<p>Hi</p>' }, { subject: 'Day 2', delay: { days: 1 }, html: '<p>Again</p>' }];
    const onWon = await enabled({ name: 'Until won', trigger: 'tag_added', tagName: 'bulk', stopCondition: { type: 'has_tag', value: 'won' }, steps });
    const onLost = await enabled({ name: 'Until lost', trigger: 'tag_added', tagName: 'bulk', stopCondition: { type: 'has_tag', value: 'lost' }, steps });
    const contactIds: string[] = [];
    for (let i = 0; i < 40; i++) {
      const created = await post('/api/v1/subscribers', { email: `bulk${i}@example.com`, tags: ['bulk'] });
      expect(created.statusCode).toBe(201);
      const row = await t.ctx.database.db.selectFrom('contacts').select('id').where('email', '=', `bulk${i}@example.com`).executeTakeFirstOrThrow();
      contactIds.push(row.id);
    }
    // Even contacts win, odd ones are lost; 560 contacts without runs come first, so the
    // runs are found past the first read of 500.
    const changes = [
      ...Array.from({ length: 560 }, () => ({ contactId: newId(), tagsAdded: ['won'] })),
      ...contactIds.map((contactId, i) => ({ contactId, tagsAdded: [i % 2 === 0 ? 'won' : 'lost'] })),
    ];
    let statements = 0;
    const counter: KyselyPlugin = {
      transformQuery: (args) => {
        statements += 1;
        return args.node;
      },
      transformResult: async (args) => args.result,
    };
    const outcome = await t.ctx.database.db.withPlugin(counter).transaction().execute((trx) => applyContactChanges(t.ctx, trx, t.workspaceId, changes, 'test'));
    expect(outcome.stopped).toHaveLength(40);
    const statusOf = async (definitionId: string) =>
      new Map((await t.ctx.database.db.selectFrom('sessions').select(['contact_id', 'status', 'end_reason']).where('definition_id', '=', definitionId).execute()).map((r) => [r.contact_id, r]));
    const won = await statusOf(onWon);
    const lost = await statusOf(onLost);
    contactIds.forEach((id, i) => {
      expect(won.get(id)?.status, `contact ${i} in Until won`).toBe(i % 2 === 0 ? 'stopped' : 'running');
      expect(lost.get(id)?.status, `contact ${i} in Until lost`).toBe(i % 2 === 0 ? 'running' : 'stopped');
    });
    expect(won.get(contactIds[0]!)?.end_reason).toBe('stop_condition:has_tag');
    // Two reads of the runs, then per rule the stop's read, update and cancel: not a set per contact.
    expect(statements).toBeLessThan(16);
  });
});
