import type { IncomingMessage, ServerResponse } from 'node:http';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { Principal } from '../engine/auth-service.js';
import type { Context } from '../engine/context.js';
import { createMcpServer } from './mcp-server.js';

/**
 * Answers one MCP request over streamable HTTP, for a caller the API has already
 * authenticated. Stateless, as the SDK documents it: a new server and transport per
 * request, no session id, no server-to-client stream. Nothing is kept between
 * requests, so any number of `nudge api` processes can serve /mcp behind a load
 * balancer, and every request is authenticated and rate limited like any other.
 * JSON responses rather than SSE: every tool answers once, so a stream adds nothing.
 *
 * `body` is the JSON the HTTP framework has already parsed: the request stream has
 * been consumed and cannot be read again.
 */
export async function handleMcpHttpRequest(ctx: Context, principal: Principal, req: IncomingMessage, res: ServerResponse, body: unknown): Promise<void> {
  const server = createMcpServer(ctx, principal);
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
  res.on('close', () => {
    void transport.close();
    void server.close();
  });
  try {
    await server.connect(transport);
    await transport.handleRequest(req, res, body);
  } catch (error) {
    ctx.log.error({ err: error }, 'MCP request failed');
    if (!res.headersSent) {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32603, message: 'Internal error' }, id: null }));
    }
  }
}

/** A JSON-RPC error answered before any MCP server is involved (wrong method, missing body). */
export function jsonRpcError(res: ServerResponse, status: number, code: number, message: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: null }));
}
