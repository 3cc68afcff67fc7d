import { Type } from 'typebox';
import { broadcastStatuses, maxListedContacts } from '../../domain/broadcast.js';
import * as broadcasts from '../../engine/broadcast-service.js';
import type { Context } from '../../engine/context.js';
import { authErrors, errorResponses, Nullable, ok, Timestamp } from '../schemas.js';
import type { App } from '../types.js';

/*
 * Broadcasts: one approved WhatsApp template to a tag, a list, a segment or listed
 * contacts, now or at a scheduled time. snake_case, like the action surface. The
 * rules live in engine/broadcast-service.ts.
 */

const IdText = Type.String({ maxLength: 36, description: 'The broadcast id (UUID)' });

const AudienceBody = Type.Object(
  {
    type: Type.Optional(Type.Union([Type.Literal('tag'), Type.Literal('segment'), Type.Literal('list'), Type.Literal('contacts')], { description: 'Optional; must agree with the field given' })),
    tag: Type.Optional(Type.String({ maxLength: 100, description: 'Every contact with this tag (ignoring case)' })),
    segment_id: Type.Optional(Type.String({ maxLength: 36, description: 'Every member of this segment' })),
    list_id: Type.Optional(Type.String({ maxLength: 36, description: 'Every member of this list' })),
    contact_ids: Type.Optional(Type.Array(Type.String({ maxLength: 36 }), { maxItems: maxListedContacts, description: `These contacts (at most ${maxListedContacts})` })),
  },
  {
    additionalProperties: false,
    description:
      'Exactly one of `tag`, `segment_id`, `list_id` or `contact_ids`. A tag, list or segment is read as the broadcast goes out, so contacts who join it before then receive it.',
  },
);

const Variables = Type.Record(Type.String({ maxLength: 20 }), Type.String({ maxLength: 1024 }), {
  description:
    'Placeholder values by key ("1", "2"… for the body, "header_1", "button_<index>"), each rendered per recipient: contact merge tags such as ' +
    '`{{contact.first_name|there}}` or `{{contact.metadata.plan}}` take that contact\u2019s values. Give a fallback after `|`: a value that renders empty fails that recipient\u2019s message.',
});

const ScheduledAt = Type.String({ maxLength: 40, description: 'ISO 8601 date-time with a zone, e.g. 2026-05-07T09:00:00Z; not in the past' });

const CreateBody = Type.Object(
  {
    name: Type.Optional(Type.String({ maxLength: 200, description: 'Shown in lists and in the new-campaign-sent trigger; defaults to the template name' })),
    template_id: Type.String({ maxLength: 36, description: 'An approved template (see GET /api/v1/dropdowns/templates)' }),
    language: Type.Optional(Nullable(Type.String({ maxLength: 20, description: 'Send every recipient this approved language; otherwise each gets their own language, then the workspace\u2019s, then the template\u2019s first' }))),
    variables: Type.Optional(Variables),
    audience: AudienceBody,
    scheduled_at: Type.Optional(Nullable(ScheduledAt)),
  },
  {
    additionalProperties: false,
    examples: [
      {
        name: 'Spring sale',
        template_id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a90',
        variables: { '1': '{{contact.first_name|there}}', '2': 'SPRING20' },
        audience: { tag: 'vip' },
        scheduled_at: '2026-05-07T09:00:00Z',
      },
    ],
  },
);

const PatchBody = Type.Object(
  {
    name: Type.Optional(Type.String({ maxLength: 200 })),
    template_id: Type.Optional(Type.String({ maxLength: 36 })),
    language: Type.Optional(Nullable(Type.String({ maxLength: 20 }))),
    variables: Type.Optional(Variables),
    audience: Type.Optional(AudienceBody),
    scheduled_at: Type.Optional(Nullable(ScheduledAt)),
  },
  { additionalProperties: false, examples: [{ scheduled_at: '2026-05-08T09:00:00Z' }, { audience: { segment_id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a70' } }, { scheduled_at: null }] },
);

const Count = Type.Integer({ minimum: 0 });

const BroadcastSchema = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    name: Type.String(),
    status: Type.String({ description: broadcastStatuses.join(', ') }),
    template_id: Type.String(),
    template_name: Nullable(Type.String()),
    language: Nullable(Type.String({ description: 'The language every recipient gets, or null: each gets the best approved one' })),
    variables: Type.Record(Type.String(), Type.String()),
    audience: Type.Object(
      {
        type: Type.String({ description: 'tag, segment, list or contacts' }),
        tag: Type.Optional(Type.String()),
        segment_id: Type.Optional(Type.String()),
        list_id: Type.Optional(Type.String()),
        contact_ids: Type.Optional(Type.Array(Type.String())),
      },
      { additionalProperties: false },
    ),
    scheduled_at: Nullable(Timestamp),
    started_at: Nullable(Timestamp),
    completed_at: Nullable(Timestamp),
    recipients: Type.Integer({ description: 'Contacts a message was addressed to so far (the skipped ones aside); counts says what became of them' }),
    skipped: Type.Integer({ description: 'Contacts left out: opted out of WhatsApp, or without a phone' }),
    counts: Type.Object(
      {
        queued: Count,
        sent: Count,
        delivered: Count,
        read: Count,
        failed: Count,
        skipped: Count,
        cancelled: Count,
      },
      { description: 'What became of its messages: sent includes delivered and read, delivered includes read. Moves as providers report delivery.' },
    ),
    error: Nullable(Type.String({ description: 'Why it failed' })),
    created_at: Timestamp,
    updated_at: Timestamp,
  },
  { $id: 'Broadcast', title: 'Broadcast' },
);
const broadcastRef = { $ref: 'Broadcast#' } as const;

const example = {
  id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4b10',
  name: 'Spring sale',
  status: 'completed',
  template_id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a90',
  template_name: 'spring_sale',
  language: null,
  variables: { '1': '{{contact.first_name|there}}', '2': 'SPRING20' },
  audience: { type: 'tag', tag: 'vip' },
  scheduled_at: '2026-05-07T09:00:00.000Z',
  started_at: '2026-05-07T09:00:00.412Z',
  completed_at: '2026-05-07T09:00:03.118Z',
  recipients: 1204,
  skipped: 31,
  counts: { queued: 0, sent: 1198, delivered: 1175, read: 802, failed: 6, skipped: 31, cancelled: 0 },
  error: null,
  created_at: '2026-05-06T16:20:00.000Z',
  updated_at: '2026-05-07T09:00:03.118Z',
};

const Params = Type.Object({ id: IdText });
type Id = { id: string };

export async function registerBroadcastRoutes(app: App, ctx: Context): Promise<void> {
  app.addSchema(BroadcastSchema);

  app.post(
    '/api/v1/broadcasts',
    {
      config: { scope: 'broadcasts:write', idempotent: true },
      schema: {
        summary: 'Create a broadcast',
        description:
          'Saves a broadcast of an approved WhatsApp template to an audience: a draft, or scheduled when `scheduled_at` is given (it then goes out at that time). ' +
          'The template must be approved (in `language`, when given), `variables` must fill each of its placeholders and nothing else, and the tag, list, segment or ' +
          'contacts must exist; each problem is a 422 naming the field. Contacts who opted out of WhatsApp, and contacts without a phone, are skipped when it is sent.',
        tags: ['Broadcasts'],
        operationId: 'createBroadcast',
        body: CreateBody,
        response: { 201: ok(broadcastRef, 'The broadcast', { ...example, status: 'scheduled', started_at: null, completed_at: null, recipients: 0, skipped: 0, counts: { queued: 0, sent: 0, delivered: 0, read: 0, failed: 0, skipped: 0, cancelled: 0 } }), ...errorResponses(400, ...authErrors, 409, 413, 415, 422) },
      },
    },
    async (request, reply) => reply.code(201).send(await broadcasts.createBroadcast(ctx, request.principal!.workspaceId, request.body as broadcasts.BroadcastInput)),
  );

  app.get(
    '/api/v1/broadcasts',
    {
      config: { scope: 'broadcasts:read' },
      schema: {
        summary: 'List broadcasts',
        description: 'Broadcasts newest first, with their counts, a page at a time: pass `next_cursor` back as `cursor` until it is null. `status` filters.',
        tags: ['Broadcasts'],
        operationId: 'listBroadcasts',
        querystring: Type.Object(
          {
            status: Type.Optional(Type.Union(broadcastStatuses.map((s) => Type.Literal(s)))),
            cursor: Type.Optional(Type.String({ maxLength: 200 })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: ok(Type.Object({ data: Type.Array(broadcastRef), next_cursor: Nullable(Type.String()) }), 'A page of broadcasts', { data: [example], next_cursor: null }), ...errorResponses(...authErrors, 422) },
      },
    },
    async (request) => broadcasts.listBroadcasts(ctx, request.principal!.workspaceId, request.query as { status?: string; cursor?: string; limit?: number }),
  );

  app.get(
    '/api/v1/broadcasts/:id',
    {
      config: { scope: 'broadcasts:read' },
      schema: {
        summary: 'Get a broadcast',
        description: 'The broadcast with its counts of queued, sent, delivered, read, failed, skipped and cancelled messages, which move as providers report delivery.',
        tags: ['Broadcasts'],
        operationId: 'getBroadcast',
        params: Params,
        response: { 200: ok(broadcastRef, 'The broadcast', example), ...errorResponses(...authErrors, 404) },
      },
    },
    async (request) => broadcasts.getBroadcast(ctx, request.principal!.workspaceId, (request.params as Id).id),
  );

  app.patch(
    '/api/v1/broadcasts/:id',
    {
      config: { scope: 'broadcasts:write' },
      schema: {
        summary: 'Change a broadcast',
        description:
          'Changes a draft or scheduled broadcast, checked as on creation. `scheduled_at` schedules it or moves its time; `scheduled_at: null` makes it a draft again. ' +
          'Once sending has started it is a 422: cancel it instead.',
        tags: ['Broadcasts'],
        operationId: 'updateBroadcast',
        params: Params,
        body: PatchBody,
        response: { 200: ok(broadcastRef, 'The broadcast', example), ...errorResponses(400, ...authErrors, 404, 413, 415, 422) },
      },
    },
    async (request) => broadcasts.updateBroadcast(ctx, request.principal!.workspaceId, (request.params as Id).id, request.body as broadcasts.BroadcastInput),
  );

  app.delete(
    '/api/v1/broadcasts/:id',
    {
      config: { scope: 'broadcasts:write' },
      schema: {
        summary: 'Delete a broadcast',
        description: 'Deletes a broadcast that is not sending; a scheduled one then does not go out. Its messages stay. A sending broadcast must be cancelled first (422).',
        tags: ['Broadcasts'],
        operationId: 'deleteBroadcast',
        params: Params,
        response: { 200: ok(Type.Object({ success: Type.Boolean(), id: Type.String() }), 'Deleted', { success: true, id: example.id }), ...errorResponses(...authErrors, 404, 422) },
      },
    },
    async (request) => {
      const id = (request.params as Id).id;
      await broadcasts.deleteBroadcast(ctx, request.principal!.workspaceId, id);
      return { success: true, id };
    },
  );

  app.post(
    '/api/v1/broadcasts/:id/send',
    {
      config: { scope: 'broadcasts:write' },
      schema: {
        summary: 'Send a broadcast now',
        description:
          'Starts sending a draft or scheduled broadcast at once: it becomes `sending`, and workers queue its messages a chunk at a time under the provider\u2019s rate limit. ' +
          'The template and the audience are checked again first: an audience with no contacts right now is a 422.',
        tags: ['Broadcasts'],
        operationId: 'sendBroadcast',
        params: Params,
        response: { 200: ok(broadcastRef, 'The broadcast, sending', { ...example, status: 'sending', completed_at: null }), ...errorResponses(...authErrors, 404, 422) },
      },
    },
    async (request) => broadcasts.sendBroadcast(ctx, request.principal!.workspaceId, (request.params as Id).id),
  );

  app.post(
    '/api/v1/broadcasts/:id/schedule',
    {
      config: { scope: 'broadcasts:write' },
      schema: {
        summary: 'Schedule a broadcast',
        description: 'Schedules a draft, or moves a scheduled broadcast, to `scheduled_at`; it goes out at that time and not before.',
        tags: ['Broadcasts'],
        operationId: 'scheduleBroadcast',
        params: Params,
        body: Type.Object({ scheduled_at: ScheduledAt }, { additionalProperties: false, examples: [{ scheduled_at: '2026-05-07T09:00:00Z' }] }),
        response: { 200: ok(broadcastRef, 'The broadcast, scheduled', { ...example, status: 'scheduled', started_at: null, completed_at: null }), ...errorResponses(400, ...authErrors, 404, 413, 415, 422) },
      },
    },
    async (request) => broadcasts.scheduleBroadcast(ctx, request.principal!.workspaceId, (request.params as Id).id, request.body as { scheduled_at: string }),
  );

  app.post(
    '/api/v1/broadcasts/:id/cancel',
    {
      config: { scope: 'broadcasts:write' },
      schema: {
        summary: 'Cancel a broadcast',
        description:
          'Cancels a scheduled broadcast, or stops one that is sending: no further contact is queued and its messages still in the queue are cancelled; ' +
          'those already handed to the provider are not recalled. Anything else is a 422.',
        tags: ['Broadcasts'],
        operationId: 'cancelBroadcast',
        params: Params,
        response: { 200: ok(broadcastRef, 'The broadcast, cancelled', { ...example, status: 'cancelled', completed_at: null }), ...errorResponses(...authErrors, 404, 422) },
      },
    },
    async (request) => broadcasts.cancelBroadcast(ctx, request.principal!.workspaceId, (request.params as Id).id),
  );
}
