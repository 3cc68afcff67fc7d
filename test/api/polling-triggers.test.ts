import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/domain/clock.js';
import { createToken } from '../../src/engine/auth-service.js';
import { receiveInbound } from '../../src/engine/inbound-service.js';
import { triggerDefinition } from '../../src/engine/enrollment-service.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { dialects } from '../support/databases.js';
import { createTestWorker } from '../support/engine.js';

/**
 * The polling triggers and dropdowns integration tools read: newest first, at most
 * 100, flat items whose `id` is stable, filters, and nothing of another workspace.
 */
describe.each(dialects)('polling triggers and dropdowns on %s', (dialect) => {
  const clock = new ManualClock(Date.UTC(2026, 4, 7, 8, 0, 0));
  let t: TestApp;
  const get = (url: string, headers = t.auth) => t.app.inject({ method: 'GET', url, headers });
  const post = (url: string, payload?: unknown) => t.app.inject({ method: 'POST', url, headers: t.auth, ...(payload === undefined ? {} : { payload: payload as object }) });
  const otherAuth = () => ({ authorization: `Bearer ${t.other.token}` });

  beforeAll(async () => {
    t = await createTestApp(dialect, { clock });
  });
  afterAll(async () => t.close());

  async function definition(kind: 'sequence' | 'flow', name: string, publish = true): Promise<string> {
    const created = await post(`/api/v1/${kind}s`, { name, steps: [{ type: 'sms', text: 'Hello {{contact.first_name|there}}' }, { type: 'sms', delay: { days: 1 }, text: 'Later' }] });
    expect(created.statusCode, created.body).toBe(201);
    const id = created.json()[kind].id as string;
    if (publish) expect((await post(`/api/v1/${kind}s/${id}/publish`)).statusCode).toBe(200);
    return id;
  }

  const inbound = (phone: string, fields: { text?: string; buttonId?: string; channel?: 'whatsapp' | 'sms' } = {}) =>
    receiveInbound(t.ctx, { workspaceId: t.workspaceId, channel: fields.channel ?? 'whatsapp', phone, text: fields.text ?? null, buttonId: fields.buttonId ?? null, provider: 'sandbox' });

  describe('new-message-received', () => {
    it('lists received messages newest first with the sender, at most 100, and filters by message_type and channel', async () => {
      await post('/api/v1/actions/create-contact', { phone: '+14155550801', name: 'Ana Silva', email: 'ana@example.com' });
      const sent: string[] = [];
      for (let i = 0; i < 103; i += 1) {
        clock.advance(1000);
        const fields = i % 10 === 0 ? { buttonId: 'yes' } : i % 7 === 0 ? { text: `sms ${i}`, channel: 'sms' as const } : { text: `message ${i}` };
        sent.push((await inbound('+14155550801', fields)).messageId);
      }
      // An outbound message is not an item.
      await post('/api/v1/actions/send-text-message', { phone: '+14155550801', message: 'Our answer' });

      const res = await get('/api/v1/triggers/new-message-received');
      expect(res.statusCode, res.body).toBe(200);
      const items = res.json() as Array<Record<string, unknown>>;
      expect(items).toHaveLength(100);
      expect(items.map((i) => i.id)).toEqual([...sent].reverse().slice(0, 100));
      const times = items.map((i) => i.created_at as string);
      expect(times).toEqual([...times].sort().reverse());
      expect(items[0]).toEqual({
        id: sent[102],
        message_type: 'text',
        channel: 'whatsapp',
        text: 'message 102',
        button_id: null,
        contact_id: expect.any(String),
        contact_phone: '+14155550801',
        contact_email: 'ana@example.com',
        contact_name: 'Ana Silva',
        contact_first_name: 'Ana',
        contact_last_name: 'Silva',
        session_id: null,
        flow_id: null,
        provider_message_id: null,
        received_at: new Date(clock.now()).toISOString(),
        created_at: new Date(clock.now()).toISOString(),
      });

      const buttons = (await get('/api/v1/triggers/new-message-received?message_type=button')).json() as Array<Record<string, unknown>>;
      expect(buttons.map((i) => i.id)).toEqual(sent.filter((_, i) => i % 10 === 0).reverse());
      expect(buttons.every((i) => i.message_type === 'button' && i.button_id === 'yes')).toBe(true);
      const sms = (await get('/api/v1/triggers/new-message-received?channel=sms')).json() as Array<Record<string, unknown>>;
      expect(sms.map((i) => i.text)).toEqual(sent.map((_, i) => i).filter((i) => i % 10 !== 0 && i % 7 === 0).reverse().map((i) => `sms ${i}`));

      // Polled again after one more message: the same ids, one new at the top.
      clock.advance(1000);
      const latest = (await inbound('+14155550801', { text: 'one more' })).messageId;
      const again = (await get('/api/v1/triggers/new-message-received')).json() as Array<{ id: string }>;
      expect(again.map((i) => i.id)).toEqual([latest, ...items.slice(0, 99).map((i) => i.id)]);

      expect((await get('/api/v1/triggers/new-message-received', otherAuth())).json()).toEqual([]);
      const bad = await get('/api/v1/triggers/new-message-received?message_type=fax');
      expect(bad.statusCode).toBe(422);
      expect(bad.json().errors).toHaveProperty('message_type');
    });
  });

  describe('new-flow-triggered and new-sequence-triggered', () => {
    it('lists sessions started newest first, one kind each, with the definition and contact, filtered by id', async () => {
      const flowA = await definition('flow', 'Cart rescue');
      const flowB = await definition('flow', 'Feedback');
      const sequence = await definition('sequence', 'Onboarding');
      const started: Array<{ kind: string; definition: string; id: string; phone: string }> = [];
      for (const [i, [kind, id]] of ([['flow', flowA], ['sequence', sequence], ['flow', flowB], ['flow', flowA], ['sequence', sequence]] as const).entries()) {
        clock.advance(60_000);
        const phone = `+1415555090${i}`;
        const res = await post(`/api/v1/actions/trigger-${kind}`, { [`${kind}_id`]: id, phone, context: { order: `ORD-${i}` } });
        expect(res.statusCode, res.body).toBe(201);
        started.push({ kind, definition: id, id: res.json().id, phone });
      }

      const flows = (await get('/api/v1/triggers/new-flow-triggered')).json() as Array<Record<string, unknown>>;
      expect(flows.map((f) => f.id)).toEqual(started.filter((s) => s.kind === 'flow').map((s) => s.id).reverse());
      expect(flows[0]).toEqual({
        id: started[3]!.id,
        status: 'running',
        source: 'api',
        end_reason: null,
        contact_id: expect.any(String),
        contact_phone: started[3]!.phone,
        contact_email: null,
        contact_name: null,
        contact_first_name: null,
        contact_last_name: null,
        context: { order: 'ORD-3' },
        started_at: new Date(clock.now() - 60_000).toISOString(),
        ended_at: null,
        created_at: new Date(clock.now() - 60_000).toISOString(),
        flow_id: flowA,
        flow_name: 'Cart rescue',
      });
      const onlyB = (await get(`/api/v1/triggers/new-flow-triggered?flow_id=${flowB}`)).json() as Array<Record<string, unknown>>;
      expect(onlyB.map((f) => [f.id, f.flow_name])).toEqual([[started[2]!.id, 'Feedback']]);

      const sequences = (await get('/api/v1/triggers/new-sequence-triggered')).json() as Array<Record<string, unknown>>;
      expect(sequences.map((s) => [s.id, s.sequence_id, s.sequence_name])).toEqual([
        [started[4]!.id, sequence, 'Onboarding'],
        [started[1]!.id, sequence, 'Onboarding'],
      ]);
      expect((await get(`/api/v1/triggers/new-sequence-triggered?sequence_id=${flowA}`)).json()).toEqual([]);
      const badId = await get('/api/v1/triggers/new-flow-triggered?flow_id=cart-rescue');
      expect(badId.statusCode).toBe(422);
      expect(badId.json().errors).toHaveProperty('flow_id');

      // At most 100, the newest.
      for (let i = 0; i < 101; i += 1) {
        await triggerDefinition(t.ctx, t.ctx.versions, t.workspaceId, 'sequence', { definitionId: sequence, phone: `+1415554${String(i).padStart(4, '0')}` });
      }
      const capped = (await get('/api/v1/triggers/new-sequence-triggered')).json() as Array<{ id: string; contact_phone: string }>;
      expect(capped).toHaveLength(100);
      expect(capped[0]!.contact_phone).toBe('+14155540100');
      expect(capped[99]!.contact_phone).toBe('+14155540001');

      expect((await get('/api/v1/triggers/new-flow-triggered', otherAuth())).json()).toEqual([]);
      expect((await get(`/api/v1/triggers/new-sequence-triggered?sequence_id=${sequence}`, otherAuth())).json()).toEqual([]);
    });
  });

  describe('new-campaign-sent', () => {
    it('lists broadcasts once sent, most recently sent first, and filters by template', async () => {
      const template = await post('/api/v1/templates', { name: 'promo', language: 'en', category: 'MARKETING', body: 'Promo for {{1}}' });
      const other = await post('/api/v1/templates', { name: 'notice', language: 'en', category: 'UTILITY', body: 'Notice' });
      const templateId = template.json().id as string;
      await post('/api/v1/actions/create-contact', { phone: '+14155550951', tags: 'campaign' });
      await post('/api/v1/actions/create-contact', { phone: '+14155550952', tags: 'campaign' });
      const worker = createTestWorker(t.ctx);
      const broadcast = async (name: string, extra: Record<string, unknown> = {}, template = templateId) => {
        const res = await post('/api/v1/broadcasts', { name, template_id: template, variables: template === templateId ? { '1': '{{first_name|you}}' } : {}, audience: { tag: 'campaign' }, ...extra });
        expect(res.statusCode, res.body).toBe(201);
        return res.json().id as string;
      };
      // Created first, sent last.
      const scheduledAt = new Date(clock.now() + 3_600_000).toISOString();
      const early = await broadcast('Created first', { scheduled_at: scheduledAt });
      const draft = await broadcast('Never sent');
      const now = await broadcast('Sent now');
      const notice = await broadcast('Notice', {}, other.json().id);
      for (const id of [now, notice]) {
        clock.advance(1000);
        await post(`/api/v1/broadcasts/${id}/send`);
        await worker.drain();
      }
      expect(((await get('/api/v1/triggers/new-campaign-sent')).json() as Array<{ id: string }>).map((b) => b.id)).toEqual([notice, now]);
      clock.advance(3_600_000);
      await worker.drain();

      const items = (await get('/api/v1/triggers/new-campaign-sent')).json() as Array<Record<string, unknown>>;
      expect(items.map((b) => b.id)).toEqual([early, notice, now]);
      expect(items.map((b) => b.id)).not.toContain(draft);
      expect(items[0]).toEqual({
        id: early,
        name: 'Created first',
        status: 'completed',
        template_id: templateId,
        template_name: 'promo',
        language: null,
        audience_type: 'tag',
        audience_tag: 'campaign',
        audience_segment_id: null,
        audience_list_id: null,
        recipients: 2,
        skipped: 0,
        scheduled_at: scheduledAt,
        started_at: new Date(clock.now()).toISOString(),
        sent_at: new Date(clock.now()).toISOString(),
        created_at: expect.any(String),
      });
      const promos = (await get(`/api/v1/triggers/new-campaign-sent?template_id=${templateId}`)).json() as Array<{ id: string }>;
      expect(promos.map((b) => b.id)).toEqual([early, now]);
      expect((await get('/api/v1/triggers/new-campaign-sent', otherAuth())).json()).toEqual([]);

      // At most 100.
      for (let i = 0; i < 99; i += 1) {
        clock.advance(1000);
        const id = await broadcast(`Bulk ${i}`);
        await post(`/api/v1/broadcasts/${id}/send`);
      }
      await worker.drain();
      const capped = (await get('/api/v1/triggers/new-campaign-sent')).json() as Array<{ name: string }>;
      expect(capped).toHaveLength(100);
      expect(capped[0]!.name).toBe('Bulk 98');
      expect(capped[99]!.name).toBe('Created first');
    });
  });

  describe('dropdowns', () => {
    it('offers the published sequences and flows by name, alphabetically, and only the workspace’s own', async () => {
      const zebra = await definition('sequence', 'Zebra sequence');
      const alpha = await definition('sequence', 'Alpha sequence');
      const draft = await definition('sequence', 'Draft sequence', false);
      const flow = await definition('flow', 'A flow to pick');
      const sequences = (await get('/api/v1/dropdowns/sequences')).json() as Array<{ id: string; label: string }>;
      const labels = sequences.map((o) => o.label);
      expect(labels).toEqual([...labels].sort());
      expect(sequences).toContainEqual({ id: alpha, label: 'Alpha sequence' });
      expect(sequences).toContainEqual({ id: zebra, label: 'Zebra sequence' });
      expect(sequences.map((o) => o.id)).not.toContain(draft);
      expect(sequences.map((o) => o.id)).not.toContain(flow);
      const flows = (await get('/api/v1/dropdowns/flows')).json() as Array<{ id: string; label: string }>;
      expect(flows).toContainEqual({ id: flow, label: 'A flow to pick' });
      expect(flows.map((o) => o.id)).not.toContain(alpha);
      expect((await get('/api/v1/dropdowns/sequences', otherAuth())).json()).toEqual([]);
      expect((await get('/api/v1/dropdowns/flows', otherAuth())).json()).toEqual([]);
    });
  });

  it('asks for the read scope of each resource', async () => {
    const reader = await createToken(t.ctx, { workspaceId: t.workspaceId, name: 'contacts only', scopes: ['contacts:read'], rateLimit: 1_000_000 });
    const headers = { authorization: `Bearer ${reader.token}` };
    const scopes: Array<[string, string]> = [
      ['/api/v1/triggers/new-message-received', 'messages:read'],
      ['/api/v1/triggers/new-campaign-sent', 'broadcasts:read'],
      ['/api/v1/triggers/new-flow-triggered', 'flows:read'],
      ['/api/v1/triggers/new-sequence-triggered', 'sequences:read'],
      ['/api/v1/dropdowns/sequences', 'sequences:read'],
      ['/api/v1/dropdowns/flows', 'flows:read'],
    ];
    for (const [url, scope] of scopes) {
      const res = await get(url, headers);
      expect({ url, status: res.statusCode }).toEqual({ url, status: 403 });
      expect(res.json().error).toContain(scope);
      const granted = await createToken(t.ctx, { workspaceId: t.workspaceId, name: scope, scopes: [scope], rateLimit: 1_000_000 });
      expect((await get(url, { authorization: `Bearer ${granted.token}` })).statusCode).toBe(200);
    }
  });
});
