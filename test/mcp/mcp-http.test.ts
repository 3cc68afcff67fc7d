import type { AddressInfo } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createToken } from '../../src/engine/auth-service.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { dialects } from '../support/databases.js';

/**
 * The MCP server over streamable HTTP at /mcp, driven by the SDK's own client against
 * the real app listening on a port: tools are listed with what an agent needs, calls
 * reach the same services as the REST routes (checked through REST), bad input and
 * missing scopes come back as isError results, and the bearer token is required.
 */

const expectedTools = [
  'list_contacts',
  'get_contact',
  'create_contact',
  'update_contact',
  'tag_contact',
  'untag_contact',
  'list_tags',
  'list_templates',
  'get_template',
  'send_text_message',
  'send_template_message',
  'list_broadcasts',
  'get_broadcast',
  'create_broadcast',
  'send_broadcast',
  'schedule_broadcast',
  'cancel_broadcast',
  'list_sequences',
  'get_sequence',
  'create_sequence',
  'trigger_sequence',
  'list_flows',
  'get_flow',
  'create_flow',
  'trigger_flow',
  'list_sessions',
  'get_session',
  'stop_session',
];

const initialize = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'curl', version: '1' } },
};

/** The JSON body of a tool result (success or error). */
function body(result: CallToolResult): Record<string, unknown> {
  const first = result.content[0];
  if (first?.type !== 'text') throw new Error(`expected a text result, got ${JSON.stringify(result)}`);
  return JSON.parse(first.text) as Record<string, unknown>;
}

describe.each(dialects)('MCP over streamable HTTP (%s)', (dialect) => {
  let t: TestApp;
  let endpoint: URL;
  const clients: Client[] = [];

  beforeAll(async () => {
    t = await createTestApp(dialect);
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = t.app.server.address() as AddressInfo;
    endpoint = new URL(`http://127.0.0.1:${port}/mcp`);
  });

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
  });

  afterAll(async () => {
    await t.close();
  });

  async function connect(token = t.token): Promise<Client> {
    const client = new Client({ name: 'nudge-test', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(endpoint, { requestInit: { headers: { authorization: `Bearer ${token}` } } });
    await client.connect(transport);
    clients.push(client);
    return client;
  }

  async function call(client: Client, name: string, args: Record<string, unknown>): Promise<CallToolResult> {
    return (await client.callTool({ name, arguments: args })) as CallToolResult;
  }

  async function publishedSequence(name: string): Promise<string> {
    const created = await t.app.inject({
      method: 'POST',
      url: '/api/v1/sequences',
      headers: t.auth,
      payload: { name, steps: [{ type: 'whatsapp', text: 'Hi {{contact.first_name|there}}' }, { type: 'whatsapp', delay: { days: 1 }, text: 'Day 2' }] },
    });
    expect(created.statusCode, created.body).toBe(201);
    const id = (created.json() as { sequence: { id: string } }).sequence.id;
    const published = await t.app.inject({ method: 'POST', url: `/api/v1/sequences/${id}/publish`, headers: t.auth });
    expect(published.statusCode, published.body).toBe(200);
    return id;
  }

  it('lists every tool with a description an agent can act on and a strict input schema', async () => {
    const client = await connect();
    const { tools } = await client.listTools();
    expect(tools.map((tool) => tool.name).sort()).toEqual([...expectedTools].sort());
    for (const tool of tools) {
      expect(tool.description?.length ?? 0, tool.name).toBeGreaterThan(80);
      expect(tool.description, tool.name).toMatch(/Requires the scope [a-z]+:[a-z]+\.$/);
      expect(tool.inputSchema.type, tool.name).toBe('object');
      expect(tool.inputSchema.additionalProperties, tool.name).toBe(false);
    }
    const byName = new Map(tools.map((tool) => [tool.name, tool]));
    expect(byName.get('create_contact')!.inputSchema.required).toEqual(['phone']);
    expect(byName.get('trigger_sequence')!.inputSchema.required).toEqual(['sequence_id']);
    expect(Object.keys(byName.get('trigger_sequence')!.inputSchema.properties ?? {})).toEqual(['sequence_id', 'contact_id', 'phone', 'context']);
    expect(byName.get('trigger_sequence')!.description).toMatch(/Requires the scope sequences:execute\./);
    expect(byName.get('send_text_message')!.description).toMatch(/SENDS A REAL MESSAGE/);
    expect(byName.get('send_text_message')!.annotations).toMatchObject({ readOnlyHint: false, openWorldHint: true });
    expect(byName.get('list_contacts')!.annotations).toMatchObject({ readOnlyHint: true });
  });

  it('creates and tags a contact through the same services as the REST API', async () => {
    const client = await connect();
    const created = await call(client, 'create_contact', { phone: '+14155550101', name: 'Ana Silva', metadata: { plan: 'pro' } });
    expect(created.isError, JSON.stringify(created)).toBeFalsy();
    const { contact, created: isNew } = body(created) as { contact: { id: string; phone: string; first_name: string }; created: boolean };
    expect(isNew).toBe(true);
    expect(contact).toMatchObject({ phone: '+14155550101', first_name: 'Ana' });
    expect(created.structuredContent).toEqual(body(created));

    const tagged = await call(client, 'tag_contact', { contact_id: contact.id, tag: 'vip' });
    expect(body(tagged)).toEqual({ contact_id: contact.id, tag: 'vip', tags: ['vip'] });

    const read = await t.app.inject({ method: 'POST', url: '/api/v1/actions/get-contact', headers: t.auth, payload: { phone: '+14155550101' } });
    expect(read.json()).toMatchObject({ id: contact.id, name: 'Ana Silva', tags: ['vip'], metadata: { plan: 'pro' } });

    const found = await call(client, 'list_contacts', { tag: 'VIP' });
    expect((body(found) as { data: Array<{ id: string }> }).data.map((c) => c.id)).toEqual([contact.id]);

    const untagged = await call(client, 'untag_contact', { phone: '+14155550101', tag: 'vip' });
    expect(body(untagged)).toMatchObject({ tags: [] });
  });

  it('triggers a published sequence and shows the session it started', async () => {
    const sequenceId = await publishedSequence('Welcome');
    const client = await connect();
    const listed = body(await call(client, 'list_sequences', { status: 'active' })) as { data: Array<{ id: string }> };
    expect(listed.data.map((s) => s.id)).toContain(sequenceId);

    const started = await call(client, 'trigger_sequence', { sequence_id: sequenceId, phone: '+14155550102', context: { order_id: 'ORD-1' } });
    expect(started.isError, JSON.stringify(started)).toBeFalsy();
    const outcome = body(started) as { id: string; status: string; sequence_id: string; sequence_name: string; contact_id: string };
    expect(outcome).toMatchObject({ status: 'started', sequence_id: sequenceId, sequence_name: 'Welcome' });

    const session = await call(client, 'get_session', { session_id: outcome.id });
    expect(session.isError, JSON.stringify(session)).toBeFalsy();
    expect(body(session)).toMatchObject({
      id: outcome.id,
      kind: 'sequence',
      definition_id: sequenceId,
      contact_id: outcome.contact_id,
      status: 'running',
      context: { order_id: 'ORD-1' },
    });

    // The same session through REST: one store, one service.
    const rest = await t.app.inject({ method: 'GET', url: `/api/v1/sessions/${outcome.id}`, headers: t.auth });
    expect(rest.json()).toMatchObject({ id: outcome.id, contact_id: outcome.contact_id });

    const again = body(await call(client, 'trigger_sequence', { sequence_id: sequenceId, contact_id: outcome.contact_id }));
    expect(again).toMatchObject({ id: outcome.id, status: 'already_running' });

    const stopped = body(await call(client, 'stop_session', { session_id: outcome.id, reason: 'test' }));
    expect(stopped).toMatchObject({ id: outcome.id, status: 'stopped' });
  });

  it('creates a sequence as a draft that cannot be triggered until published', async () => {
    const client = await connect();
    const created = await call(client, 'create_sequence', { name: 'Drafted by an agent', steps: [{ type: 'sms', text: 'Hello' }] });
    expect(created.isError, JSON.stringify(created)).toBeFalsy();
    const { sequence } = body(created) as { sequence: { id: string; status: string } };
    expect(sequence.status).toBe('draft');
    const read = body(await call(client, 'get_sequence', { sequence_id: sequence.id }));
    expect(read).toMatchObject({ id: sequence.id, name: 'Drafted by an agent', status: 'draft' });

    const refused = await call(client, 'trigger_sequence', { sequence_id: sequence.id, phone: '+14155550103' });
    expect(refused.isError).toBe(true);
    expect(body(refused)).toMatchObject({ code: 'not_found', errors: { sequence_id: ['Sequence not found or not published'] } });

    const invalid = await call(client, 'create_flow', { name: 'Broken', graph: { nodes: [{ id: 'a', type: 'teleport' }], edges: [] } });
    expect(invalid.isError).toBe(true);
    expect(body(invalid)).toMatchObject({ code: 'validation_failed' });
  });

  it('answers bad input with an isError result that names the field', async () => {
    const client = await connect();
    const badPhone = await call(client, 'create_contact', { phone: 'abc' });
    expect(badPhone.isError).toBe(true);
    const error = body(badPhone) as { code: string; error: string; errors: Record<string, string[]> };
    expect(error.code).toBe('validation_failed');
    expect(error.error).toMatch(/^phone must be a valid phone number/);
    expect(Object.keys(error.errors)).toEqual(['phone']);

    const missing = await call(client, 'trigger_sequence', { phone: '+14155550104' });
    expect(missing.isError).toBe(true);
    expect(missing.content[0]).toMatchObject({ type: 'text', text: expect.stringMatching(/sequence_id/) });

    const misspelt = await call(client, 'create_contact', { phone_number: '+14155550105' });
    expect(misspelt.isError).toBe(true);
    expect(JSON.stringify(misspelt.content)).toMatch(/phone_number/);

    const neither = await call(client, 'trigger_sequence', { sequence_id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b' });
    expect(body(neither)).toMatchObject({ code: 'validation_failed', errors: { contact_id: expect.any(Array), phone: expect.any(Array) } });
  });

  it('refuses a tool the token lacks the scope for, naming the scope, and allows the others', async () => {
    const sequenceId = await publishedSequence('Scoped');
    const limited = await createToken(t.ctx, { workspaceId: t.workspaceId, name: 'read only', scopes: ['sequences:read', 'contacts:read'], rateLimit: 1_000_000 });
    const client = await connect(limited.token);

    const refused = await call(client, 'trigger_sequence', { sequence_id: sequenceId, phone: '+14155550106' });
    expect(refused.isError).toBe(true);
    expect(body(refused)).toMatchObject({ code: 'forbidden', error: 'This token lacks the scope sequences:execute', missing_scope: 'sequences:execute' });
    const sessions = await t.app.inject({ method: 'GET', url: `/api/v1/sessions?definition_id=${sequenceId}`, headers: t.auth });
    expect(sessions.json()).toMatchObject({ data: [] });

    const createRefused = await call(client, 'create_contact', { phone: '+14155550106' });
    expect(body(createRefused)).toMatchObject({ missing_scope: 'contacts:write' });

    const allowed = await call(client, 'get_sequence', { sequence_id: sequenceId });
    expect(allowed.isError).toBeFalsy();
    expect(body(allowed)).toMatchObject({ id: sequenceId, status: 'active' });
  });

  it('keeps each token in its own workspace', async () => {
    const mine = body(await call(await connect(), 'create_contact', { phone: '+14155550107' })) as { contact: { id: string } };
    const theirs = await call(await connect(t.other.token), 'get_contact', { contact_id: mine.contact.id });
    expect(theirs.isError).toBe(true);
    expect(body(theirs)).toMatchObject({ code: 'not_found' });
  });

  it('requires a valid bearer token: 401 without one or with a bad one', async () => {
    const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
    const anonymous = await fetch(endpoint, { method: 'POST', headers, body: JSON.stringify(initialize) });
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toMatch(/^Bearer /);
    expect(await anonymous.json()).toMatchObject({ code: 'unauthorized' });

    const forged = await fetch(endpoint, { method: 'POST', headers: { ...headers, authorization: `Bearer nudge_${'x'.repeat(43)}` }, body: JSON.stringify(initialize) });
    expect(forged.status).toBe(401);

    const client = new Client({ name: 'nudge-test', version: '1.0.0' });
    await expect(client.connect(new StreamableHTTPClientTransport(endpoint))).rejects.toThrow(/401|nauthorized/);
  });

  it('answers a plain JSON-RPC POST with JSON, the rate-limit headers, and 405 to GET', async () => {
    const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${t.token}` };
    const res = await fetch(endpoint, { method: 'POST', headers, body: JSON.stringify(initialize) });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    expect(res.headers.get('x-ratelimit-limit')).toBe('1000000');
    expect(res.headers.get('mcp-session-id')).toBeNull();
    expect(await res.json()).toMatchObject({ jsonrpc: '2.0', id: 1, result: { serverInfo: { name: 'nudge' }, capabilities: { tools: {} } } });

    const get = await fetch(endpoint, { headers });
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');
  });
});
