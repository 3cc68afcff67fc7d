import { Type } from 'typebox';
import type { Context } from '../../engine/context.js';
import * as webhooks from '../../engine/webhook-service.js';
import { authErrors, errorResponses, Nullable, ok, Timestamp } from '../schemas.js';
import type { App } from '../types.js';

/*
 * Outbound webhook subscriptions and their delivery log. Every rule lives in
 * engine/webhook-service.ts; delivery in engine/webhook-delivery.ts.
 *
 * Creating a subscription is deliberately not replayable with Idempotency-Key: a
 * replay would have to keep the response, and with it the signing secret, in plain
 * text in the idempotency table for a day. A client unsure whether its create went
 * through lists the subscriptions and deletes a duplicate.
 */

const Id = '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a90';
const DeliveryId = '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a91';
const EventId = '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a92';
const WorkspaceId = '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a00';

const subscriptionFields = {
  id: Type.String(),
  url: Type.String({ description: 'Where Nudge POSTs the events' }),
  description: Nullable(Type.String()),
  events: Type.Array(Type.String(), { description: 'Event types received; `message.status.*` style wildcards and `*` allowed' }),
  status: Type.String({ description: 'active, or disabled (by the API, or after every delivery failed for 24 hours)' }),
  failing_since: Nullable(Timestamp),
  disabled_at: Nullable(Timestamp),
  disabled_reason: Nullable(Type.String()),
  previous_secret_expires_at: Nullable({ ...Timestamp, description: 'Until when the secret replaced by the last rotation still signs (a second v1 in Nudge-Signature)' }),
  created_at: Timestamp,
  updated_at: Timestamp,
};
const Subscription = Type.Object(subscriptionFields, { title: 'WebhookSubscription' });
const SubscriptionWithSecret = Type.Object(
  { ...subscriptionFields, secret: Type.String({ description: 'The signing secret (whsec_…). Shown only in this response: store it now' }) },
  { title: 'WebhookSubscriptionWithSecret' },
);
const Enabled = Type.Object(
  { ...subscriptionFields, resumed_deliveries: Type.Integer({ description: 'Paused deliveries now due again' }), expired_deliveries: Type.Integer({ description: 'Paused deliveries whose event was over 3 days old: failed' }) },
  { title: 'EnabledWebhookSubscription' },
);

const subscriptionExample = {
  id: Id,
  url: 'https://example.com/hooks/nudge',
  description: 'CRM sync',
  events: ['message.received', 'message.status.*', 'sequence.finished'],
  status: 'active',
  failing_since: null,
  disabled_at: null,
  disabled_reason: null,
  previous_secret_expires_at: null,
  created_at: '2026-05-07T08:14:23.000Z',
  updated_at: '2026-05-07T08:14:23.000Z',
};
const secretExample = 'whsec_3q2mPz0dVh1Qy8kS7bG4nF5tR6wX9cA2eL0uJ1iO3pM';

const Attempt = Type.Object({
  status_code: Nullable(Type.Integer({ description: 'The HTTP status the endpoint answered; null when it did not answer (timeout, refused or reset connection)' })),
  error: Nullable(Type.String()),
  duration_ms: Type.Integer(),
  at: Timestamp,
});
const Delivery = Type.Object(
  {
    id: Type.String({ description: 'Also sent as the Nudge-Delivery header' }),
    subscription_id: Type.String(),
    event_id: Type.String({ description: 'The payload’s id: the same for every retry and every subscription' }),
    event_type: Type.String(),
    status: Type.String({ description: 'pending (queued or retrying), delivered (a 2xx answer) or failed (3 days of failures)' }),
    attempt_count: Type.Integer(),
    next_attempt_at: Nullable(Timestamp),
    last_status_code: Nullable(Type.Integer()),
    last_error: Nullable(Type.String()),
    created_at: Timestamp,
    delivered_at: Nullable(Timestamp),
    payload: Type.Object({}, { additionalProperties: true, description: 'The body sent, exactly as signed' }),
    attempts: Type.Array(Attempt, { description: 'Every attempt, oldest first' }),
  },
  { title: 'WebhookDelivery' },
);
const deliveryExample = {
  id: DeliveryId,
  subscription_id: Id,
  event_id: EventId,
  event_type: 'message.status.delivered',
  status: 'delivered',
  attempt_count: 2,
  next_attempt_at: null,
  last_status_code: 200,
  last_error: null,
  created_at: '2026-05-07T08:14:23.000Z',
  delivered_at: '2026-05-07T08:14:35.000Z',
  payload: {
    id: EventId,
    type: 'message.status.delivered',
    created_at: '2026-05-07T08:14:23.000Z',
    workspace_id: WorkspaceId,
    data: {
      message: {
        id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a70',
        contact_id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a61',
        session_id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a60',
        definition_id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c',
        broadcast_id: null,
        channel: 'whatsapp',
        provider: 'whatsapp-cloud',
        provider_message_id: 'wamid.HBgLMTQxNTU1NTAxMjMVAgARGBI',
        status: 'delivered',
        error_code: null,
        error_message: null,
      },
      occurred_at: '2026-05-07T08:14:23.000Z',
    },
  },
  attempts: [
    { status_code: 503, error: 'HTTP 503: upstream unavailable', duration_ms: 41, at: '2026-05-07T08:14:24.000Z' },
    { status_code: 200, error: null, duration_ms: 38, at: '2026-05-07T08:14:35.000Z' },
  ],
};

const IdParams = Type.Object({ id: Type.String({ maxLength: 100 }) });
const eventsField = Type.Array(Type.String({ maxLength: 100 }), {
  maxItems: 50,
  description: 'Event types to receive: names from GET /api/v1/webhooks/event-types, a prefix wildcard such as `message.status.*`, or `*` for all',
});
const CreateBody = Type.Object(
  {
    url: Type.String({ maxLength: 2000, description: 'An http(s) URL without credentials' }),
    events: eventsField,
    description: Type.Optional(Nullable(Type.String({ maxLength: 500 }))),
  },
  { additionalProperties: false, examples: [{ url: 'https://example.com/hooks/nudge', events: ['message.received', 'message.status.*', 'sequence.finished'], description: 'CRM sync' }] },
);
const UpdateBody = Type.Object(
  {
    url: Type.Optional(Type.String({ maxLength: 2000 })),
    events: Type.Optional(eventsField),
    description: Type.Optional(Nullable(Type.String({ maxLength: 500 }))),
  },
  { additionalProperties: false, examples: [{ events: ['*'] }] },
);

export async function registerWebhookSubscriptionRoutes(app: App, ctx: Context): Promise<void> {
  const ws = (request: { principal?: { workspaceId: string } }) => request.principal!.workspaceId;

  app.get(
    '/api/v1/webhooks/event-types',
    {
      config: { scope: 'webhooks:read' },
      schema: {
        summary: 'List webhook event types',
        description: 'Every event type a subscription can name. `webhook.test` is sent on creation and by the test route whatever a subscription listens to.',
        tags: ['Webhooks'],
        operationId: 'listWebhookEventTypes',
        response: { 200: ok(Type.Object({ data: Type.Array(Type.String()), test_event: Type.String() }), 'The event types', webhooks.listWebhookEventTypes()), ...errorResponses(...authErrors) },
      },
    },
    async () => webhooks.listWebhookEventTypes(),
  );

  app.post(
    '/api/v1/webhooks',
    {
      config: { scope: 'webhooks:write' },
      schema: {
        summary: 'Create a webhook subscription',
        description:
          'Subscribes an endpoint to events. The response carries the signing secret, shown only this once; a `webhook.test` event is queued to the endpoint at once. ' +
          'Each request is a POST with a JSON body `{id, type, created_at, workspace_id, data}` and the header `Nudge-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" keyed with the secret>`. ' +
          'Answer 2xx within the timeout (10 s by default); anything else is retried with exponential backoff for 3 days. ' +
          'A URL that is not http(s), carries credentials or names a port HTTP requests are refused on (25, 6000, 6667 and the like), or an unknown event type, is refused with a 422 naming the field.',
        tags: ['Webhooks'],
        operationId: 'createWebhookSubscription',
        body: CreateBody,
        response: { 201: ok(SubscriptionWithSecret, 'The new subscription and its secret', { ...subscriptionExample, secret: secretExample }), ...errorResponses(400, ...authErrors, 413, 415, 422) },
      },
    },
    async (request, reply) => reply.code(201).send(await webhooks.createSubscription(ctx, ws(request), request.body)),
  );

  app.get(
    '/api/v1/webhooks',
    {
      config: { scope: 'webhooks:read' },
      schema: {
        summary: 'List webhook subscriptions',
        description: 'Every subscription of the workspace (at most 100), oldest first. Secrets are never returned.',
        tags: ['Webhooks'],
        operationId: 'listWebhookSubscriptions',
        response: { 200: ok(Type.Object({ data: Type.Array(Subscription) }), 'The subscriptions', { data: [subscriptionExample] }), ...errorResponses(...authErrors) },
      },
    },
    async (request) => ({ data: await webhooks.listSubscriptions(ctx, ws(request)) }),
  );

  app.get(
    '/api/v1/webhooks/:id',
    {
      config: { scope: 'webhooks:read' },
      schema: {
        summary: 'Get a webhook subscription',
        description: 'The subscription, with why and since when it is disabled or failing. The secret is never returned.',
        tags: ['Webhooks'],
        operationId: 'getWebhookSubscription',
        params: IdParams,
        response: { 200: ok(Subscription, 'The subscription', subscriptionExample), ...errorResponses(...authErrors, 404) },
      },
    },
    async (request) => webhooks.getSubscription(ctx, ws(request), request.params.id),
  );

  app.patch(
    '/api/v1/webhooks/:id',
    {
      config: { scope: 'webhooks:write' },
      schema: {
        summary: 'Update a webhook subscription',
        description: 'Changes the URL, the events or the description; fields left out stay. New events follow the new filter within seconds.',
        tags: ['Webhooks'],
        operationId: 'updateWebhookSubscription',
        params: IdParams,
        body: UpdateBody,
        response: { 200: ok(Subscription, 'The subscription as stored', { ...subscriptionExample, events: ['*'] }), ...errorResponses(400, ...authErrors, 404, 413, 415, 422) },
      },
    },
    async (request) => webhooks.updateSubscription(ctx, ws(request), request.params.id, request.body),
  );

  app.delete(
    '/api/v1/webhooks/:id',
    {
      config: { scope: 'webhooks:write' },
      schema: {
        summary: 'Delete a webhook subscription',
        description: 'Deletes the subscription with its pending deliveries and its delivery log.',
        tags: ['Webhooks'],
        operationId: 'deleteWebhookSubscription',
        params: IdParams,
        response: { 200: ok(Type.Object({ id: Type.String(), deleted: Type.Boolean() }), 'Deleted', { id: Id, deleted: true }), ...errorResponses(...authErrors, 404) },
      },
    },
    async (request) => webhooks.deleteSubscription(ctx, ws(request), request.params.id),
  );

  app.post(
    '/api/v1/webhooks/:id/rotate-secret',
    {
      config: { scope: 'webhooks:write' },
      schema: {
        summary: 'Rotate the signing secret',
        description:
          'Replaces the secret and returns the new one, once. The old secret keeps signing beside it for `grace_period_hours` (default 24, 0 ends it now): ' +
          'meanwhile `Nudge-Signature` carries one `v1` per secret, so the receiver can switch secrets without refusing a request.',
        tags: ['Webhooks'],
        operationId: 'rotateWebhookSecret',
        params: IdParams,
        body: Type.Union([Type.Object({ grace_period_hours: Type.Optional(Type.Integer({ minimum: 0, maximum: 168 })) }, { additionalProperties: false }), Type.Null()], { examples: [{ grace_period_hours: 24 }] }),
        response: {
          200: ok(SubscriptionWithSecret, 'The subscription and its new secret', { ...subscriptionExample, previous_secret_expires_at: '2026-05-08T08:14:23.000Z', secret: secretExample }),
          ...errorResponses(400, ...authErrors, 404, 413, 415, 422),
        },
      },
    },
    async (request) => webhooks.rotateSecret(ctx, ws(request), request.params.id, request.body ?? {}),
  );

  app.post(
    '/api/v1/webhooks/:id/enable',
    {
      config: { scope: 'webhooks:write' },
      schema: {
        summary: 'Enable a webhook subscription',
        description: 'Turns a disabled subscription back on: new events are queued again and paused deliveries are sent now, except those whose event is more than 3 days old, which fail.',
        tags: ['Webhooks'],
        operationId: 'enableWebhookSubscription',
        params: IdParams,
        response: { 200: ok(Enabled, 'The active subscription', { ...subscriptionExample, resumed_deliveries: 12, expired_deliveries: 0 }), ...errorResponses(...authErrors, 404) },
      },
    },
    async (request) => webhooks.enableSubscription(ctx, ws(request), request.params.id),
  );

  app.post(
    '/api/v1/webhooks/:id/disable',
    {
      config: { scope: 'webhooks:write' },
      schema: {
        summary: 'Disable a webhook subscription',
        description: 'Stops the subscription: no new events are queued for it, and its pending deliveries pause until it is enabled.',
        tags: ['Webhooks'],
        operationId: 'disableWebhookSubscription',
        params: IdParams,
        response: {
          200: ok(Subscription, 'The disabled subscription', { ...subscriptionExample, status: 'disabled', disabled_at: '2026-05-08T09:00:00.000Z', disabled_reason: 'disabled through the API' }),
          ...errorResponses(...authErrors, 404),
        },
      },
    },
    async (request) => webhooks.disableSubscription(ctx, ws(request), request.params.id),
  );

  app.post(
    '/api/v1/webhooks/:id/test',
    {
      config: { scope: 'webhooks:write' },
      schema: {
        summary: 'Send a test event',
        description: 'Queues a `webhook.test` event to the subscription, signed and retried like any other. Refused with 422 while the subscription is disabled.',
        tags: ['Webhooks'],
        operationId: 'testWebhookSubscription',
        params: IdParams,
        response: {
          202: ok(Delivery, 'The queued delivery', { ...deliveryExample, event_type: 'webhook.test', status: 'pending', attempt_count: 0, next_attempt_at: '2026-05-07T08:14:23.000Z', last_status_code: null, delivered_at: null, attempts: [], payload: { id: EventId, type: 'webhook.test', created_at: '2026-05-07T08:14:23.000Z', workspace_id: WorkspaceId, data: { subscription_id: Id, message: 'A test event from Nudge: this endpoint receives its webhooks.' } } }),
          ...errorResponses(...authErrors, 404, 422),
        },
      },
    },
    async (request, reply) => reply.code(202).send(await webhooks.sendTestEvent(ctx, ws(request), request.params.id)),
  );

  app.get(
    '/api/v1/webhooks/:id/deliveries',
    {
      config: { scope: 'webhooks:read' },
      schema: {
        summary: 'List deliveries of a webhook subscription',
        description: 'The delivery log, newest first: each event sent (or being retried) with every attempt, the status code the endpoint answered, and errors. Kept for 30 days.',
        tags: ['Webhooks'],
        operationId: 'listWebhookDeliveries',
        params: IdParams,
        querystring: Type.Object({
          status: Type.Optional(Type.Union([Type.Literal('pending'), Type.Literal('delivered'), Type.Literal('failed')])),
          cursor: Type.Optional(Type.String({ maxLength: 200 })),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
        }),
        response: { 200: ok(Type.Object({ data: Type.Array(Delivery), next_cursor: Nullable(Type.String()) }), 'A page of deliveries', { data: [deliveryExample], next_cursor: null }), ...errorResponses(...authErrors, 404, 422) },
      },
    },
    async (request) => webhooks.listDeliveries(ctx, ws(request), request.params.id, request.query),
  );

  app.post(
    '/api/v1/webhooks/:id/deliveries/:deliveryId/redeliver',
    {
      config: { scope: 'webhooks:write' },
      schema: {
        summary: 'Redeliver one event',
        description: 'Sends the delivery again now, with the same event id and body, whether it was delivered, failed or is still retrying. Refused with 422 while the subscription is disabled.',
        tags: ['Webhooks'],
        operationId: 'redeliverWebhook',
        params: Type.Object({ id: Type.String({ maxLength: 100 }), deliveryId: Type.String({ maxLength: 100 }) }),
        response: { 202: ok(Delivery, 'The delivery, queued again', { ...deliveryExample, status: 'pending', next_attempt_at: '2026-05-08T10:00:00.000Z', delivered_at: null }), ...errorResponses(...authErrors, 404, 422) },
      },
    },
    async (request, reply) => reply.code(202).send(await webhooks.redeliver(ctx, ws(request), request.params.id, request.params.deliveryId)),
  );
}
