import { z } from 'zod';
import type { DefinitionKind } from '../domain/definition.js';
import { notFound } from '../domain/errors.js';
import { isUuid } from '../domain/ids.js';
import type { Context } from '../engine/context.js';
import * as definitions from '../engine/definition-service.js';
import { triggerDefinition } from '../engine/enrollment-service.js';
import { defineTool, reads, type Tool } from './tool-kit.js';

/*
 * Sequences and flows: list, get, create (as a draft) and trigger, through the same
 * definition and enrollment services as api/routes/definitions.ts. Publishing stays
 * with a person (dashboard or REST): a draft an agent writes does not reach customers
 * until someone publishes it.
 */

const json = z.record(z.string(), z.unknown());

const stepsHelp: Record<DefinitionKind, string> = {
  sequence:
    'steps: a linear list run in order; each step may carry delay {days, hours, minutes, seconds} waited before it. ' +
    'Message steps: {type: "whatsapp" | "sms", text} or {type: "email", subject, html} (a step without type is an email), ' +
    'with merge tags such as {{contact.first_name|there}} and {{context.order_id}}. Other steps: add_tag/remove_tag {tag}, exit. ' +
    'Example: [{"type": "whatsapp", "text": "Hi {{contact.first_name|there}}!"}, {"type": "whatsapp", "delay": {"days": 1}, "text": "Day 2 tips"}].',
  flow:
    'graph: {entry, nodes, edges}. Nodes: send_message {id, channel, content: {text, buttons?: [{id, title}]}}, wait_for_reply {id, timeout: {minutes}, ' +
    'branches: [{id, match: {type: "button", button_id} | {type: "keyword", keywords} | {type: "any"}}]}, delay, condition, add_tag, remove_tag, exit. ' +
    'Edges: {from, to, branch?}; a wait_for_reply node leads on by branch id, or by "timeout". A linear steps list (whatsapp by default) is accepted too.',
};

function labels(kind: DefinitionKind) {
  const plural = kind === 'sequence' ? ('sequences' as const) : ('flows' as const);
  return { plural, Label: kind === 'sequence' ? 'Sequence' : 'Flow', idField: `${kind}_id` as const };
}

/** A definition id as the routes take it: anything that is not a UUID names no definition. */
function requireId(kind: DefinitionKind, id: string): string {
  if (!isUuid(id)) throw notFound(labels(kind).Label);
  return id;
}

function definitionTools(ctx: Context, kind: DefinitionKind): Tool[] {
  const { plural, Label, idField } = labels(kind);
  const what =
    kind === 'sequence'
      ? 'sequences (time-spaced, multi-step campaigns that run for days)'
      : 'flows (short branching conversations that wait for the customer’s reply, with timeouts in minutes)';
  const idArg = z.string().max(100).describe(`The ${kind} id (UUID), from list_${plural}`);
  const resourceShape = `A ${kind} is {id, name, description, status (draft, active, paused, archived), trigger, triggerConfig, settings, steps, graph, hasUnpublishedChanges, currentVersionId, sessionsCount, publishedAt, createdAt, updatedAt}.`;

  const createInput = {
    name: z.string().min(1).max(200).describe('Name shown in the dashboard'),
    description: z.string().max(2000).optional(),
    steps: z
      .array(json)
      .max(200)
      .optional()
      .describe(`A linear list of steps run in order (see the tool description); each may carry delay {days, hours, minutes, seconds}. Messages without type are ${kind === 'sequence' ? 'emails' : 'WhatsApp messages'}.`),
    graph: json.optional().describe('The node graph {entry, nodes: [...], edges: [{from, to, branch?}]}; give steps or graph, not both'),
    settings: json.optional().describe(kind === 'flow' ? '{session_ttl_minutes}: how long a session may wait before it expires (default 30)' : 'Definition settings'),
    trigger: z
      .string()
      .max(50)
      .optional()
      .describe('How sessions start: api (the default: trigger_' + kind + '), contact_added, tag_added (with tagName), segment_entered (segmentId), event_received, inactivity or frequency (eventName)'),
    tagName: z.string().max(100).optional().describe('tag_added: the tag that starts it'),
    listId: z.string().max(100).optional().describe('contact_added: the list whose new members start it'),
    segmentId: z.string().max(100).optional().describe('segment_entered: the segment'),
    eventName: z.string().max(200).optional().describe('event_received, inactivity, frequency: the event name'),
    inactiveDays: z.number().int().min(1).max(3650).optional().describe('inactivity: days without eventName'),
    minCount: z.number().int().min(1).optional().describe('frequency: how many times eventName must occur…'),
    timeWindowDays: z.number().int().min(1).max(3650).optional().describe('…within this many days'),
    enrollmentMode: z.string().max(20).optional().describe('unlimited (default), one_time, or matching_field (event_received only)'),
    enrollmentFieldPath: z.string().max(500).optional().describe('matching_field: the event property path that keys each run, e.g. order.id'),
    stopCondition: json.optional().describe('{type, value}: has_tag, does_not_have_tag, event_received, added_to_list, removed_from_list, or none'),
  };

  return [
    defineTool({
      name: `list_${plural}`,
      title: `List ${plural}`,
      description:
        `Lists the workspace’s ${what}, oldest first, a page at a time. Use it to find the id to pass to get_${kind} or trigger_${kind}; ` +
        `only active (published) ones can be triggered. Returns {data: [${kind}], next_cursor}. ${resourceShape}`,
      scope: `${plural}:read`,
      input: {
        status: z.enum(['draft', 'active', 'paused', 'archived']).optional().describe('Only those with this status'),
        limit: z.number().int().min(1).max(200).optional().describe('Page size, 1 to 200 (default 50)'),
        cursor: z.string().max(200).optional().describe('next_cursor of the previous page'),
      },
      annotations: reads,
      run: (args, workspaceId) => definitions.listDefinitions(ctx, workspaceId, kind, { limit: args.limit ?? 50, cursor: args.cursor, status: args.status }),
    }),
    defineTool({
      name: `get_${kind}`,
      title: `Get a ${kind}`,
      description: `Reads one ${kind} with its draft (steps or graph), status, trigger and how many sessions it has. ${resourceShape}`,
      scope: `${plural}:read`,
      input: { [idField]: idArg } as Record<string, z.ZodString>,
      annotations: reads,
      run: (args, workspaceId) => definitions.getDefinition(ctx, workspaceId, kind, requireId(kind, args[idField]!)),
    }),
    defineTool({
      name: `create_${kind}`,
      title: `Create a ${kind} (draft)`,
      description:
        `Creates a ${kind} as a DRAFT: it does not run and cannot be triggered until a person publishes it (dashboard, or POST /api/v1/${plural}/{id}/publish). ` +
        `Nothing is sent. Every problem in the steps or graph is reported by field. ${stepsHelp[kind]} Returns {message, ${kind}}.`,
      scope: `${plural}:write`,
      input:
        kind === 'sequence'
          ? {
              ...createInput,
              goal: z.string().max(4000).optional().describe('Instead of steps: what the sequence should achieve; the emails are written by the server’s AI endpoint when one is configured'),
              emailCount: z.number().int().min(1).max(10).optional().describe('With goal: how many emails to write (default 5)'),
            }
          : createInput,
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
      run: async (args, workspaceId) => {
        const resource = await definitions.createDefinition(ctx, workspaceId, kind, args as definitions.DefinitionInput);
        const message = resource.enrichment?.status === 'pending' ? definitions.aiWritingMessage : `${Label} created as a draft.`;
        return { message, [kind]: resource };
      },
    }),
    defineTool({
      name: `trigger_${kind}`,
      title: `Start a ${kind} for a contact`,
      description:
        `Starts a published ${kind} for one contact, named by contact_id, or by phone (the contact is created when new). ` +
        `SIDE EFFECT: the ${kind} then sends its messages to that contact${kind === 'sequence' ? ' over the following days' : ' and waits for replies'}. ` +
        `Safe to retry: when the contact already runs this ${kind}, returns status already_running and starts nothing. ` +
        `Returns {id (the session id, for get_session), status: started | already_running, ${kind}_id, ${kind}_name, contact_id}.`,
      scope: `${plural}:execute`,
      input: {
        [idField]: z.string().max(100).describe(`A published (active) ${kind} id, from list_${plural}`),
        contact_id: z.string().max(100).optional().describe('An existing contact (give contact_id or phone)'),
        phone: z.string().max(40).optional().describe('Finds or creates the contact by phone, E.164 such as +14155550123'),
        context: json.optional().describe('Free-form values the messages can use as {{context.*}}, e.g. {"order_id": "ORD-1042"}'),
      } as Record<string, z.ZodOptional<z.ZodType> | z.ZodString>,
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: true },
      run: async (args, workspaceId) => {
        const input = args as { contact_id?: string; phone?: string; context?: Record<string, unknown> };
        const outcome = await triggerDefinition(ctx, ctx.versions, workspaceId, kind, {
          definitionId: String(args[idField]),
          contactId: input.contact_id,
          phone: input.phone,
          context: input.context,
        });
        if (!outcome.created) return { id: outcome.sessionId, status: 'already_running', message: `Contact is already in this ${kind}`, contact_id: outcome.contactId };
        return { id: outcome.sessionId, status: 'started', [idField]: outcome.definitionId, [`${kind}_name`]: outcome.definitionName, contact_id: outcome.contactId };
      },
    }),
  ];
}

export function sequenceTools(ctx: Context): Tool[] {
  return definitionTools(ctx, 'sequence');
}

export function flowTools(ctx: Context): Tool[] {
  return definitionTools(ctx, 'flow');
}
