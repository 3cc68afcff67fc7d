import { Type } from 'typebox';
import type { Context } from '../../engine/context.js';
import { receiveInbound } from '../../engine/inbound-service.js';
import * as sessions from '../../engine/session-service.js';
import { authErrors, errorResponses, ok } from '../schemas.js';
import type { App } from '../types.js';

const Page = Type.Object({ data: Type.Array(Type.Object({}, { additionalProperties: true })), next_cursor: Type.Union([Type.String(), Type.Null()]) });
const Any = Type.Object({}, { additionalProperties: true });
const sessionExample = {
  id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a60',
  kind: 'flow',
  definition_id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c',
  version_id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5d',
  contact_id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a61',
  status: 'completed',
  current_node: null,
  wake_at: null,
  expires_at: '2026-05-07T08:44:23.000Z',
  context: { cart_id: '987654321', cart_total: '129.00' },
  event: null,
  enrollment_key: null,
  source: 'api',
  end_reason: 'end_of_graph',
  steps_run: 3,
  created_at: '2026-05-07T08:14:23.000Z',
  updated_at: '2026-05-07T08:19:02.000Z',
  ended_at: '2026-05-07T08:19:02.000Z',
  history: [
    { node_id: 'ask', node_type: 'send_message', visit: 1, outcome: 'queued', detail: { channel: 'whatsapp', to: '+14155550123' }, at: '2026-05-07T08:14:23.000Z' },
    { node_id: 'wait', node_type: 'wait_for_reply', visit: 1, outcome: 'waiting_for_reply', detail: { timeout_at: '2026-05-07T08:34:23.000Z' }, at: '2026-05-07T08:14:23.000Z' },
    { node_id: 'wait', node_type: 'wait_for_reply', visit: 1, outcome: 'replied', detail: { branch: 'yes', text: null, button_id: 'yes' }, at: '2026-05-07T08:19:02.000Z' },
    { node_id: 'link', node_type: 'send_message', visit: 1, outcome: 'queued', detail: { channel: 'whatsapp', to: '+14155550123' }, at: '2026-05-07T08:19:02.000Z' },
  ],
};
const uuid = { maxLength: 36 };

export function registerSessionRoutes(app: App, ctx: Context): void {
  app.get(
    '/api/v1/sessions',
    {
      config: { scope: 'sessions:read' },
      schema: {
        summary: 'List sessions',
        description: 'Sessions of sequences and flows, newest first. Filter by definition, contact, status or kind.',
        tags: ['Sessions'],
        operationId: 'listSessions',
        querystring: Type.Object({
          definition_id: Type.Optional(Type.String(uuid)),
          contact_id: Type.Optional(Type.String(uuid)),
          status: Type.Optional(Type.Union(['running', 'waiting', 'completed', 'stopped', 'expired', 'failed'].map((s) => Type.Literal(s)))),
          kind: Type.Optional(Type.Union([Type.Literal('sequence'), Type.Literal('flow')])),
          cursor: Type.Optional(Type.String({ maxLength: 200 })),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
        }),
        response: { 200: ok(Page, 'A page of sessions', { data: [], next_cursor: null }), ...errorResponses(...authErrors, 422) },
      },
    },
    async (request) => sessions.listSessions(ctx, request.principal!.workspaceId, request.query as never),
  );

  app.get(
    '/api/v1/sessions/:id',
    {
      config: { scope: 'sessions:read' },
      schema: {
        summary: 'Get a session and its history',
        description: 'The session with every node visit in order, what each did, and why each branch was taken.',
        tags: ['Sessions'],
        operationId: 'getSession',
        params: Type.Object({ id: Type.String({ maxLength: 100 }) }),
        response: { 200: ok(Any, 'The session', sessionExample), ...errorResponses(...authErrors, 404) },
      },
    },
    async (request) => sessions.getSession(ctx, request.principal!.workspaceId, (request.params as { id: string }).id),
  );

  app.post(
    '/api/v1/sessions/:id/stop',
    {
      config: { scope: 'sessions:write' },
      schema: {
        summary: 'Stop a session',
        description: 'Ends a running or waiting session now; its queued, unsent messages are cancelled.',
        tags: ['Sessions'],
        operationId: 'stopSession',
        params: Type.Object({ id: Type.String({ maxLength: 100 }) }),
        body: Type.Union([Type.Object({ reason: Type.Optional(Type.String({ maxLength: 500 })) }), Type.Null()], { examples: [{ reason: 'customer asked to stop' }] }),
        response: { 200: ok(Any, 'The stopped session', { ...sessionExample, status: 'stopped', end_reason: 'stopped_by_api: customer asked to stop' }), ...errorResponses(400, ...authErrors, 404, 415, 422) },
      },
    },
    async (request) => sessions.stopSession(ctx, request.principal!.workspaceId, (request.params as { id: string }).id, (request.body as { reason?: string } | undefined)?.reason),
  );

  app.get(
    '/api/v1/messages',
    {
      config: { scope: 'messages:read' },
      schema: {
        summary: 'List messages',
        description: 'Outbound and inbound messages, newest first, including everything the sandbox channel captured.',
        tags: ['Messages'],
        operationId: 'listMessages',
        querystring: Type.Object({
          contact_id: Type.Optional(Type.String(uuid)),
          session_id: Type.Optional(Type.String(uuid)),
          definition_id: Type.Optional(Type.String(uuid)),
          broadcast_id: Type.Optional(Type.String({ ...uuid, description: 'Only the messages of this broadcast' })),
          channel: Type.Optional(Type.Union([Type.Literal('whatsapp'), Type.Literal('sms'), Type.Literal('email')])),
          direction: Type.Optional(Type.Union([Type.Literal('outbound'), Type.Literal('inbound')])),
          status: Type.Optional(Type.String({ maxLength: 20 })),
          cursor: Type.Optional(Type.String({ maxLength: 200 })),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
        }),
        response: { 200: ok(Page, 'A page of messages', { data: [], next_cursor: null }), ...errorResponses(...authErrors, 422) },
      },
    },
    async (request) => sessions.listMessages(ctx, request.principal!.workspaceId, request.query as never),
  );

  app.post(
    '/api/v1/sandbox/inbound',
    {
      config: { scope: 'messages:send' },
      schema: {
        summary: "Play a customer's reply (sandbox)",
        description:
          "Delivers an inbound message as if the customer had sent it, through the same path real providers' webhooks use: " +
          "it is stored, renews the contact's service window and reaches the contact's waiting flow.",
        tags: ['Messages'],
        operationId: 'sandboxInbound',
        body: Type.Object(
          {
            channel: Type.Optional(Type.Union([Type.Literal('whatsapp'), Type.Literal('sms'), Type.Literal('email')], { default: 'whatsapp' })),
            phone: Type.Optional(Type.String({ maxLength: 40 })),
            email: Type.Optional(Type.String({ maxLength: 254 })),
            text: Type.Optional(Type.String({ maxLength: 4096 })),
            button_id: Type.Optional(Type.String({ maxLength: 256 })),
          },
          { examples: [{ channel: 'whatsapp', phone: '+14155550123', button_id: 'yes' }, { channel: 'sms', phone: '+14155550123', text: 'YES' }] },
        ),
        response: {
          201: ok(Type.Object({ id: Type.String(), contact_id: Type.String(), session_id: Type.Union([Type.String(), Type.Null()]) }), 'Received', {
            id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a70',
            contact_id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a61',
            session_id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a60',
          }),
          ...errorResponses(400, ...authErrors, 415, 422),
        },
      },
    },
    async (request, reply) => {
      const body = request.body as { channel?: 'whatsapp' | 'sms' | 'email'; phone?: string; email?: string; text?: string; button_id?: string };
      const outcome = await receiveInbound(ctx, {
        workspaceId: request.principal!.workspaceId,
        channel: body.channel ?? 'whatsapp',
        phone: body.phone,
        email: body.email,
        text: body.text ?? null,
        buttonId: body.button_id ?? null,
        provider: 'sandbox',
      });
      return reply.code(201).send({ id: outcome.messageId, contact_id: outcome.contactId, session_id: outcome.sessionId });
    },
  );
}
