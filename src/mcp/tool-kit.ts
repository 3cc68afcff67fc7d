import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult, ToolAnnotations } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { AppError } from '../domain/errors.js';
import { grants, type Scope } from '../domain/scopes.js';
import type { Principal } from '../engine/auth-service.js';
import type { Context } from '../engine/context.js';

/**
 * One MCP tool: its name, what an agent reads before calling it, the scope a token
 * needs (the same as the REST route's), its input shape, and the service call it
 * makes. `run` only adapts arguments and picks the workspace; every rule lives in the
 * engine service it calls, exactly as for the routes.
 */
export interface ToolSpec<Shape extends z.ZodRawShape> {
  name: string;
  title: string;
  description: string;
  scope: Scope;
  input: Shape;
  annotations?: ToolAnnotations;
  run(args: z.infer<z.ZodObject<Shape>>, workspaceId: string): Promise<object>;
}

/** A tool with its argument type erased, so tools of different shapes fit in one list. */
export interface Tool {
  name: string;
  title: string;
  description: string;
  scope: Scope;
  inputSchema: z.ZodObject<z.ZodRawShape>;
  annotations?: ToolAnnotations;
  run(args: unknown, workspaceId: string): Promise<object>;
}

/**
 * Declares a tool. The input object is strict: a misspelt argument (`phone_number`)
 * is refused by name instead of being dropped silently, which would leave the agent
 * puzzling over a "phone is required" that it thinks it sent.
 */
export function defineTool<Shape extends z.ZodRawShape>(spec: ToolSpec<Shape>): Tool {
  return {
    name: spec.name,
    title: spec.title,
    description: spec.description,
    scope: spec.scope,
    inputSchema: z.object(spec.input).strict() as unknown as z.ZodObject<z.ZodRawShape>,
    annotations: spec.annotations,
    // The SDK has validated the arguments against inputSchema before this runs.
    run: (args, workspaceId) => spec.run(args as z.infer<z.ZodObject<Shape>>, workspaceId),
  };
}

/** Read-only tools: safe to call freely. */
export const reads: ToolAnnotations = { readOnlyHint: true, openWorldHint: false };

/** A successful result: the JSON as text for any client, and as structuredContent for those that read it. */
export function jsonResult(value: object): CallToolResult {
  return { content: [{ type: 'text', text: JSON.stringify(value) }], structuredContent: value as Record<string, unknown> };
}

/**
 * The public error body, the same shape the REST API answers with
 * (`{error, code, message, errors?, ...extra}`); kept here because mcp/ may not import api/.
 */
export function errorBody(error: AppError): Record<string, unknown> {
  return {
    error: error.message,
    code: error.code,
    message: error.message,
    ...(error.errors ? { errors: error.errors } : {}),
    ...(error.extra ?? {}),
  };
}

/**
 * A failed call as a tool result with `isError: true`, not a protocol error: the agent
 * sees the message and the field errors and can correct its call. Only AppErrors show
 * their message; anything else is logged and reported as an internal error that leaks
 * nothing, as the API's error handler does.
 */
export function errorResult(ctx: Context, tool: string, thrown: unknown): CallToolResult {
  let error: AppError;
  if (thrown instanceof AppError && thrown.status < 500) {
    error = thrown;
  } else {
    ctx.log.error({ err: thrown, tool }, 'MCP tool failed');
    error = thrown instanceof AppError ? thrown : new AppError('internal', 'Internal error');
  }
  const body = errorBody(error);
  return { isError: true, content: [{ type: 'text', text: JSON.stringify(body) }], structuredContent: body };
}

export interface RegisterOptions {
  /**
   * Called before every tool call to get the caller's current principal. The stdio
   * server passes one that looks the token up again, so a token revoked while an
   * agent keeps the process open stops working at once, as it would over HTTP.
   */
  authorize?: () => Promise<Principal>;
}

/**
 * Registers every tool on the server. All tools are listed whatever the token's
 * scopes: the list stays the same for every token (an agent's prompt or cache built
 * on it stays valid), each description names the scope it needs, and calling one
 * without that scope answers an isError result naming the missing scope.
 */
export function registerTools(server: McpServer, ctx: Context, principal: Principal, tools: readonly Tool[], options: RegisterOptions = {}): void {
  for (const tool of tools) {
    server.registerTool(
      tool.name,
      {
        title: tool.title,
        description: `${tool.description} Requires the scope ${tool.scope}.`,
        inputSchema: tool.inputSchema,
        annotations: { title: tool.title, ...tool.annotations },
      },
      async (args) => {
        try {
          const current = options.authorize ? await options.authorize() : principal;
          if (!grants(current.scopes, tool.scope)) {
            throw new AppError('forbidden', `This token lacks the scope ${tool.scope}`, { extra: { missing_scope: tool.scope } });
          }
          return jsonResult(await tool.run(args, current.workspaceId));
        } catch (error) {
          return errorResult(ctx, tool.name, error);
        }
      },
    );
  }
}
