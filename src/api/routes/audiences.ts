import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type, type TSchema } from 'typebox';
import * as audiences from '../../engine/audience-service.js';
import type { Context } from '../../engine/context.js';
import * as subscribers from '../../engine/subscriber-service.js';
import { authErrors, errorResponses, ok } from '../schemas.js';
import type { App } from '../types.js';

/*
 * Subscribers, events, lists and segments: the camelCase surface of event-driven
 * sequences. A subscriber is a contact; every rule lives in
 * engine/subscriber-service.ts and engine/audience-service.ts.
 */

const Loose = (description: string) => Type.Object({}, { additionalProperties: true, description });
const Id = '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b';
const ListId = '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a60';
const SegmentId = '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a61';
const SequenceId = '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a62';

const subscriberExample = {
  id: Id,
  email: 'ana@example.com',
  externalId: 'user_1042',
  firstName: 'Ana',
  lastName: 'Silva',
  phone: '+14155550123',
  status: 'active',
  tags: ['trial'],
  lists: [ListId],
  customAttributes: { plan: 'pro' },
  createdAt: '2026-05-01T10:00:00.000Z',
  updatedAt: '2026-05-07T08:14:23.000Z',
};
const listExample = { id: ListId, name: 'Newsletter', description: null, subscriberCount: 1280, createdAt: '2026-05-01T10:00:00.000Z', updatedAt: '2026-05-01T10:00:00.000Z' };
const segmentFilterExample = {
  match: 'all',
  conditions: [
    { type: 'tag', operator: 'has', tag: 'customer' },
    { type: 'event', eventName: 'order.placed', operator: 'gte', count: 2, withinDays: 30 },
    { match: 'any', conditions: [{ type: 'attribute', field: 'attributes.plan', operator: 'equals', value: 'pro' }, { type: 'list', operator: 'in', listId: ListId }] },
  ],
};
const segmentExample = { id: SegmentId, name: 'Repeat buyers', description: null, filter: segmentFilterExample, subscriberCount: 312, createdAt: '2026-05-01T10:00:00.000Z', updatedAt: '2026-05-01T10:00:00.000Z' };
const pageExample = { data: [{ id: Id, email: 'ana@example.com', phone: null, firstName: 'Ana', lastName: null, joinedAt: '2026-05-01T10:00:00.000Z' }], nextCursor: null };

const Subscriber = Loose('A subscriber: the contact as this API shows it (camelCase, email first)');
const EmailParams = Type.Object({ email: Type.String({ minLength: 3, maxLength: 254, description: 'The subscriber’s email address (URL-encoded)' }) });
const IdParams = Type.Object({ id: Type.String({ maxLength: 100 }) });
const ListParams = Type.Object({ listId: Type.String({ maxLength: 100 }) });
const PageQuery = Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })), cursor: Type.Optional(Type.String({ maxLength: 200 })) });

const SubscriberBody = Type.Object(
  {
    email: Type.Optional(Type.String({ maxLength: 254 })),
    externalId: Type.Optional(Type.Union([Type.String({ maxLength: 200 }), Type.Null()])),
    firstName: Type.Optional(Type.Union([Type.String({ maxLength: 200 }), Type.Null()])),
    lastName: Type.Optional(Type.Union([Type.String({ maxLength: 200 }), Type.Null()])),
    phone: Type.Optional(Type.Union([Type.String({ maxLength: 40 }), Type.Null()])),
    customAttributes: Type.Optional(Type.Object({}, { additionalProperties: true, description: 'Free attributes; merged into the stored ones (a key set to "" or null is removed)' })),
    tags: Type.Optional(Type.Array(Type.String({ maxLength: 100 }), { maxItems: 100 })),
    listIds: Type.Optional(Type.Array(Type.String({ maxLength: 100 }), { maxItems: 100 })),
    status: Type.Optional(Type.Union([Type.Literal('active'), Type.Literal('unsubscribed')])),
    duplicateStrategy: Type.Optional(Type.Union([Type.Literal('skip'), Type.Literal('merge'), Type.Literal('overwrite')], { description: 'What to do when the email exists: skip, merge (default) or overwrite' })),
  },
  { additionalProperties: true },
);

const EventItem = Type.Object(
  {
    email: Type.Optional(Type.String({ maxLength: 254, description: 'The subscriber; created when new' })),
    externalId: Type.Optional(Type.String({ maxLength: 200, description: 'Your id of the subscriber (instead of, or beside, email)' })),
    event: Type.String({ minLength: 1, maxLength: 200, description: 'The event name, e.g. order.placed' }),
    properties: Type.Optional(Type.Object({}, { additionalProperties: true, description: 'What happened; available in sequence emails as {{event.*}}' })),
    customAttributes: Type.Optional(Type.Object({}, { additionalProperties: true, description: 'Attributes merged into the subscriber' })),
    occurredAt: Type.Optional(Type.Union([Type.String({ maxLength: 40 }), Type.Number()], { description: 'When it happened: ISO 8601, or Unix seconds or milliseconds; now when absent. `time` and `timestamp` are accepted as other names for it. At most 5 minutes ahead of the server clock.' })),
  },
  { additionalProperties: true },
);
const eventExample = { email: 'user@example.com', event: 'weather.wind_alert', properties: { city: 'Tel Aviv', alert: { maxSpeed: 75 }, duration: { hours: 6 } } };
const trackedExample = { eventId: Id, subscriberId: Id, subscriberCreated: true, enrollments: [{ sequenceId: SequenceId, sequenceName: 'Wind Alert Follow-up', status: 'enrolled', sessionId: Id }], stoppedSessions: 0 };

const MembershipBody = Type.Object(
  {
    emails: Type.Optional(Type.Array(Type.String({ maxLength: 254 }), { maxItems: 1000 })),
    subscriberIds: Type.Optional(Type.Array(Type.String({ maxLength: 100 }), { maxItems: 1000 })),
  },
  { additionalProperties: true },
);
const NamedBody = (withFilter: boolean, required: boolean) =>
  Type.Object(
    {
      name: required ? Type.String({ minLength: 1, maxLength: 200 }) : Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
      description: Type.Optional(Type.Union([Type.String({ maxLength: 2000 }), Type.Null()])),
      ...(withFilter ? { filter: required ? Type.Object({}, { additionalProperties: true, description: 'Conditions combined with match all/any; groups nest' }) : Type.Optional(Type.Object({}, { additionalProperties: true })) } : {}),
    },
    { additionalProperties: true },
  );

interface RouteSpec {
  method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
  url: string;
  scope: string;
  summary: string;
  description: string;
  tag: string;
  operationId: string;
  params?: TSchema;
  query?: TSchema;
  body?: TSchema;
  bodyExample?: unknown;
  status?: number;
  response: TSchema;
  example: unknown;
  errors: number[];
  idempotent?: boolean;
  handler: (request: { params: Record<string, string>; query: Record<string, unknown>; body: Record<string, unknown>; workspaceId: string }) => Promise<unknown>;
}

function route(app: App, spec: RouteSpec): void {
  app.route({
    method: spec.method,
    url: spec.url,
    config: { scope: spec.scope, ...(spec.idempotent ? { idempotent: true } : {}) },
    schema: {
      summary: spec.summary,
      description: spec.description,
      tags: [spec.tag],
      operationId: spec.operationId,
      ...(spec.params ? { params: spec.params } : {}),
      ...(spec.query ? { querystring: spec.query } : {}),
      ...(spec.body ? { body: { ...spec.body, ...(spec.bodyExample ? { examples: [spec.bodyExample] } : {}) } } : {}),
      response: { [spec.status ?? 200]: ok(spec.response, spec.summary, spec.example), ...errorResponses(...spec.errors) },
    },
    handler: async (request: FastifyRequest, reply: FastifyReply) => {
      const result = await spec.handler({
        params: (request.params ?? {}) as Record<string, string>,
        query: (request.query ?? {}) as Record<string, unknown>,
        body: (request.body ?? {}) as Record<string, unknown>,
        workspaceId: request.principal!.workspaceId,
      });
      return reply.code(spec.status ?? 200).send(result);
    },
  } as never);
}

const envelope = (fields: Record<string, TSchema>) => Type.Object({ success: Type.Boolean(), ...fields }, { additionalProperties: true });

export function registerAudienceRoutes(app: App, ctx: Context): void {
  // Subscribers
  app.post(
    '/api/v1/subscribers',
    {
      config: { scope: 'contacts:write', idempotent: true },
      schema: {
        summary: 'Create or update a subscriber',
        description:
          'Creates the subscriber with this email (201), or applies `duplicateStrategy` to the existing one (200): `skip` leaves it unchanged, `merge` (the default) overwrites the given fields, merges custom attributes and adds tags and lists, `overwrite` replaces fields, attributes and tags with what is given. New subscribers and new tags or lists start matching sequences in the same transaction.',
        tags: ['Subscribers'],
        operationId: 'createSubscriber',
        body: { ...SubscriberBody, examples: [{ email: 'ana@example.com', firstName: 'Ana', tags: ['trial'], customAttributes: { plan: 'pro' }, duplicateStrategy: 'merge' }] },
        response: {
          200: ok(envelope({ created: Type.Boolean(), skipped: Type.Boolean(), subscriber: Subscriber }), 'The existing subscriber, merged, overwritten or skipped', { success: true, created: false, skipped: false, subscriber: subscriberExample }),
          201: ok(envelope({ created: Type.Boolean(), skipped: Type.Boolean(), subscriber: Subscriber }), 'The new subscriber', { success: true, created: true, skipped: false, subscriber: subscriberExample }),
          ...errorResponses(400, ...authErrors, 409, 415, 422),
        },
      },
    },
    async (request, reply) => {
      const result = await subscribers.createSubscriber(ctx, request.principal!.workspaceId, request.body as subscribers.SubscriberInput);
      return reply.code(result.created ? 201 : 200).send({ success: true, ...result });
    },
  );

  route(app, {
    method: 'GET', url: '/api/v1/subscribers/:email', scope: 'contacts:read', tag: 'Subscribers', operationId: 'getSubscriber',
    summary: 'Get a subscriber', description: 'The subscriber with this email, with tags, lists and custom attributes.',
    params: EmailParams, response: envelope({ subscriber: Subscriber }), example: { success: true, subscriber: subscriberExample }, errors: [...authErrors, 404],
    handler: async (r) => ({ success: true, subscriber: await subscribers.getSubscriber(ctx, r.workspaceId, r.params.email!) }),
  });
  route(app, {
    method: 'PATCH', url: '/api/v1/subscribers/:email', scope: 'contacts:write', tag: 'Subscribers', operationId: 'updateSubscriber',
    summary: 'Update a subscriber',
    description: 'Given fields overwrite (null clears), custom attributes merge (a key set to "" or null is removed), `tags` replaces the tags, `status: "unsubscribed"` unsubscribes from email. Tag changes start and stop sequences in the same transaction.',
    params: EmailParams, body: SubscriberBody, bodyExample: { firstName: 'Ana', customAttributes: { plan: 'enterprise' } },
    response: envelope({ subscriber: Subscriber }), example: { success: true, subscriber: subscriberExample }, errors: [400, ...authErrors, 404, 415, 422],
    handler: async (r) => ({ success: true, subscriber: await subscribers.updateSubscriber(ctx, r.workspaceId, r.params.email!, r.body) }),
  });
  route(app, {
    method: 'DELETE', url: '/api/v1/subscribers/:email', scope: 'contacts:write', tag: 'Subscribers', operationId: 'deleteSubscriber',
    summary: 'Delete a subscriber',
    description: 'Deletes the subscriber: running sessions stop (unsent messages are cancelled); tags, list and segment memberships and events are removed. Sent-message history is kept.',
    params: EmailParams, response: envelope({ id: Type.String() }), example: { success: true, id: Id }, errors: [...authErrors, 404],
    handler: async (r) => ({ success: true, ...(await subscribers.deleteSubscriber(ctx, r.workspaceId, r.params.email!)) }),
  });
  route(app, {
    method: 'POST', url: '/api/v1/subscribers/tags', scope: 'contacts:write', tag: 'Subscribers', operationId: 'tagSubscriber',
    summary: 'Add or remove tags of a subscriber',
    description: 'Adds the tags (creating the subscriber when new), or removes them with `action: "remove"`. Adding a tag starts tag_added sequences and stops runs whose stop condition is has_tag, in one transaction.',
    body: Type.Object(
      {
        email: Type.String({ maxLength: 254 }),
        tags: Type.Optional(Type.Array(Type.String({ maxLength: 100 }), { maxItems: 100 })),
        tag: Type.Optional(Type.String({ maxLength: 100 })),
        action: Type.Optional(Type.Union([Type.Literal('add'), Type.Literal('remove')])),
      },
      { additionalProperties: true },
    ),
    bodyExample: { email: 'ana@example.com', tags: ['customer'] },
    response: envelope({ subscriber: Subscriber }), example: { success: true, subscriber: { ...subscriberExample, tags: ['customer', 'trial'] } }, errors: [400, ...authErrors, 404, 415, 422],
    handler: async (r) => ({ success: true, subscriber: await subscribers.changeSubscriberTags(ctx, r.workspaceId, r.body) }),
  });

  // Events
  route(app, {
    method: 'POST', url: '/api/v1/subscribers/events', scope: 'contacts:write', tag: 'Events', operationId: 'trackEvent', idempotent: true,
    summary: 'Record an event',
    description:
      'Records what a subscriber did (created when the email or externalId is new) and, in the same transaction, starts every active sequence whose trigger it matches (event_received, frequency), stops runs whose stop condition is this event, and updates segments. The properties are stored on each run it starts, as `{{event.*}}` merge tags.',
    body: EventItem, bodyExample: eventExample,
    response: envelope({ eventId: Type.String(), subscriberId: Type.String(), subscriberCreated: Type.Boolean(), enrollments: Type.Array(Loose('A sequence the event started, or why not')), stoppedSessions: Type.Integer() }),
    example: { success: true, ...trackedExample }, errors: [400, ...authErrors, 404, 409, 415, 422],
    handler: async (r) => ({ success: true, ...(await subscribers.trackEvent(ctx, r.workspaceId, r.body)) }),
  });
  route(app, {
    method: 'POST', url: '/api/v1/subscribers/events/bulk', scope: 'contacts:write', tag: 'Events', operationId: 'trackEvents', idempotent: true,
    summary: 'Record many events',
    description: 'Up to 1,000 events in one transaction: all are recorded with their effects, or, when any is invalid, none (the error names each bad field as events[i].field).',
    // Items are checked by the service, which names every bad one (events[i].field) at once.
    body: Type.Object({ events: Type.Array(Type.Object({}, { additionalProperties: true, description: 'An event, as POST /api/v1/subscribers/events takes it' }), { minItems: 1, maxItems: 1000 }) }, { additionalProperties: true }),
    bodyExample: { events: [eventExample, { email: 'ben@example.com', event: 'order.placed', properties: { order: { id: 'A-1001', total: 42 } } }] },
    response: envelope({ processed: Type.Integer(), results: Type.Array(Loose('The outcome of one event, in request order')) }),
    example: { success: true, processed: 1, results: [trackedExample] }, errors: [400, ...authErrors, 404, 409, 413, 415, 422],
    handler: async (r) => {
      const results = await subscribers.trackEvents(ctx, r.workspaceId, r.body);
      return { success: true, processed: results.length, results };
    },
  });

  // Lists
  route(app, {
    method: 'POST', url: '/api/v1/lists', scope: 'contacts:write', tag: 'Lists', operationId: 'createList', status: 201, idempotent: true,
    summary: 'Create a list', description: 'A named list of subscribers. Adding a subscriber to it starts contact_added sequences that name it.',
    body: NamedBody(false, true), bodyExample: { name: 'Newsletter' },
    response: envelope({ list: Loose('A list') }), example: { success: true, list: { ...listExample, subscriberCount: 0 } }, errors: [400, ...authErrors, 409, 415, 422],
    handler: async (r) => ({ success: true, list: await audiences.createList(ctx, r.workspaceId, r.body) }),
  });
  route(app, {
    method: 'GET', url: '/api/v1/lists', scope: 'contacts:read', tag: 'Lists', operationId: 'listLists',
    summary: 'List lists', description: 'Every list of the workspace with its subscriber count.',
    response: envelope({ lists: Type.Array(Loose('A list')) }), example: { success: true, lists: [listExample] }, errors: [...authErrors],
    handler: async (r) => ({ success: true, lists: await audiences.listLists(ctx, r.workspaceId) }),
  });
  route(app, {
    method: 'GET', url: '/api/v1/lists/:listId', scope: 'contacts:read', tag: 'Lists', operationId: 'getList',
    summary: 'Get a list', description: 'The list with its subscriber count.',
    params: ListParams, response: envelope({ list: Loose('A list') }), example: { success: true, list: listExample }, errors: [...authErrors, 404],
    handler: async (r) => ({ success: true, list: await audiences.getList(ctx, r.workspaceId, r.params.listId!) }),
  });
  route(app, {
    method: 'PATCH', url: '/api/v1/lists/:listId', scope: 'contacts:write', tag: 'Lists', operationId: 'updateList',
    summary: 'Rename a list', description: 'Changes the name or description.',
    params: ListParams, body: NamedBody(false, false), bodyExample: { name: 'Weekly newsletter' },
    response: envelope({ list: Loose('A list') }), example: { success: true, list: listExample }, errors: [400, ...authErrors, 404, 415, 422],
    handler: async (r) => ({ success: true, list: await audiences.updateList(ctx, r.workspaceId, r.params.listId!, r.body) }),
  });
  route(app, {
    method: 'DELETE', url: '/api/v1/lists/:listId', scope: 'contacts:write', tag: 'Lists', operationId: 'deleteList',
    summary: 'Delete a list', description: 'Deletes the list and its memberships (the subscribers stay).',
    params: ListParams, response: envelope({ id: Type.String() }), example: { success: true, id: ListId }, errors: [...authErrors, 404],
    handler: async (r) => {
      await audiences.deleteList(ctx, r.workspaceId, r.params.listId!);
      return { success: true, id: r.params.listId };
    },
  });
  route(app, {
    method: 'POST', url: '/api/v1/lists/:listId/subscribers', scope: 'contacts:write', tag: 'Lists', operationId: 'addListSubscribers',
    summary: 'Add subscribers to a list',
    description: 'Adds subscribers by email (created when new) or id, up to 1,000 per call. Each one added starts the contact_added sequences of this list and stops runs whose stop condition is added_to_list, in one transaction.',
    params: ListParams, body: MembershipBody, bodyExample: { emails: ['ana@example.com', 'ben@example.com'] },
    response: envelope({ added: Type.Integer(), results: Type.Array(Loose('The outcome for one subscriber')), enrollments: Type.Array(Loose('A sequence started')) }),
    example: { success: true, added: 1, results: [{ email: 'ana@example.com', subscriberId: Id, status: 'added' }], enrollments: [] }, errors: [400, ...authErrors, 404, 415, 422],
    handler: async (r) => ({ success: true, ...(await audiences.addListMembers(ctx, r.workspaceId, r.params.listId!, r.body)) }),
  });
  route(app, {
    method: 'POST', url: '/api/v1/lists/:listId/subscribers/remove', scope: 'contacts:write', tag: 'Lists', operationId: 'removeListSubscribers',
    summary: 'Remove subscribers from a list',
    description: 'Removes subscribers by email or id. Runs whose stop condition is removed_from_list for this list stop in the same transaction.',
    params: ListParams, body: MembershipBody, bodyExample: { emails: ['ana@example.com'] },
    response: envelope({ removed: Type.Integer(), results: Type.Array(Loose('The outcome for one subscriber')) }),
    example: { success: true, removed: 1, results: [{ email: 'ana@example.com', subscriberId: Id, status: 'removed' }] }, errors: [400, ...authErrors, 404, 415, 422],
    handler: async (r) => ({ success: true, ...(await audiences.removeListMembers(ctx, r.workspaceId, r.params.listId!, r.body)) }),
  });
  route(app, {
    method: 'DELETE', url: '/api/v1/lists/:listId/subscribers/:email', scope: 'contacts:write', tag: 'Lists', operationId: 'removeListSubscriber',
    summary: 'Remove one subscriber from a list', description: 'The same as remove with one email.',
    params: Type.Object({ listId: Type.String({ maxLength: 100 }), email: Type.String({ maxLength: 254 }) }),
    response: envelope({ removed: Type.Integer(), results: Type.Array(Loose('The outcome')) }),
    example: { success: true, removed: 1, results: [{ email: 'ana@example.com', subscriberId: Id, status: 'removed' }] }, errors: [...authErrors, 404, 422],
    handler: async (r) => ({ success: true, ...(await audiences.removeListMembers(ctx, r.workspaceId, r.params.listId!, { emails: [r.params.email] })) }),
  });
  route(app, {
    method: 'GET', url: '/api/v1/lists/:listId/subscribers', scope: 'contacts:read', tag: 'Lists', operationId: 'listListSubscribers',
    summary: 'List the subscribers of a list', description: 'A page of members; pass `nextCursor` as `cursor` for the next page.',
    params: ListParams, query: PageQuery, response: Type.Object({ data: Type.Array(Loose('A member')), nextCursor: Type.Union([Type.String(), Type.Null()]) }),
    example: pageExample, errors: [...authErrors, 404, 422],
    handler: async (r) => audiences.listMembers(ctx, r.workspaceId, r.params.listId!, r.query as { limit?: number; cursor?: string }),
  });

  // Segments
  route(app, {
    method: 'POST', url: '/api/v1/segments', scope: 'contacts:write', tag: 'Segments', operationId: 'createSegment', status: 201, idempotent: true,
    summary: 'Create a segment',
    description:
      'A saved audience defined by a filter: conditions on attributes (`attribute`), tags (`tag`), lists (`list`), event counts within a window (`event`) and message engagement (`engagement`), combined with `match: all | any` and nested groups. Membership is computed now over every subscriber, then kept current by each change to a subscriber (tags, lists, attributes, events) — no periodic rescans. Windowed conditions are looked at again when an event leaves its window.',
    body: NamedBody(true, true), bodyExample: { name: 'Repeat buyers', filter: segmentFilterExample },
    response: envelope({ segment: Loose('A segment with its subscriber count') }), example: { success: true, segment: segmentExample }, errors: [400, ...authErrors, 409, 415, 422],
    handler: async (r) => ({ success: true, segment: await audiences.createSegment(ctx, r.workspaceId, r.body) }),
  });
  route(app, {
    method: 'GET', url: '/api/v1/segments', scope: 'contacts:read', tag: 'Segments', operationId: 'listSegments',
    summary: 'List segments', description: 'Every segment with its current subscriber count.',
    response: envelope({ segments: Type.Array(Loose('A segment')) }), example: { success: true, segments: [segmentExample] }, errors: [...authErrors],
    handler: async (r) => ({ success: true, segments: await audiences.listSegments(ctx, r.workspaceId) }),
  });
  route(app, {
    method: 'GET', url: '/api/v1/segments/:id', scope: 'contacts:read', tag: 'Segments', operationId: 'getSegment',
    summary: 'Get a segment', description: 'The segment, its filter and its current subscriber count.',
    params: IdParams, response: envelope({ segment: Loose('A segment') }), example: { success: true, segment: segmentExample }, errors: [...authErrors, 404],
    handler: async (r) => ({ success: true, segment: await audiences.getSegment(ctx, r.workspaceId, r.params.id!) }),
  });
  route(app, {
    method: 'PUT', url: '/api/v1/segments/:id', scope: 'contacts:write', tag: 'Segments', operationId: 'updateSegment',
    summary: 'Update a segment', description: 'Changes the name, description or filter; a new filter recomputes membership.',
    params: IdParams, body: NamedBody(true, false), bodyExample: { filter: segmentFilterExample },
    response: envelope({ segment: Loose('A segment') }), example: { success: true, segment: segmentExample }, errors: [400, ...authErrors, 404, 415, 422],
    handler: async (r) => ({ success: true, segment: await audiences.updateSegment(ctx, r.workspaceId, r.params.id!, r.body) }),
  });
  route(app, {
    method: 'DELETE', url: '/api/v1/segments/:id', scope: 'contacts:write', tag: 'Segments', operationId: 'deleteSegment',
    summary: 'Delete a segment', description: 'Deletes the segment; refused (422) while an active sequence is triggered by it.',
    params: IdParams, response: envelope({ id: Type.String() }), example: { success: true, id: SegmentId }, errors: [...authErrors, 404, 422],
    handler: async (r) => {
      await audiences.deleteSegment(ctx, r.workspaceId, r.params.id!);
      return { success: true, id: r.params.id };
    },
  });
  route(app, {
    method: 'GET', url: '/api/v1/segments/:id/subscribers', scope: 'contacts:read', tag: 'Segments', operationId: 'listSegmentSubscribers',
    summary: 'List the members of a segment', description: 'A page of current members; pass `nextCursor` as `cursor` for the next page.',
    params: IdParams, query: PageQuery, response: Type.Object({ data: Type.Array(Loose('A member')), nextCursor: Type.Union([Type.String(), Type.Null()]) }),
    example: pageExample, errors: [...authErrors, 404, 422],
    handler: async (r) => audiences.segmentMembers(ctx, r.workspaceId, r.params.id!, r.query as { limit?: number; cursor?: string }),
  });
}
