import { Type, type TProperties } from 'typebox';
import type { Context } from '../../engine/context.js';
import * as triggers from '../../engine/polling-trigger-service.js';
import { authErrors, errorResponses, Nullable, ok, Timestamp } from '../schemas.js';
import type { App } from '../types.js';

/*
 * Polling triggers and dropdowns for integration tools: GET, newest first, at most 100
 * items, de-duplicated by the tools on `id`. The reads live in
 * engine/polling-trigger-service.ts.
 */

const Id = Type.String({ format: 'uuid', maxLength: 36 });
const Text = Nullable(Type.String());
const Option = Type.Object({ id: Type.String(), label: Type.String() });

const contactFields: TProperties = {
  contact_id: Type.String(),
  contact_phone: Nullable(Type.String({ description: 'E.164' })),
  contact_email: Text,
  contact_name: Text,
  contact_first_name: Text,
  contact_last_name: Text,
};

const MessageReceived = Type.Object({
  id: Type.String({ description: 'The message id: stable, unique, to de-duplicate on' }),
  message_type: Type.String({ description: 'text, or button (a reply button was tapped)' }),
  channel: Type.String({ description: 'whatsapp, sms or email' }),
  text: Text,
  button_id: Text,
  ...contactFields,
  session_id: Nullable(Type.String({ description: 'The flow session the reply reached, if one was waiting' })),
  flow_id: Text,
  provider_message_id: Nullable(Type.String({ description: 'The provider\u2019s id (wamid on WhatsApp)' })),
  received_at: Timestamp,
  created_at: Timestamp,
});

const sessionFields: TProperties = {
  id: Type.String({ description: 'The session id: stable, unique, to de-duplicate on' }),
  status: Type.String({ description: 'running, waiting, completed, stopped, expired or failed (now, not when it started)' }),
  source: Type.String({ description: 'What started it: api, or the trigger (tag_added, event_received…)' }),
  end_reason: Text,
  ...contactFields,
  context: Type.Object({}, { additionalProperties: true, description: 'The values it was started with ({{context.*}})' }),
  started_at: Timestamp,
  ended_at: Nullable(Timestamp),
  created_at: Timestamp,
};

const FlowTriggered = Type.Object({ ...sessionFields, flow_id: Type.String(), flow_name: Text });
const SequenceTriggered = Type.Object({ ...sessionFields, sequence_id: Type.String(), sequence_name: Text });

const CampaignSent = Type.Object({
  id: Type.String({ description: 'The broadcast id: stable, unique, to de-duplicate on' }),
  name: Type.String(),
  status: Type.String({ description: 'completed: every message was queued; delivery goes on' }),
  template_id: Type.String(),
  template_name: Text,
  language: Text,
  audience_type: Type.String({ description: 'tag, segment, list or contacts' }),
  audience_tag: Text,
  audience_segment_id: Text,
  audience_list_id: Text,
  recipients: Type.Integer({ description: 'Contacts a message was addressed to (the skipped ones aside)' }),
  skipped: Type.Integer({ description: 'Contacts left out: opted out of WhatsApp, or without a phone' }),
  scheduled_at: Nullable(Timestamp),
  started_at: Nullable(Timestamp),
  sent_at: Timestamp,
  created_at: Timestamp,
});

const contactExample = {
  contact_id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a61',
  contact_phone: '+14155550123',
  contact_email: 'ana@example.com',
  contact_name: 'Ana Silva',
  contact_first_name: 'Ana',
  contact_last_name: 'Silva',
};
const sessionExample = {
  id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a60',
  status: 'waiting',
  source: 'api',
  end_reason: null,
  ...contactExample,
  context: { order_id: 'ORD-1042' },
  started_at: '2026-05-07T08:14:23.000Z',
  ended_at: null,
  created_at: '2026-05-07T08:14:23.000Z',
};

const newestFirst = 'At most 100 items, newest first. Poll it and de-duplicate on `id`, which is the record\u2019s own id and never changes.';

export async function registerPollingTriggerRoutes(app: App, ctx: Context): Promise<void> {
  app.get(
    '/api/v1/triggers/new-message-received',
    {
      config: { scope: 'messages:read' },
      schema: {
        summary: 'New message received (polling trigger)',
        description: `Messages customers sent, with the contact who sent them. ${newestFirst} \`message_type\` (text or button) and \`channel\` filter.`,
        tags: ['Triggers'],
        operationId: 'triggerNewMessageReceived',
        querystring: Type.Object(
          {
            message_type: Type.Optional(Type.Union([Type.Literal('text'), Type.Literal('button')], { description: 'text, or button for tapped reply buttons' })),
            channel: Type.Optional(Type.Union([Type.Literal('whatsapp'), Type.Literal('sms'), Type.Literal('email')])),
          },
          { additionalProperties: false },
        ),
        response: {
          200: ok(Type.Array(MessageReceived, { maxItems: triggers.feedLimit }), 'The newest messages received', [
            {
              id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a70',
              message_type: 'text',
              channel: 'whatsapp',
              text: 'Is my order on its way?',
              button_id: null,
              ...contactExample,
              session_id: null,
              flow_id: null,
              provider_message_id: 'wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFBQUFB',
              received_at: '2026-05-07T08:14:23.000Z',
              created_at: '2026-05-07T08:14:23.000Z',
            },
          ]),
          ...errorResponses(...authErrors, 422),
        },
      },
    },
    async (request) => triggers.newMessagesReceived(ctx, request.principal!.workspaceId, request.query as { message_type?: string; channel?: string }),
  );

  app.get(
    '/api/v1/triggers/new-campaign-sent',
    {
      config: { scope: 'broadcasts:read' },
      schema: {
        summary: 'New campaign sent (polling trigger)',
        description:
          `Broadcasts that have gone out: every message queued. At most 100, most recently sent first (ordered by \`sent_at\`, so a broadcast scheduled long ago ` +
          'appears the day it is sent); de-duplicate on `id`. `template_id` filters. Delivery counts keep moving afterwards: read them from GET /api/v1/broadcasts/{id}.',
        tags: ['Triggers'],
        operationId: 'triggerNewCampaignSent',
        querystring: Type.Object({ template_id: Type.Optional(Id) }, { additionalProperties: false }),
        response: {
          200: ok(Type.Array(CampaignSent, { maxItems: triggers.feedLimit }), 'The broadcasts sent most recently', [
            {
              id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4b10',
              name: 'Spring sale',
              status: 'completed',
              template_id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a90',
              template_name: 'spring_sale',
              language: null,
              audience_type: 'tag',
              audience_tag: 'vip',
              audience_segment_id: null,
              audience_list_id: null,
              recipients: 1204,
              skipped: 31,
              scheduled_at: '2026-05-07T09:00:00.000Z',
              started_at: '2026-05-07T09:00:00.412Z',
              sent_at: '2026-05-07T09:00:03.118Z',
              created_at: '2026-05-06T16:20:00.000Z',
            },
          ]),
          ...errorResponses(...authErrors, 422),
        },
      },
    },
    async (request) => triggers.newCampaignsSent(ctx, request.principal!.workspaceId, request.query as { template_id?: string }),
  );

  app.get(
    '/api/v1/triggers/new-flow-triggered',
    {
      config: { scope: 'flows:read' },
      schema: {
        summary: 'New flow triggered (polling trigger)',
        description: `Flow sessions started, by the API or by a trigger, with the contact and the flow\u2019s name. ${newestFirst} \`flow_id\` keeps one flow\u2019s.`,
        tags: ['Triggers'],
        operationId: 'triggerNewFlowTriggered',
        querystring: Type.Object({ flow_id: Type.Optional(Id) }, { additionalProperties: false }),
        response: {
          200: ok(Type.Array(FlowTriggered, { maxItems: triggers.feedLimit }), 'The flow sessions started most recently', [
            { ...sessionExample, flow_id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c', flow_name: 'Abandoned cart 30min' },
          ]),
          ...errorResponses(...authErrors, 422),
        },
      },
    },
    async (request) => triggers.newFlowsTriggered(ctx, request.principal!.workspaceId, request.query as { flow_id?: string }),
  );

  app.get(
    '/api/v1/triggers/new-sequence-triggered',
    {
      config: { scope: 'sequences:read' },
      schema: {
        summary: 'New sequence triggered (polling trigger)',
        description: `Sequence sessions started, by the API or by a trigger, with the contact and the sequence\u2019s name. ${newestFirst} \`sequence_id\` keeps one sequence\u2019s.`,
        tags: ['Triggers'],
        operationId: 'triggerNewSequenceTriggered',
        querystring: Type.Object({ sequence_id: Type.Optional(Id) }, { additionalProperties: false }),
        response: {
          200: ok(Type.Array(SequenceTriggered, { maxItems: triggers.feedLimit }), 'The sequence sessions started most recently', [
            { ...sessionExample, status: 'running', sequence_id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b', sequence_name: 'Welcome 7-day' },
          ]),
          ...errorResponses(...authErrors, 422),
        },
      },
    },
    async (request) => triggers.newSequencesTriggered(ctx, request.principal!.workspaceId, request.query as { sequence_id?: string }),
  );

  for (const kind of ['sequence', 'flow'] as const) {
    const plural = kind === 'sequence' ? ('sequences' as const) : ('flows' as const);
    app.get(
      `/api/v1/dropdowns/${plural}`,
      {
        config: { scope: `${plural}:read` },
        schema: {
          summary: `${kind === 'sequence' ? 'Sequences' : 'Flows'} for a picker`,
          description: `Published (active) ${plural}, the ones trigger-${kind} can start, alphabetical, as \`{id, label}\` with the name as label.`,
          tags: ['Dropdowns'],
          operationId: kind === 'sequence' ? 'dropdownSequences' : 'dropdownFlows',
          response: {
            200: ok(Type.Array(Option), 'Options', [{ id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b', label: kind === 'sequence' ? 'Welcome 7-day' : 'Abandoned cart 30min' }]),
            ...errorResponses(...authErrors),
          },
        },
      },
      async (request) => triggers.definitionDropdown(ctx, request.principal!.workspaceId, kind),
    );
  }
}
