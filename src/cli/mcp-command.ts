import { AppError } from '../domain/errors.js';
import { startStdioServer } from '../mcp/stdio-transport.js';
import { createRuntime } from './runtime.js';

/**
 * `nudge mcp`: the MCP tools over stdin/stdout, for an agent that starts Nudge as a
 * subprocess (Claude Desktop, IDE agents). It acts for the API token in
 * NUDGE_API_TOKEN, on the database the other commands use (NUDGE_DATA_DIR or
 * DATABASE_URL). It runs no worker: sessions it starts and messages it queues are
 * carried on by the `nudge start` or `nudge worker` process of that database.
 * stdout is the protocol, so every log line goes to stderr (see runtime.ts).
 */
export async function runMcpCommand(env: Record<string, string | undefined>): Promise<void> {
  const token = env.NUDGE_API_TOKEN?.trim();
  if (!token) {
    throw new AppError('unauthorized', 'nudge mcp needs an API token in NUDGE_API_TOKEN; create one with `nudge token create --name agent`');
  }
  const runtime = await createRuntime(env);
  try {
    const server = await startStdioServer(runtime.ctx, token);
    const stop = () => void server.close();
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    await server.done;
    process.off('SIGTERM', stop);
    process.off('SIGINT', stop);
    runtime.ctx.log.info('MCP client gone; stopping');
  } finally {
    await runtime.close();
  }
}
