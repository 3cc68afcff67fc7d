import type { AddressInfo } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/domain/clock.js';
import { createToken } from '../../src/engine/auth-service.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { dialects } from '../support/databases.js';
import { createTestWorker } from '../support/engine.js';

/**
 * The MCP tools one by one, through the SDK's own client over streamable HTTP: the
 * broadcast tools, and the message, template, flow, session and contact tools, each
 * checked against what the REST API then shows (one store, one set of services).
 */

function body(result: CallToolResult): Record<string, unknown> {
  const first = result.content[0];
  if (first?.type !== 'text') throw new Error(`expected a text result, got ${JSON.stringify(result)}`);
  return JSON.parse(first.text) as Record<string, unknown>;
}

describe.each(dialects)('MCP tools on %s', (dialect) => {
  const clock = new ManualClock(Date.UTC(2026, 4, 7, 8, 0, 0));
  let t: TestApp;
  let endpoint: URL;
  const clients: Client[] = [];

  beforeAll(async () => {
    t = await createTestApp(dialect, { clock });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    endpoint = new URL(`http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}/mcp`);
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
  });
  afterAll(async () => t.close());

  async function connect(token = t.token): Promise<Client> {
    const client = new Client({ name: 'nudge-test', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(endpoint, { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
    clients.push(client);
    return client;
  }

  /** Calls a tool and returns its JSON body, failing the test on an isError result. */
  async function ok(client: Client, name: string, args: Record<string, unknown>): Promise<Record<string, unknown>> {
    const result = (await client.callTool({ name, arguments: args })) as CallToolResult;
    expect(result.isError, `${name}: ${JSON.stringify(result.content)}`).toBeFalsy();
    return body(result);
  }

  /** Calls a tool that must fail and returns its error body. */
  async function fails(client: Client, name: string, args: Record<string, unknown>): Promise<Record<string, unknown> & { errors?: Record<string, string[]> }> {
    const result = (await client.callTool({ name, arguments: args })) as CallToolResult;
    expect(result.isError, `${name} should fail: ${JSON.stringify(result.content)}`).toBe(true);
    const first = result.content[0];
    return first?.type === 'text' && first.text.startsWith('{') ? body(result) : { error: first?.type === 'text' ? first.text : '' };
  }

  const rest = {
    get: (url: string) => t.app.inject({ method: 'GET', url, headers: t.auth }),
    post: (url: string, payload?: unknown) => t.app.inject({ method: 'POST', url, headers: t.auth, ...(payload === undefined ? {} : { payload: payload as object }) }),
  };

  async function template(name: string, body = 'Hi {{1}}, your code is {{2}}.'): Promise<string> {
    const res = await rest.post('/api/v1/templates', { name, language: 'en_US', category: 'MARKETING', body });
    expect(res.statusCode, res.body).toBe(201);
    return res.json().id as string;
  }

  describe('broadcast tools', () => {
    it('creates a draft, sends it, and reports its counts; schedules and cancels another', async () => {
      const templateId = await template('mcp_sale');
      const client = await connect();
      const { contact: ana } = (await ok(client, 'create_contact', { phone: '+14155550601', first_name: 'Ana', tags: 'mcp-vip' })) as { contact: { id: string } };
      await ok(client, 'create_contact', { phone: '+14155550602', tags: 'mcp-vip' });

      const draft = await ok(client, 'create_broadcast', {
        name: 'Agent sale',
        template_id: templateId,
        variables: { '1': '{{contact.first_name|friend}}', '2': 'AGENT10' },
        audience: { tag: 'mcp-vip' },
      });
      expect(draft).toMatchObject({ name: 'Agent sale', status: 'draft', template_name: 'mcp_sale', audience: { type: 'tag', tag: 'mcp-vip' }, recipients: 0 });
      const id = draft.id as string;
      expect(await ok(client, 'get_broadcast', { broadcast_id: id })).toMatchObject({ id, status: 'draft' });

      expect(await ok(client, 'send_broadcast', { broadcast_id: id })).toMatchObject({ id, status: 'sending' });
      await createTestWorker(t.ctx).drain();
      expect(await ok(client, 'get_broadcast', { broadcast_id: id })).toMatchObject({
        status: 'completed',
        recipients: 2,
        counts: { queued: 0, sent: 2, delivered: 2, read: 0, failed: 0, skipped: 0, cancelled: 0 },
      });
      const messages = (await rest.get(`/api/v1/messages?broadcast_id=${id}`)).json().data as Array<{ content: { components: { body: string[] } } }>;
      expect(messages.map((m) => m.content.components.body[0]).sort()).toEqual(['Ana', 'friend']);
      const again = await fails(client, 'send_broadcast', { broadcast_id: id });
      expect(again).toMatchObject({ code: 'business_rule', status: 'completed' });

      const later = new Date(clock.now() + 86_400_000).toISOString();
      const scheduled = await ok(client, 'create_broadcast', { template_id: templateId, variables: { '1': 'you', '2': 'LATER' }, audience: { contact_ids: [ana.id] }, scheduled_at: later });
      expect(scheduled).toMatchObject({ status: 'scheduled', scheduled_at: later, name: 'mcp_sale' });
      const moved = new Date(clock.now() + 2 * 86_400_000).toISOString();
      expect(await ok(client, 'schedule_broadcast', { broadcast_id: scheduled.id, scheduled_at: moved })).toMatchObject({ status: 'scheduled', scheduled_at: moved });
      expect(await ok(client, 'cancel_broadcast', { broadcast_id: scheduled.id })).toMatchObject({ status: 'cancelled' });
      clock.advance(3 * 86_400_000);
      await createTestWorker(t.ctx).drain();
      expect((await rest.get(`/api/v1/messages?broadcast_id=${scheduled.id}`)).json().data).toEqual([]);

      const listed = await ok(client, 'list_broadcasts', { status: 'cancelled' });
      expect((listed.data as Array<{ id: string }>).map((b) => b.id)).toEqual([scheduled.id]);
      const rested = await rest.get(`/api/v1/broadcasts/${id}`);
      expect(rested.json()).toMatchObject({ id, status: 'completed', recipients: 2 });
    });

    it('names the field to fix when the input is wrong, and refuses without broadcasts:write', async () => {
      const templateId = await template('mcp_checks');
      const client = await connect();
      await ok(client, 'create_contact', { phone: '+14155550611', tags: 'mcp-checks' });
      const two = await fails(client, 'create_broadcast', { template_id: templateId, variables: { '1': 'a', '2': 'b' }, audience: { tag: 'mcp-checks', list_id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b' } });
      expect(two).toMatchObject({ code: 'validation_failed', errors: { audience: expect.any(Array) } });
      const missing = await fails(client, 'create_broadcast', { template_id: templateId, variables: { '1': 'a' }, audience: { tag: 'mcp-checks' } });
      expect(missing).toMatchObject({ code: 'template_variables_missing', missing: ['2'] });
      const past = await fails(client, 'create_broadcast', { template_id: templateId, variables: { '1': 'a', '2': 'b' }, audience: { tag: 'mcp-checks' }, scheduled_at: '2020-01-01T00:00:00Z' });
      expect(Object.keys(past.errors ?? {})).toEqual(['scheduled_at']);
      const misspelt = await fails(client, 'create_broadcast', { template_id: templateId, variables: { '1': 'a', '2': 'b' }, audience: { tags: 'mcp-checks' } });
      expect(JSON.stringify(misspelt)).toMatch(/tags/);

      const reader = await createToken(t.ctx, { workspaceId: t.workspaceId, name: 'broadcast reader', scopes: ['broadcasts:read'], rateLimit: 1_000_000 });
      const limited = await connect(reader.token);
      expect(await ok(limited, 'list_broadcasts', {})).toHaveProperty('data');
      const refused = await fails(limited, 'create_broadcast', { template_id: templateId, variables: { '1': 'a', '2': 'b' }, audience: { tag: 'mcp-checks' } });
      expect(refused).toMatchObject({ code: 'forbidden', missing_scope: 'broadcasts:write' });
      const mine = await ok(client, 'create_broadcast', { template_id: templateId, variables: { '1': 'a', '2': 'b' }, audience: { tag: 'mcp-checks' } });
      const other = await connect(t.other.token);
      expect(await fails(other, 'get_broadcast', { broadcast_id: mine.id })).toMatchObject({ code: 'not_found' });
      expect(await fails(other, 'send_broadcast', { broadcast_id: mine.id })).toMatchObject({ code: 'not_found' });
      expect((await ok(other, 'list_broadcasts', {})).data).toEqual([]);
    });
  });

  describe('message and template tools', () => {
    it('sends a text message, once per idempotency key', async () => {
      const client = await connect();
      const sent = await ok(client, 'send_text_message', { phone: '+14155550621', message: 'Your table is ready', idempotency_key: 'table-7' });
      expect(sent).toMatchObject({ status: 'delivered', whatsapp_message_id: null, contact_id: expect.any(String) });
      const again = await ok(client, 'send_text_message', { phone: '+14155550621', message: 'Your table is ready', idempotency_key: 'table-7' });
      expect(again.id).toBe(sent.id);
      const messages = (await rest.get(`/api/v1/messages?contact_id=${sent.contact_id as string}`)).json().data as Array<{ id: string; content: { text: string } }>;
      expect(messages.map((m) => [m.id, m.content.text])).toEqual([[sent.id, 'Your table is ready']]);
      const tooLong = await fails(client, 'send_text_message', { phone: '+14155550621', message: 'x'.repeat(4097) });
      expect(JSON.stringify(tooLong)).toMatch(/message/);
    });

    it('lists and reads templates, and sends one with its variables, reporting the missing ones', async () => {
      const id = await template('mcp_receipt', 'Receipt {{1}} for {{2}}');
      const pending = await template('mcp_pending', 'Soon');
      await t.ctx.database.db.updateTable('templates').set({ status: 'PENDING' }).where('id', '=', pending).execute();
      const client = await connect();
      const approved = (await ok(client, 'list_templates', { status: 'APPROVED' })).data as Array<{ id: string; name: string; status: string; languages: string[] }>;
      expect(approved).toContainEqual({ id, name: 'mcp_receipt', category: 'MARKETING', status: 'APPROVED', languages: ['en_US'] });
      expect(approved.map((tpl) => tpl.name)).not.toContain('mcp_pending');
      expect(await ok(client, 'get_template', { template_id: id })).toMatchObject({
        id,
        name: 'mcp_receipt',
        body: 'Receipt {{1}} for {{2}}',
        placeholders: [
          { key: '1', label: 'Body {{1}}' },
          { key: '2', label: 'Body {{2}}' },
        ],
      });

      const sent = await ok(client, 'send_template_message', { phone: '+14155550631', template_id: id, variables: { '1': 'R-1', '2': 'Ana' } });
      expect(sent).toMatchObject({ status: 'delivered', template_id: id, language: 'en_US', contact_id: expect.any(String) });
      const stored = (await rest.get(`/api/v1/messages?contact_id=${sent.contact_id as string}`)).json().data as Array<{ content: unknown }>;
      expect(stored[0]!.content).toEqual({ kind: 'template', name: 'mcp_receipt', language: 'en_US', components: { body: ['R-1', 'Ana'] } });
      expect(await fails(client, 'send_template_message', { phone: '+14155550631', template_id: id, variables: { '1': 'R-2' } })).toMatchObject({
        code: 'template_variables_missing',
        expected_placeholders: ['1', '2'],
        missing: ['2'],
      });
      expect(await fails(client, 'send_template_message', { phone: '+14155550631', template_id: pending })).toMatchObject({ code: 'business_rule', template_status: 'PENDING' });
      expect(await fails(client, 'get_template', { template_id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b' })).toMatchObject({ code: 'not_found' });
    });
  });

  describe('flow, session and contact tools', () => {
    it('drafts a flow, lists and reads it, triggers it once published, and stops the session', async () => {
      const client = await connect();
      const created = await ok(client, 'create_flow', {
        name: 'Agent survey',
        graph: {
          entry: 'ask',
          nodes: [
            { id: 'ask', type: 'send_message', channel: 'whatsapp', content: { text: 'Happy with us?', buttons: [{ id: 'yes', title: 'Yes' }, { id: 'no', title: 'No' }] } },
            { id: 'wait', type: 'wait_for_reply', timeout: { minutes: 10 }, branches: [{ id: 'yes', match: { type: 'button', button_id: 'yes' } }] },
            { id: 'thanks', type: 'send_message', channel: 'whatsapp', content: { text: 'Thanks!' } },
          ],
          edges: [
            { from: 'ask', to: 'wait' },
            { from: 'wait', to: 'thanks', branch: 'yes' },
          ],
        },
      });
      const flow = created.flow as { id: string; status: string };
      expect(flow.status).toBe('draft');
      expect(await fails(client, 'trigger_flow', { flow_id: flow.id, phone: '+14155550641' })).toMatchObject({ code: 'not_found' });
      expect((await rest.post(`/api/v1/flows/${flow.id}/publish`)).statusCode).toBe(200);

      const listed = (await ok(client, 'list_flows', { status: 'active' })).data as Array<{ id: string }>;
      expect(listed.map((f) => f.id)).toContain(flow.id);
      expect(await ok(client, 'get_flow', { flow_id: flow.id })).toMatchObject({ id: flow.id, name: 'Agent survey', status: 'active' });

      const started = await ok(client, 'trigger_flow', { flow_id: flow.id, phone: '+14155550641', context: { visit: 'V-9' } });
      expect(started).toMatchObject({ status: 'started', flow_id: flow.id, flow_name: 'Agent survey' });
      await createTestWorker(t.ctx).drain();
      expect(await ok(client, 'get_session', { session_id: started.id })).toMatchObject({ kind: 'flow', status: 'waiting', current_node: 'wait', context: { visit: 'V-9' } });
      expect(await ok(client, 'trigger_flow', { flow_id: flow.id, phone: '+14155550641' })).toMatchObject({ id: started.id, status: 'already_running' });

      const stopped = await ok(client, 'stop_session', { session_id: started.id, reason: 'agent stopped it' });
      expect(stopped).toMatchObject({ id: started.id, status: 'stopped', end_reason: 'stopped_by_api: agent stopped it' });
      expect((await rest.get(`/api/v1/sessions/${started.id as string}`)).json()).toMatchObject({ status: 'stopped' });
      expect(await fails(client, 'stop_session', { session_id: started.id })).toMatchObject({ code: 'business_rule' });
    });

    it('updates a contact (tags replaced, metadata merged) and lists the tags with their counts', async () => {
      const client = await connect();
      const { contact } = (await ok(client, 'create_contact', { phone: '+14155550651', name: 'Cleo Park', tags: 'lead, newsletter', metadata: { plan: 'free', city: 'Lyon' } })) as { contact: { id: string } };
      const updated = await ok(client, 'update_contact', { contact_id: contact.id, first_name: 'Cleo', email: 'cleo@example.com', tags: ['customer'], metadata: { plan: 'pro', city: '' } });
      expect(updated).toMatchObject({ id: contact.id, email: 'cleo@example.com', tags: ['customer'], metadata: { plan: 'pro' } });
      expect(updated.metadata).not.toHaveProperty('city');
      const rested = await rest.post('/api/v1/actions/get-contact', { contact_id: contact.id });
      expect(rested.json()).toMatchObject({ email: 'cleo@example.com', tags: ['customer'], metadata: { plan: 'pro' } });
      expect(await fails(client, 'update_contact', { phone: '+14155559999', name: 'Nobody' })).toMatchObject({ code: 'not_found' });

      const tags = (await ok(client, 'list_tags', {})).data as Array<{ name: string; contacts_count: number }>;
      const names = tags.map((tag) => tag.name);
      expect(names).toEqual([...names].sort((a, b) => a.localeCompare(b)));
      expect(tags.find((tag) => tag.name === 'customer')).toMatchObject({ contacts_count: 1 });
      expect(tags.find((tag) => tag.name === 'lead')).toMatchObject({ contacts_count: 0 });
    });
  });
});
