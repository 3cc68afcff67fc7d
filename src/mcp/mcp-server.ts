import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { Principal } from '../engine/auth-service.js';
import type { Context } from '../engine/context.js';
import { broadcastTools } from './broadcast-tools.js';
import { contactTools } from './contact-tools.js';
import { flowTools, sequenceTools } from './definition-tools.js';
import { messageTools, templateTools } from './message-tools.js';
import { sessionTools } from './session-tools.js';
import { registerTools, type RegisterOptions, type Tool } from './tool-kit.js';

const instructions =
  'Nudge sends automated customer messages over WhatsApp, SMS and email. Contacts are keyed by phone (E.164, e.g. +14155550123). ' +
  'Sequences run over days and flows wait for replies; both are created as drafts, published by a person, then started for a contact ' +
  'with trigger_sequence or trigger_flow, which returns a session id to follow with get_session. ' +
  'Broadcasts send one approved template to many contacts (a tag, list, segment or listed contacts): create_broadcast saves a draft, or a scheduled one, and send_broadcast sends it now. ' +
  'send_text_message, send_template_message, send_broadcast, a scheduled broadcast and the trigger tools reach real customers. ' +
  'Errors come back as results with isError: true and a JSON body {error, code, errors?} naming the fields to fix.';

/** Every tool, in the order they are listed. */
export function allTools(ctx: Context): Tool[] {
  return [...contactTools(ctx), ...templateTools(ctx), ...messageTools(ctx), ...broadcastTools(ctx), ...sequenceTools(ctx), ...flowTools(ctx), ...sessionTools(ctx)];
}

/**
 * An MCP server acting for one API token: its tools work in the token's workspace and
 * each checks the token's scopes as the REST route for the same action does. The HTTP
 * transport builds one per request (stateless); stdio builds one per process.
 *
 * @example
 * const server = createMcpServer(ctx, principal);
 * await server.connect(new StdioServerTransport());
 */
export function createMcpServer(ctx: Context, principal: Principal, options: RegisterOptions = {}): McpServer {
  const server = new McpServer({ name: 'nudge', title: 'Nudge', version: '1.0.0' }, { capabilities: { tools: {} }, instructions });
  registerTools(server, ctx, principal, allTools(ctx), options);
  return server;
}
