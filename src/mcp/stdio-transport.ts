import type { Readable, Writable } from 'node:stream';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { AppError } from '../domain/errors.js';
import { authenticateToken, type Principal } from '../engine/auth-service.js';
import type { Context } from '../engine/context.js';
import { createMcpServer } from './mcp-server.js';

export interface StdioServer {
  /** Settles when the client has gone (stdin ended) or close() was called. */
  readonly done: Promise<void>;
  close(): Promise<void>;
}

const revoked = 'The API token in NUDGE_API_TOKEN is unknown or revoked; create one with `nudge token create --name agent`';

/**
 * Serves MCP over stdin/stdout for the token's workspace (`nudge mcp`). The token is
 * checked as the REST API checks a bearer token, once at start (a bad token fails
 * before anything is served) and again on every tool call, so revoking the token
 * stops a long-running agent at once. stdout carries only the protocol: logs must go
 * to stderr.
 */
export async function startStdioServer(ctx: Context, token: string, io: { stdin?: Readable; stdout?: Writable } = {}): Promise<StdioServer> {
  const principal = await authenticateToken(ctx, token);
  if (!principal) throw new AppError('unauthorized', revoked);
  const authorize = async (): Promise<Principal> => {
    const current = await authenticateToken(ctx, token);
    if (!current) throw new AppError('unauthorized', revoked);
    return current;
  };
  const stdin = io.stdin ?? process.stdin;
  const server = createMcpServer(ctx, principal, { authorize });
  const transport = new StdioServerTransport(stdin, io.stdout ?? process.stdout);

  let finish: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (finish = resolve));
  let closing: Promise<void> | null = null;
  const close = () => (closing ??= server.close().finally(finish));
  transport.onclose = () => finish();
  await server.connect(transport);

  // The SDK's stdio transport does not notice the end of its input. A client closes
  // the connection by closing our stdin, and the process must then exit; but input
  // piped from a file (`nudge mcp < calls.jsonl`) ends while its last calls still run,
  // so close only once every request read has been answered.
  let pending = 0;
  let inputEnded = false;
  const closeWhenIdle = () => {
    if (inputEnded && pending === 0) void close();
  };
  const receive = transport.onmessage;
  transport.onmessage = (message: JSONRPCMessage) => {
    if ('method' in message && 'id' in message) pending++;
    receive?.(message);
  };
  const send = transport.send.bind(transport);
  transport.send = async (message: JSONRPCMessage) => {
    await send(message);
    if (!('method' in message) && 'id' in message) {
      pending = Math.max(0, pending - 1);
      closeWhenIdle();
    }
  };
  const onEnd = () => {
    inputEnded = true;
    closeWhenIdle();
  };
  stdin.once('end', onEnd);
  stdin.once('close', onEnd);

  ctx.log.info({ workspace: principal.workspaceId, token: principal.tokenId }, 'MCP server on stdio');
  return { done, close };
}
