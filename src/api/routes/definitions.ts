import { Type } from 'typebox';
import type { DefinitionKind } from '../../domain/definition.js';
import { isUuid } from '../../domain/ids.js';
import { notFound } from '../../domain/errors.js';
import type { Context } from '../../engine/context.js';
import * as definitions from '../../engine/definition-service.js';
import * as enrollments from '../../engine/enrollment-admin-service.js';
import { triggerDefinition } from '../../engine/enrollment-service.js';
import { authErrors, errorResponses, ok } from '../schemas.js';
import type { App } from '../types.js';

const welcomeSteps = [
  { type: 'whatsapp', text: 'Hi {{context.first_name|there}}, welcome aboard!' },
  { type: 'whatsapp', delay: { days: 1 }, text: 'Day 2: here is how to get the most out of your order {{context.order_id}}.' },
  { type: 'whatsapp', delay: { days: 3 }, text: 'Any questions? Just reply to this message.' },
];

const cartFlowGraph = {
  entry: 'ask',
  nodes: [
    {
      id: 'ask',
      type: 'send_message',
      channel: 'whatsapp',
      content: { text: 'You left {{context.cart_total}} in your cart. Complete your order?', buttons: [{ id: 'yes', title: 'Yes please' }, { id: 'no', title: 'No thanks' }] },
    },
    { id: 'wait', type: 'wait_for_reply', timeout: { minutes: 20 }, branches: [{ id: 'yes', match: { type: 'button', button_id: 'yes' } }, { id: 'no', match: { type: 'button', button_id: 'no' } }] },
    { id: 'link', type: 'send_message', channel: 'whatsapp', content: { text: 'Here is your cart: https://shop.example.com/cart/{{context.cart_id}}' } },
    { id: 'bye', type: 'send_message', channel: 'whatsapp', content: { text: 'No problem. We will keep it for you.' } },
    { id: 'nudge', type: 'send_message', channel: 'whatsapp', content: { text: 'Still thinking about it? Your cart is waiting.' } },
  ],
  edges: [
    { from: 'ask', to: 'wait' },
    { from: 'wait', to: 'link', branch: 'yes' },
    { from: 'wait', to: 'bye', branch: 'no' },
    { from: 'wait', to: 'nudge', branch: 'timeout' },
  ],
};

const DefinitionBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200, description: 'Name shown in the dashboard and in trigger responses' }),
    description: Type.Optional(Type.String({ maxLength: 2000 })),
    steps: Type.Optional(
      Type.Array(Type.Object({}, { additionalProperties: true }), {
        maxItems: 200,
        description:
          'A linear list of steps; each step may carry a `delay` ({days, hours, minutes, seconds}) that runs before it. ' +
          'Each email step gets an email template; an email step may give `templateId` instead of blocks or html to start from an email template’s content',
      }),
    ),
    graph: Type.Optional(Type.Object({}, { additionalProperties: true, description: 'A graph: `{entry?, nodes: [...], edges: [{from, to, branch?}]}`' })),
    settings: Type.Optional(Type.Object({ session_ttl_minutes: Type.Optional(Type.Integer({ minimum: 1, maximum: 43200 })) }, { additionalProperties: true })),
    trigger: Type.Optional(Type.String({ maxLength: 50, description: 'How sessions start: `api` (the default), contact_added, tag_added, segment_entered, event_received, inactivity or frequency' })),
    listId: Type.Optional(Type.String({ maxLength: 100, description: 'contact_added: the list whose new members start it (any new subscriber when absent)' })),
    tagName: Type.Optional(Type.String({ maxLength: 100, description: 'tag_added: the tag' })),
    segmentId: Type.Optional(Type.String({ maxLength: 100, description: 'segment_entered: the segment' })),
    eventName: Type.Optional(Type.String({ maxLength: 200, description: 'event_received, inactivity, frequency: the event name' })),
    inactiveDays: Type.Optional(Type.Integer({ minimum: 1, maximum: 3650, description: 'inactivity: days without eventName' })),
    minCount: Type.Optional(Type.Integer({ minimum: 1, description: 'frequency: how many times eventName must occur…' })),
    timeWindowDays: Type.Optional(Type.Integer({ minimum: 1, maximum: 3650, description: '…within this many days' })),
    enrollmentMode: Type.Optional(Type.String({ maxLength: 20, description: 'unlimited (default), one_time, or matching_field (event_received only)' })),
    enrollmentFieldPath: Type.Optional(Type.String({ maxLength: 500, description: 'matching_field: the event property path that keys each run, e.g. order.id' })),
    stopCondition: Type.Optional(Type.Object({}, { additionalProperties: true, description: '{type, value}: has_tag, does_not_have_tag, event_received, added_to_list, removed_from_list, or none' })),
    goal: Type.Optional(Type.String({ maxLength: 4000, description: 'Instead of steps: what the sequence should achieve; the emails are written by the configured AI endpoint' })),
    emailCount: Type.Optional(Type.Integer({ minimum: 1, maximum: 10, description: 'With goal: how many emails to write (default 5)' })),
  },
  { additionalProperties: true },
);

const PartialDefinitionBody = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    description: Type.Optional(Type.String({ maxLength: 2000 })),
    steps: Type.Optional(Type.Array(Type.Object({}, { additionalProperties: true }), { maxItems: 200 })),
    graph: Type.Optional(Type.Object({}, { additionalProperties: true })),
    settings: Type.Optional(Type.Object({ session_ttl_minutes: Type.Optional(Type.Integer({ minimum: 1, maximum: 43200 })) }, { additionalProperties: true })),
    trigger: Type.Optional(Type.String({ maxLength: 50 })),
  },
  { additionalProperties: true },
);

const Resource = Type.Object(
  {
    id: Type.String(),
    name: Type.String(),
    description: Type.Union([Type.String(), Type.Null()]),
    kind: Type.String(),
    status: Type.String({ description: 'draft, active, paused or archived' }),
    trigger: Type.String(),
    triggerConfig: Type.Object({}, { additionalProperties: true }),
    settings: Type.Object({}, { additionalProperties: true }),
    steps: Type.Union([Type.Array(Type.Object({}, { additionalProperties: true })), Type.Null()], { description: 'The linear steps (null when the graph branches); each email step carries the `templateId` of its email template' }),
    graph: Type.Object({}, { additionalProperties: true }),
    emailTemplates: Type.Array(Type.Object({ nodeId: Type.String(), templateId: Type.String() }), {
      description: 'The email template of each email node (GET /api/v1/email-templates/{templateId}); editing one edits the node in this draft',
    }),
    emailCount: Type.Integer(),
    hasUnpublishedChanges: Type.Boolean(),
    currentVersionId: Type.Union([Type.String(), Type.Null()]),
    sessionsCount: Type.Integer(),
    abTest: Type.Optional(
      Type.Union([Type.Object({ variantSequenceId: Type.String(), splitPercent: Type.Integer() }), Type.Null()], {
        description: 'Sequences: the A/B test (PUT /api/v1/sequences/{id}/ab-test), or null',
      }),
    ),
    publishedAt: Type.Union([Type.String(), Type.Null()]),
    createdAt: Type.String(),
    updatedAt: Type.String(),
  },
  { additionalProperties: true },
);

function resourceExample(kind: DefinitionKind, status = 'active') {
  const sequence = kind === 'sequence';
  return {
    id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b',
    name: sequence ? 'Welcome 7-day' : 'Abandoned cart 30min',
    description: null,
    kind,
    status,
    trigger: 'api',
    triggerConfig: { type: 'api' },
    settings: sequence ? {} : { session_ttl_minutes: 30 },
    steps: sequence ? welcomeSteps : null,
    graph: sequence ? { entry: 'step-1', nodes: [{ id: 'step-1', type: 'send_message', channel: 'whatsapp', content: { text: welcomeSteps[0]!.text } }], edges: [] } : cartFlowGraph,
    emailTemplates: [],
    emailCount: 0,
    hasUnpublishedChanges: false,
    currentVersionId: status === 'draft' ? null : '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c',
    sessionsCount: 12,
    publishedAt: status === 'draft' ? null : '2026-05-07T08:14:23.000Z',
    createdAt: '2026-05-01T10:00:00.000Z',
    updatedAt: '2026-05-07T08:14:23.000Z',
  };
}
const IdParams = Type.Object({ id: Type.String({ maxLength: 100 }) });
const ListQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
  cursor: Type.Optional(Type.String({ maxLength: 200 })),
  status: Type.Optional(Type.Union([Type.Literal('draft'), Type.Literal('active'), Type.Literal('paused'), Type.Literal('archived')])),
});

export function registerDefinitionRoutes(app: App, ctx: Context): void {
  for (const kind of ['sequence', 'flow'] as const) registerResource(app, ctx, kind);
  registerSequenceEnrollments(app, ctx);
  registerActions(app, ctx);
}

function registerResource(app: App, ctx: Context, kind: DefinitionKind): void {
  const plural = kind === 'sequence' ? 'sequences' : 'flows';
  const Label = kind === 'sequence' ? 'Sequence' : 'Flow';
  const tag = kind === 'sequence' ? 'Sequences' : 'Flows';
  const readScope = `${plural}:read` as const;
  const writeScope = `${plural}:write` as const;
  const example = kind === 'sequence' ? { name: 'Welcome 7-day', steps: welcomeSteps } : { name: 'Abandoned cart 30min', graph: cartFlowGraph, settings: { session_ttl_minutes: 30 } };
  const requireId = (id: string) => {
    if (!isUuid(id)) throw notFound(Label);
    return id;
  };
  const wrap = (resource: ReturnType<typeof definitions.toResource>): Record<string, boolean | ReturnType<typeof definitions.toResource>> => ({ success: true, [kind]: resource });

  const createPaths = kind === 'sequence' ? [`/api/v1/${plural}`, `/v1/${plural}`] : [`/api/v1/${plural}`];
  for (const path of createPaths) {
    app.post(
      path,
      {
        config: { scope: writeScope, idempotent: true },
        schema: {
          summary: `Create a ${kind}`,
          description:
            `Creates a ${kind} as a draft from a linear \`steps\` list or a \`graph\` of nodes and edges. ` +
            `Publish it with POST /api/v1/${plural}/{id}/publish (or /enable) before triggering it.` +
            (path.startsWith('/v1') ? ' This path is an alias kept for older clients.' : ''),
          tags: [tag],
          operationId: path.startsWith('/v1') ? `create${Label}Alias` : `create${Label}`,
          ...(path.startsWith('/v1') ? { deprecated: true } : {}),
          body: { ...DefinitionBody, examples: [example] },
          response: {
            201: ok(Type.Object({ success: Type.Boolean(), message: Type.String(), [kind]: Resource }), `${Label} created as a draft`, {
              success: true,
              message: `${Label} created.`,
              [kind]: resourceExample(kind, 'draft'),
            }),
            ...errorResponses(400, ...authErrors, 409, 415, 422),
          },
        },
      },
      async (request, reply) => {
        const resource = await definitions.createDefinition(ctx, request.principal!.workspaceId, kind, request.body as definitions.DefinitionInput);
        const message = resource.enrichment?.status === 'pending' ? definitions.aiWritingMessage : `${Label} created.`;
        return reply.code(201).send({ success: true, message, [kind]: resource });
      },
    );
  }

  app.get(
    `/api/v1/${plural}`,
    {
      config: { scope: readScope },
      schema: {
        summary: `List ${plural}`,
        description: `${Label}s of the workspace, oldest first, a page at a time; pass \`next_cursor\` as \`cursor\` for the next page.`,
        tags: [tag],
        operationId: `list${Label}s`,
        querystring: ListQuery,
        response: {
          200: ok(Type.Object({ data: Type.Array(Resource), next_cursor: Type.Union([Type.String(), Type.Null()]) }), `A page of ${plural}`, { data: [], next_cursor: null }),
          ...errorResponses(...authErrors, 422),
        },
      },
    },
    async (request) => {
      const query = request.query as { limit?: number; cursor?: string; status?: string };
      return definitions.listDefinitions(ctx, request.principal!.workspaceId, kind, { limit: query.limit ?? 50, cursor: query.cursor, status: query.status });
    },
  );

  app.get(
    `/api/v1/${plural}/:id`,
    {
      config: { scope: readScope },
      schema: {
        summary: `Get a ${kind}`,
        description: `The ${kind} with its draft (steps or graph), status, trigger and counts.`,
        tags: [tag],
        operationId: `get${Label}`,
        params: IdParams,
        response: { 200: ok(Type.Object({ success: Type.Boolean(), [kind]: Resource }), `The ${kind}`, { success: true, [kind]: resourceExample(kind) }), ...errorResponses(...authErrors, 404) },
      },
    },
    async (request) => wrap(await definitions.getDefinition(ctx, request.principal!.workspaceId, kind, requireId((request.params as { id: string }).id))),
  );

  app.put(
    `/api/v1/${plural}/:id`,
    {
      config: { scope: writeScope },
      schema: {
        summary: `Update a ${kind}`,
        description: `Replaces the draft's fields that are given. A published ${kind} keeps running its published version until the draft is published again.`,
        tags: [tag],
        operationId: `update${Label}`,
        params: IdParams,
        body: { ...PartialDefinitionBody, examples: [{ name: example.name }] },
        response: { 200: ok(Type.Object({ success: Type.Boolean(), [kind]: Resource }), `The updated ${kind}`, { success: true, [kind]: resourceExample(kind, 'draft') }), ...errorResponses(400, ...authErrors, 404, 415, 422) },
      },
    },
    async (request) => wrap(await definitions.replaceDefinition(ctx, request.principal!.workspaceId, kind, requireId((request.params as { id: string }).id), request.body as definitions.DefinitionInput)),
  );

  app.delete(
    `/api/v1/${plural}/:id`,
    {
      config: { scope: writeScope },
      schema: {
        summary: `Delete a ${kind}`,
        description: `Removes the ${kind}; its running sessions stop and their unsent messages are cancelled.`,
        tags: [tag],
        operationId: `delete${Label}`,
        params: IdParams,
        response: { 200: ok(Type.Object({ success: Type.Boolean(), id: Type.String() }), 'Deleted', { success: true, id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b' }), ...errorResponses(...authErrors, 404) },
      },
    },
    async (request) => {
      const id = requireId((request.params as { id: string }).id);
      await definitions.deleteDefinition(ctx, request.principal!.workspaceId, kind, id);
      return { success: true, id };
    },
  );

  for (const action of ['publish', 'enable'] as const) {
    app.post(
      `/api/v1/${plural}/:id/${action}`,
      {
        config: { scope: writeScope },
        schema: {
          summary: action === 'publish' ? `Publish a ${kind}` : `Enable a ${kind} (alias of publish)`,
          description: `Validates the draft, freezes it as a new immutable version and activates the ${kind}. New sessions use the new version; running ones finish on theirs.`,
          tags: [tag],
          operationId: `${action}${Label}`,
          params: IdParams,
          response: { 200: ok(Type.Object({ success: Type.Boolean(), [kind]: Resource }), `The active ${kind}`, { success: true, [kind]: resourceExample(kind) }), ...errorResponses(...authErrors, 404, 422) },
        },
      },
      async (request) => wrap(await definitions.publishDefinition(ctx, request.principal!.workspaceId, kind, requireId((request.params as { id: string }).id))),
    );
  }

  app.post(
    `/api/v1/${plural}/:id/archive`,
    {
      config: { scope: writeScope },
      schema: {
        summary: `Archive a ${kind}`,
        description: `Retires the ${kind}: no new enrollments, and it cannot be published again. Running sessions continue to their end.`,
        tags: [tag],
        operationId: `archive${Label}`,
        params: IdParams,
        response: { 200: ok(Type.Object({ success: Type.Boolean(), [kind]: Resource }), `The archived ${kind}`, { success: true, [kind]: resourceExample(kind, 'archived') }), ...errorResponses(...authErrors, 404) },
      },
    },
    async (request) => wrap(await definitions.archiveDefinition(ctx, request.principal!.workspaceId, kind, requireId((request.params as { id: string }).id))),
  );

  app.post(
    `/api/v1/${plural}/:id/disable`,
    {
      config: { scope: writeScope },
      schema: {
        summary: `Disable a ${kind}`,
        description: `Stops new enrollments (the ${kind} becomes paused); running sessions continue to their end.`,
        tags: [tag],
        operationId: `disable${Label}`,
        params: IdParams,
        response: { 200: ok(Type.Object({ success: Type.Boolean(), [kind]: Resource }), `The paused ${kind}`, { success: true, [kind]: resourceExample(kind, 'paused') }), ...errorResponses(...authErrors, 404, 422) },
      },
    },
    async (request) => wrap(await definitions.disableDefinition(ctx, request.principal!.workspaceId, kind, requireId((request.params as { id: string }).id))),
  );
}

const TriggerSequenceBody = Type.Object({
  sequence_id: Type.String({ maxLength: 100, description: 'A published sequence' }),
  contact_id: Type.Optional(Type.String({ maxLength: 100, description: 'An existing contact (one of contact_id or phone)' })),
  phone: Type.Optional(Type.String({ maxLength: 40, description: 'Finds or creates the contact (created opted in now)' })),
  context: Type.Optional(Type.Object({}, { additionalProperties: true, description: 'Free-form values, available in every node as {{context.*}}' })),
});

const TriggerFlowBody = Type.Object({
  flow_id: Type.String({ maxLength: 100, description: 'A published flow' }),
  contact_id: Type.Optional(Type.String({ maxLength: 100 })),
  phone: Type.Optional(Type.String({ maxLength: 40 })),
  context: Type.Optional(Type.Object({}, { additionalProperties: true })),
});

const Started = Type.Object({
  id: Type.String(),
  status: Type.String(),
  sequence_id: Type.Optional(Type.String()),
  sequence_name: Type.Optional(Type.String()),
  flow_id: Type.Optional(Type.String()),
  flow_name: Type.Optional(Type.String()),
  contact_id: Type.Optional(Type.String()),
  message: Type.Optional(Type.String()),
});

const ActionDefinition = Type.Object({
  id: Type.String(),
  name: Type.String(),
  status: Type.String(),
  sessions_count: Type.Integer(),
  published_at: Type.Union([Type.String(), Type.Null()]),
  created_at: Type.String(),
});

function registerActions(app: App, ctx: Context): void {
  for (const kind of ['sequence', 'flow'] as const) {
    const Label = kind === 'sequence' ? 'Sequence' : 'Flow';
    const plural = kind === 'sequence' ? 'sequences' : 'flows';
    const idField = `${kind}_id`;
    const body = kind === 'sequence' ? TriggerSequenceBody : TriggerFlowBody;
    const example =
      kind === 'sequence'
        ? { sequence_id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b', phone: '+14155550123', context: { order_id: 'ORD-1042', first_name: 'Romain' } }
        : { flow_id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c', phone: '+14155550123', context: { cart_id: '987654321', cart_total: '129.00' } };
    app.post(
      `/api/v1/actions/trigger-${kind}`,
      {
        config: { scope: `${plural}:execute` as const, idempotent: true },
        schema: {
          summary: `Start a ${kind} for a contact`,
          description:
            `Enrolls a contact (by \`contact_id\`, or by \`phone\`, creating the contact when needed) in a published ${kind}. ` +
            `Safe to retry: when the contact already runs this ${kind}, answers 200 with status \`already_running\` and starts nothing.` +
            (kind === 'sequence' ? ' While its enrollments are paused (`pause-enrollments`) it answers 422 with `reason: enrollments_paused` and starts nothing.' : '') +
            (kind === 'flow' ? ' A flow session expires after `settings.session_ttl_minutes` (default 30).' : ''),
          tags: [kind === 'sequence' ? 'Sequences' : 'Flows'],
          operationId: `trigger${Label}`,
          body: { ...body, examples: [example] },
          response: {
            201: ok(Started, 'Started', {
              id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a60',
              status: 'started',
              [idField]: example[idField as keyof typeof example],
              [`${kind}_name`]: kind === 'sequence' ? 'Welcome 7-day' : 'Abandoned cart 30min',
              contact_id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a61',
            }),
            200: ok(Started, 'The contact already runs it', { id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a60', status: 'already_running', message: `Contact is already in this ${kind}` }),
            ...errorResponses(400, ...authErrors, 404, 409, 415, 422),
          },
        },
      },
      async (request, reply) => {
        const input = request.body as Record<string, unknown>;
        const outcome = await triggerDefinition(ctx, ctx.versions, request.principal!.workspaceId, kind, {
          definitionId: String(input[idField]),
          contactId: input.contact_id as string | undefined,
          phone: input.phone as string | undefined,
          context: input.context,
        });
        if (!outcome.created) return reply.code(200).send({ id: outcome.sessionId, status: 'already_running', message: `Contact is already in this ${kind}` });
        return reply.code(201).send({
          id: outcome.sessionId,
          status: 'started',
          [idField]: outcome.definitionId,
          [`${kind}_name`]: outcome.definitionName,
          contact_id: outcome.contactId,
        });
      },
    );

    app.post(
      `/api/v1/actions/get-${kind}`,
      {
        config: { scope: `${plural}:read` as const },
        schema: {
          summary: `Get a ${kind} (action)`,
          description: `The ${kind}'s name, status (\`published\` when active), sessions count and publication time.`,
          tags: [kind === 'sequence' ? 'Sequences' : 'Flows'],
          operationId: `get${Label}Action`,
          body: { ...Type.Object({ [idField]: Type.String({ maxLength: 100 }) }), examples: [{ [idField]: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b' }] },
          response: {
            200: ok(ActionDefinition, `The ${kind}`, { id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b', name: 'Welcome 7-day', status: 'published', sessions_count: 42, published_at: '2026-05-07T08:14:23.000Z', created_at: '2026-05-01T10:00:00.000Z' }),
            ...errorResponses(400, ...authErrors, 404, 415, 422),
          },
        },
      },
      async (request) => {
        const id = String((request.body as Record<string, unknown>)[idField]);
        if (!isUuid(id)) throw notFound(Label);
        const resource = await definitions.getDefinition(ctx, request.principal!.workspaceId, kind, id);
        return {
          id: resource.id,
          name: resource.name,
          status: definitions.statusForActions(resource.status),
          sessions_count: resource.sessionsCount,
          published_at: resource.publishedAt,
          created_at: resource.createdAt,
        };
      },
    );
  }
}

const exampleIds = {
  sequence: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b',
  contact: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a61',
  otherContact: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a62',
  session: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a60',
  otherSession: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a63',
};
const limits = enrollments.enrollmentAdminLimits;
const JsonObject = Type.Object({}, { additionalProperties: true });
const SubscriberIds = Type.Array(Type.String({ maxLength: 100 }), { maxItems: limits.subscribers, description: 'Subscriber (contact) ids of this workspace' });
const Emails = Type.Array(Type.String({ maxLength: 254 }), { maxItems: limits.subscribers, description: 'Email addresses, matched ignoring case' });

const EnrollBody = Type.Object(
  {
    emails: Type.Optional({ ...Emails, description: 'Subscribers by email, matched ignoring case; a subscriber is created (source `api`) when none has the address' }),
    subscriberIds: Type.Optional(SubscriberIds),
    context: Type.Optional(Type.Object({}, { additionalProperties: true, description: 'Free-form values, available in every step as {{context.*}}' })),
  },
  { additionalProperties: false },
);

const EnrollResult = Type.Object({
  email: Type.Optional(Type.String()),
  subscriberId: Type.String(),
  status: Type.String({ description: 'enrolled, already_enrolled or skipped' }),
  reason: Type.Optional(Type.String({ description: 'Why it was skipped: not_found, unsubscribed, enrollments_paused, already_enrolled_once, enrollment_key_missing' })),
  enrollmentId: Type.Optional(Type.String({ description: 'The run (session) started, or the one already active' })),
});

const Enrollment = Type.Object({
  id: Type.String(),
  subscriberId: Type.String(),
  email: Type.Union([Type.String(), Type.Null()]),
  status: Type.String({ description: 'running, waiting, completed, stopped, expired or failed' }),
  currentNodeId: Type.Union([Type.String(), Type.Null()]),
  enrollmentKey: Type.Union([Type.String(), Type.Null()]),
  event: Type.Union([JsonObject, Type.Null()], { description: 'The properties of the event that enrolled the subscriber, as stored on the run' }),
  context: JsonObject,
  endReason: Type.Union([Type.String(), Type.Null()]),
  startedAt: Type.String(),
  updatedAt: Type.String(),
  endedAt: Type.Union([Type.String(), Type.Null()]),
  nextRunAt: Type.Union([Type.String(), Type.Null()]),
});

const EnrollmentsQuery = Type.Object({
  status: Type.Optional(Type.Union(enrollments.enrollmentStatuses.map((s) => Type.Literal(s)), { description: '`active` is running or waiting' })),
  nodeId: Type.Optional(Type.String({ maxLength: 100, description: 'The node a run is at (currentNodeId)' })),
  subscriberId: Type.Optional(Type.String({ maxLength: 100 })),
  email: Type.Optional(Type.String({ maxLength: 254 })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: limits.pageSize, default: limits.defaultPageSize })),
  cursor: Type.Optional(Type.String({ maxLength: 200, description: 'nextCursor of the previous page' })),
});

const CancelBody = Type.Object(
  {
    subscriberIds: Type.Optional(SubscriberIds),
    emails: Type.Optional(Emails),
    fieldPath: Type.Optional(Type.String({ maxLength: 200, description: 'A dot path into the event stored on the run (`order.id`), into its context (`context.orderId`), or `enrollmentKey`' })),
    values: Type.Optional(Type.Array(Type.Union([Type.String({ maxLength: limits.valueLength }), Type.Number()]), { maxItems: limits.values, description: 'Values of fieldPath to cancel, compared as strings' })),
    dryRun: Type.Optional(Type.Boolean({ description: 'Report what would be cancelled and change nothing' })),
    reason: Type.Optional(Type.String({ maxLength: limits.reasonLength, description: 'Recorded as the runs\' endReason (default cancelled_by_api)' })),
  },
  { additionalProperties: false },
);

const CancelledEnrollment = Type.Object({
  id: Type.String(),
  subscriberId: Type.String(),
  email: Type.Union([Type.String(), Type.Null()]),
  enrollmentKey: Type.Union([Type.String(), Type.Null()]),
});

/** Operating a sequence's enrollments: pause and resume them, enroll, list and cancel runs. */
function registerSequenceEnrollments(app: App, ctx: Context): void {
  const requireId = (id: string) => {
    if (!isUuid(id)) throw notFound('Sequence');
    return id;
  };
  const idOf = (request: { params: unknown }) => requireId((request.params as { id: string }).id);

  for (const action of ['pause', 'resume'] as const) {
    app.post(
      `/api/v1/sequences/:id/${action}-enrollments`,
      {
        config: { scope: 'sequences:write' },
        schema: {
          summary: action === 'pause' ? 'Pause new enrollments' : 'Resume enrollments',
          description:
            action === 'pause'
              ? 'Stops new enrollments from every source (the API, triggers, events) while the sequence stays active: enroll answers `skipped` with reason `enrollments_paused`. Running sessions continue.'
              : 'Lets new enrollments in again after pause-enrollments.',
          tags: ['Sequences'],
          operationId: `${action}SequenceEnrollments`,
          params: IdParams,
          response: {
            200: ok(Type.Object({ success: Type.Boolean(), sequence: Resource }), action === 'pause' ? 'The sequence, enrollments paused' : 'The sequence, enrollments open', {
              success: true,
              sequence: { ...resourceExample('sequence'), enrollmentsPaused: action === 'pause' },
            }),
            ...errorResponses(...authErrors, 404, 422),
          },
        },
      },
      async (request) => {
        const change = action === 'pause' ? definitions.pauseEnrollments : definitions.resumeEnrollments;
        return { success: true, sequence: await change(ctx, request.principal!.workspaceId, 'sequence', idOf(request)) };
      },
    );
  }

  app.post(
    '/api/v1/sequences/:id/enroll',
    {
      config: { scope: 'sequences:execute', idempotent: true },
      schema: {
        summary: 'Enroll subscribers in a sequence',
        description:
          `Enrolls 1 to ${limits.subscribers} subscribers, given by \`emails\` (found ignoring case, or created) and/or \`subscriberIds\`, in an active sequence, all in one transaction. ` +
          'Each gets a result: `enrolled`, `already_enrolled` (a run is active; nothing starts) or `skipped` with a reason ' +
          '(`not_found`, `unsubscribed` for a sequence that sends email, `enrollments_paused`, `already_enrolled_once`, `enrollment_key_missing`). ' +
          'A draft, disabled or archived sequence, or one without steps, is refused with 422.',
        tags: ['Sequences'],
        operationId: 'enrollSequenceSubscribers',
        params: IdParams,
        body: { ...EnrollBody, examples: [{ emails: ['ana@example.com', 'bo@example.com'], subscriberIds: [exampleIds.otherContact], context: { plan: 'pro' } }] },
        response: {
          200: ok(
            Type.Object({ success: Type.Boolean(), enrolled: Type.Integer(), skipped: Type.Integer(), alreadyEnrolled: Type.Integer(), results: Type.Array(EnrollResult) }),
            'One result per subscriber given',
            {
              success: true,
              enrolled: 1,
              skipped: 1,
              alreadyEnrolled: 1,
              results: [
                { email: 'ana@example.com', subscriberId: exampleIds.contact, status: 'enrolled', enrollmentId: exampleIds.session },
                { email: 'bo@example.com', subscriberId: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a64', status: 'already_enrolled', enrollmentId: exampleIds.otherSession },
                { subscriberId: exampleIds.otherContact, status: 'skipped', reason: 'not_found' },
              ],
            },
          ),
          ...errorResponses(400, ...authErrors, 404, 409, 415, 422),
        },
      },
    },
    async (request) => enrollments.enrollSubscribers(ctx, request.principal!.workspaceId, idOf(request), (request.body ?? {}) as enrollments.EnrollInput),
  );

  app.get(
    '/api/v1/sequences/:id/enrollments',
    {
      config: { scope: 'sequences:read' },
      schema: {
        summary: "List a sequence's enrollments",
        description:
          'The runs of the sequence, newest first, a page at a time: pass `nextCursor` as `cursor` for the next page. ' +
          'Filter by status (`active` is running or waiting), by the node a run is at, by subscriber id or by email.',
        tags: ['Sequences'],
        operationId: 'listSequenceEnrollments',
        params: IdParams,
        querystring: EnrollmentsQuery,
        response: {
          200: ok(Type.Object({ data: Type.Array(Enrollment), nextCursor: Type.Union([Type.String(), Type.Null()]) }), 'A page of enrollments', {
            data: [
              {
                id: exampleIds.session,
                subscriberId: exampleIds.contact,
                email: 'ana@example.com',
                status: 'running',
                currentNodeId: 'step-2-delay',
                enrollmentKey: 'A1042',
                event: { order: { id: 'A1042', total: 129 } },
                context: { plan: 'pro' },
                endReason: null,
                startedAt: '2026-05-07T08:14:23.000Z',
                updatedAt: '2026-05-07T08:14:24.000Z',
                endedAt: null,
                nextRunAt: '2026-05-08T08:14:24.000Z',
              },
            ],
            nextCursor: null,
          }),
          ...errorResponses(...authErrors, 404, 422),
        },
      },
    },
    async (request) => enrollments.listEnrollments(ctx, request.principal!.workspaceId, idOf(request), request.query as enrollments.ListEnrollmentsQuery),
  );

  app.post(
    '/api/v1/sequences/:id/enrollments/cancel',
    {
      config: { scope: 'sequences:execute' },
      schema: {
        summary: "Cancel a sequence's enrollments",
        description:
          'Stops active runs of the sequence chosen by `subscriberIds`/`emails` and/or by `fieldPath` with `values` ' +
          '(a path into the event stored on the run such as `order.id`, `context.<path>` for the run\'s context, or `enrollmentKey`; compared as strings). ' +
          'Given both, they narrow each other. Queued, unsent messages of those runs are cancelled with them, all in one transaction. ' +
          '`dryRun` answers the same list and changes nothing.',
        tags: ['Sequences'],
        operationId: 'cancelSequenceEnrollments',
        params: IdParams,
        body: { ...CancelBody, examples: [{ fieldPath: 'order.id', values: ['A1042'], reason: 'order refunded' }, { emails: ['ana@example.com'], dryRun: true }] },
        response: {
          200: ok(
            Type.Object({ success: Type.Boolean(), dryRun: Type.Boolean(), cancelled: Type.Integer(), enrollments: Type.Array(CancelledEnrollment) }),
            'The enrollments cancelled (or, with dryRun, that would be)',
            { success: true, dryRun: false, cancelled: 1, enrollments: [{ id: exampleIds.session, subscriberId: exampleIds.contact, email: 'ana@example.com', enrollmentKey: 'A1042' }] },
          ),
          ...errorResponses(400, ...authErrors, 404, 415, 422),
        },
      },
    },
    async (request) => enrollments.cancelEnrollments(ctx, request.principal!.workspaceId, idOf(request), (request.body ?? {}) as enrollments.CancelInput),
  );
}
