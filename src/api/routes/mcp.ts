import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Context } from '../../engine/context.js';
import { handleMcpHttpRequest, jsonRpcError } from '../../mcp/http-transport.js';
import type { App } from '../types.js';

/*
 * The MCP server over streamable HTTP at /mcp, for agents that reach Nudge over the
 * network (`nudge mcp` serves the same tools over stdio).
 *
 * Authentication and rate limiting are the app's request guards, as for every other
 * route: the same bearer tokens (or X-API-Key), a 401 without a valid one, and each
 * POST counts against the token's limit. No route-level scope: each tool checks the
 * scope its REST route needs and answers an isError result naming a missing one, so
 * a token with only some scopes can still use the tools it is allowed.
 *
 * Hidden from the OpenAPI document: /mcp speaks JSON-RPC, not the REST conventions
 * the document describes.
 */

/** What an MCP client is told on 401, so it knows to send a bearer token. */
const challenge = 'Bearer realm="nudge", error="invalid_token"';

export async function registerMcpRoutes(app: App, ctx: Context): Promise<void> {
  const onSend = async (_request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    if (reply.statusCode === 401) void reply.header('WWW-Authenticate', challenge);
    return payload;
  };

  app.post('/mcp', { schema: { hide: true }, onSend }, async (request, reply) => {
    // The SDK writes the response to the raw Node response itself.
    reply.hijack();
    // Headers set by the guards (request id, rate limit) live on the Fastify reply,
    // which a hijacked reply never sends: hand them to the raw response.
    for (const [name, value] of Object.entries(reply.getHeaders())) {
      if (value !== undefined) reply.raw.setHeader(name, value);
    }
    if (request.body === undefined || request.body === null) {
      jsonRpcError(reply.raw, 400, -32700, 'Parse error: send one JSON-RPC message (or a batch) as the JSON body');
      return;
    }
    await handleMcpHttpRequest(ctx, request.principal!, request.raw, reply.raw, request.body);
  });

  // Stateless: no server-to-client stream to open (GET) and no session to end (DELETE).
  for (const method of ['GET', 'DELETE'] as const) {
    app.route({
      method,
      url: '/mcp',
      schema: { hide: true },
      onSend,
      handler: async (_request, reply) => {
        reply.hijack();
        jsonRpcError(reply.raw, 405, -32000, `Method not allowed: this MCP server is stateless; send JSON-RPC messages with POST`, { allow: 'POST' });
      },
    });
  }
}
