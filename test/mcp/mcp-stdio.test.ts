import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createToken, createWorkspace, revokeToken } from '../../src/engine/auth-service.js';
import { addTag, createOrUpsertContact, getContact } from '../../src/engine/contact-service.js';
import { getBroadcast } from '../../src/engine/broadcast-service.js';
import { createTemplate } from '../../src/engine/template-service.js';
import { createTestContext, type TestContext } from '../support/app.js';
import { dialects } from '../support/databases.js';
import { startNudge } from '../support/processes.js';

/**
 * `nudge mcp` as an agent runs it: the real CLI spawned from source, speaking MCP on
 * its stdin/stdout to the SDK's stdio client, on a database this test also opens.
 */

const root = fileURLToPath(new URL('../..', import.meta.url));
const entry = fileURLToPath(new URL('../support/nudge-cli.ts', import.meta.url));

function text(result: CallToolResult): string {
  const first = result.content[0];
  if (first?.type !== 'text') throw new Error(`expected a text result, got ${JSON.stringify(result)}`);
  return first.text;
}

function processGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch {
    return true;
  }
}

describe.each(dialects)('nudge mcp over stdio (%s)', (dialect) => {
  let ctx: TestContext;
  let workspaceId: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    ctx = await createTestContext(dialect);
    workspaceId = (await createWorkspace(ctx, 'Acme')).id;
    env = {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      NUDGE_DATA_DIR: ctx.database.dataDir,
      ...(ctx.database.databaseUrl ? { DATABASE_URL: ctx.database.databaseUrl } : {}),
      // info: the start-up line is logged, and must go to stderr, never into the protocol on stdout.
      LOG_LEVEL: 'info',
    };
  });

  afterAll(async () => {
    await ctx.database.close();
  });

  it('serves the tools for the token in NUDGE_API_TOKEN and exits when the client closes', async () => {
    const token = await createToken(ctx, { workspaceId, name: 'agent', scopes: ['contacts:*'] });
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: ['--import', 'tsx', entry, 'mcp'],
      cwd: root,
      env: { ...env, NUDGE_API_TOKEN: token.token },
      stderr: 'pipe',
    });
    let stderr = '';
    transport.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const client = new Client({ name: 'nudge-test', version: '1.0.0' });
    const protocolErrors: Error[] = [];
    client.onerror = (error) => protocolErrors.push(error);
    await client.connect(transport);
    const pid = transport.pid!;
    try {
      const { tools } = await client.listTools();
      expect(tools.map((tool) => tool.name)).toEqual(expect.arrayContaining(['create_contact', 'get_contact', 'trigger_sequence', 'get_session']));

      const created = (await client.callTool({ name: 'create_contact', arguments: { phone: '+14155550199', name: 'Bo Diaz', tags: 'stdio' } })) as CallToolResult;
      expect(created.isError, text(created)).toBeFalsy();
      const { contact } = JSON.parse(text(created)) as { contact: { id: string } };

      const read = (await client.callTool({ name: 'get_contact', arguments: { contact_id: contact.id } })) as CallToolResult;
      expect(JSON.parse(text(read))).toMatchObject({ id: contact.id, phone: '+14155550199', first_name: 'Bo', tags: ['stdio'] });

      // Written to the database every other process uses.
      expect(await getContact(ctx, workspaceId, { phone: '+14155550199' })).toMatchObject({ id: contact.id, name: 'Bo Diaz' });

      const refused = (await client.callTool({ name: 'list_sequences', arguments: {} })) as CallToolResult;
      expect(refused.isError).toBe(true);
      expect(JSON.parse(text(refused))).toMatchObject({ code: 'forbidden', missing_scope: 'sequences:read' });

      // Revoking the token stops the running process from acting for it.
      await revokeToken(ctx, token.id);
      const revoked = (await client.callTool({ name: 'get_contact', arguments: { contact_id: contact.id } })) as CallToolResult;
      expect(revoked.isError).toBe(true);
      expect(JSON.parse(text(revoked))).toMatchObject({ code: 'unauthorized' });
    } finally {
      // The client closes our stdin and waits 2 s for the process to exit by itself before it
      // sends SIGTERM, and does not say which happened: the piped tests below prove the exit
      // on end of input (status 0, which a signalled process does not have), without a clock.
      await client.close();
    }
    expect(processGone(pid)).toBe(true);
    expect(protocolErrors).toEqual([]);
    expect(stderr).toMatch(/MCP server on stdio/);
    // It stopped on its own clean path (a process that merely ran out of work would exit without it).
    expect(stderr).toMatch(/MCP client gone; stopping/);
  });

  it('answers every call of piped input before it exits', async () => {
    const token = await createToken(ctx, { workspaceId, name: 'script', scopes: ['contacts:write'] });
    const child = spawn(process.execPath, ['--import', 'tsx', entry, 'mcp'], { cwd: root, env: { ...env, NUDGE_API_TOKEN: token.token }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const messages = [
      { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'script', version: '1' } } },
      { jsonrpc: '2.0', method: 'notifications/initialized' },
      { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'create_contact', arguments: { phone: '+14155550188' } } },
    ];
    // All at once, then end of input: the call is still running when stdin ends.
    child.stdin.end(messages.map((m) => `${JSON.stringify(m)}\n`).join(''));
    expect(await exited).toBe(0);
    const responses = stdout.trim().split('\n').map((line) => JSON.parse(line) as { id: number; result: CallToolResult });
    expect(responses.map((r) => r.id)).toEqual([1, 2]);
    expect(responses[1]!.result.isError).toBeFalsy();
    expect(await getContact(ctx, workspaceId, { phone: '+14155550188' })).toMatchObject({ phone: '+14155550188' });
  });

  it('creates a broadcast draft for an agent on stdio, in the database the API uses', async () => {
    const template = await createTemplate(ctx, workspaceId, { name: 'stdio_news', language: 'en', category: 'MARKETING', body: 'News for {{1}}' });
    const { contact } = await createOrUpsertContact(ctx, workspaceId, { phone: '+14155550177' });
    await addTag(ctx, workspaceId, { contact_id: contact.id, tag: 'stdio-news' });
    const token = await createToken(ctx, { workspaceId, name: 'broadcaster', scopes: ['broadcasts:*'] });
    const child = spawn(process.execPath, ['--import', 'tsx', entry, 'mcp'], { cwd: root, env: { ...env, NUDGE_API_TOKEN: token.token }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const args = { name: 'From stdio', template_id: template.id, variables: { '1': '{{contact.first_name|friend}}' }, audience: { tag: 'stdio-news' } };
    child.stdin.end(
      [
        { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'script', version: '1' } } },
        { jsonrpc: '2.0', method: 'notifications/initialized' },
        { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'create_broadcast', arguments: args } },
      ]
        .map((m) => `${JSON.stringify(m)}\n`)
        .join(''),
    );
    expect(await exited).toBe(0);
    const responses = stdout.trim().split('\n').map((line) => JSON.parse(line) as { id: number; result: CallToolResult });
    expect(responses.map((r) => r.id)).toEqual([1, 2]);
    const created = JSON.parse(text(responses[1]!.result)) as { id: string; status: string };
    expect(created).toMatchObject({ status: 'draft' });
    expect(await getBroadcast(ctx, workspaceId, created.id)).toMatchObject({ name: 'From stdio', status: 'draft', audience: { type: 'tag', tag: 'stdio-news' } });
  });

  it('refuses to start without a valid token, saying why on stderr', async () => {
    const missing = startNudge(['mcp'], env);
    expect(await missing.exited).toBe(2);
    expect(missing.output.join('')).toMatch(/NUDGE_API_TOKEN/);

    const bad = startNudge(['mcp'], { ...env, NUDGE_API_TOKEN: `nudge_${'x'.repeat(43)}` });
    expect(await bad.exited).toBe(2);
    expect(bad.output.join('')).toMatch(/unknown or revoked/);
  });
});
