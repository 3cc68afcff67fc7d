import { z } from 'zod';
import { broadcastStatuses, maxListedContacts } from '../domain/broadcast.js';
import * as broadcasts from '../engine/broadcast-service.js';
import type { Context } from '../engine/context.js';
import { defineTool, reads, type Tool } from './tool-kit.js';

/*
 * Broadcasts (one approved WhatsApp template to many contacts, now or later): the
 * services behind api/routes/broadcasts.ts. Creating one sends nothing; send_broadcast
 * and a scheduled time do.
 */

const broadcastId = z.string().max(100).describe('The broadcast id (UUID), from create_broadcast or list_broadcasts');
const scheduledAt = z.string().max(40).describe('ISO 8601 date-time with a time zone, e.g. 2026-05-07T09:00:00Z; not in the past');

const audience = z
  .object({
    tag: z.string().max(100).optional().describe('Every contact with this tag (ignoring case); see list_tags'),
    segment_id: z.string().max(36).optional().describe('Every member of this segment'),
    list_id: z.string().max(36).optional().describe('Every member of this list'),
    contact_ids: z.array(z.string().max(36)).max(maxListedContacts).optional().describe(`These contacts by id (at most ${maxListedContacts})`),
  })
  .strict()
  .describe('Who receives it: exactly one of tag, segment_id, list_id or contact_ids, e.g. {"tag": "vip"}. A tag, list or segment is read when it is sent.');

const broadcastShape =
  'A broadcast is {id, name, status (draft, scheduled, sending, completed, failed, cancelled), template_id, template_name, language, variables, audience, ' +
  'scheduled_at, started_at, completed_at, recipients (contacts a message was addressed to), skipped (opted out of WhatsApp or without a phone), ' +
  'counts {queued, sent, delivered, read, failed, skipped, cancelled}, error, created_at, updated_at}.';

export function broadcastTools(ctx: Context): Tool[] {
  return [
    defineTool({
      name: 'list_broadcasts',
      title: 'List broadcasts',
      description:
        'Lists the workspace’s broadcasts (one WhatsApp template sent to many contacts), newest first, a page at a time, with their delivery counts. ' +
        `Returns {data: [broadcast], next_cursor}; pass next_cursor back as cursor for the next page. ${broadcastShape}`,
      scope: 'broadcasts:read',
      input: {
        status: z.enum(broadcastStatuses as [string, ...string[]]).optional().describe('Only broadcasts with this status'),
        limit: z.number().int().min(1).max(100).optional().describe('Page size, 1 to 100 (default 20)'),
        cursor: z.string().max(200).optional().describe('next_cursor of the previous page'),
      },
      annotations: reads,
      run: (args, workspaceId) => broadcasts.listBroadcasts(ctx, workspaceId, args),
    }),
    defineTool({
      name: 'get_broadcast',
      title: 'Get a broadcast',
      description:
        'Reads one broadcast with its status and counts of queued, sent, delivered, read, failed, skipped and cancelled messages; the counts move as providers report delivery. ' +
        `Returns the broadcast, or an error with code not_found. ${broadcastShape}`,
      scope: 'broadcasts:read',
      input: { broadcast_id: broadcastId },
      annotations: reads,
      run: (args, workspaceId) => broadcasts.getBroadcast(ctx, workspaceId, args.broadcast_id),
    }),
    defineTool({
      name: 'create_broadcast',
      title: 'Create a broadcast (draft or scheduled)',
      description:
        'Saves a broadcast of an APPROVED WhatsApp template (list_templates, get_template) to an audience. Without scheduled_at it is a draft and sends nothing ' +
        'until send_broadcast; WITH scheduled_at it WILL SEND to the whole audience at that time unless cancelled. variables fill the template’s placeholders ' +
        '(keys "1", "2", "header_1", "button_0" as get_template lists them) and may use contact merge tags rendered per recipient, with a fallback after |: ' +
        '{"1": "{{contact.first_name|there}}"}. Every placeholder must be given, and nothing else. Contacts who opted out of WhatsApp, and contacts without a phone, are skipped. ' +
        `Errors name the field to fix (template_id, variables.2, audience.tag, scheduled_at). Returns the broadcast. ${broadcastShape}`,
      scope: 'broadcasts:write',
      input: {
        name: z.string().min(1).max(200).optional().describe('Shown in lists; defaults to the template name'),
        template_id: z.string().max(100).describe('An approved template id, from list_templates'),
        language: z.string().max(20).optional().describe('Send everyone this approved language (e.g. en_US); otherwise each contact gets their own language when the template has it'),
        variables: z.record(z.string().max(20), z.string().max(1024)).optional().describe('Placeholder values by key: {"1": "{{contact.first_name|there}}", "2": "SPRING20"}'),
        audience,
        scheduled_at: scheduledAt.optional().describe('When to send it (ISO 8601 with a zone, e.g. 2026-05-07T09:00:00Z). Leave out to save a draft.'),
      },
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: true },
      run: (args, workspaceId) => broadcasts.createBroadcast(ctx, workspaceId, args),
    }),
    defineTool({
      name: 'send_broadcast',
      title: 'Send a broadcast now',
      description:
        'SENDS REAL MESSAGES to every contact of the broadcast’s audience, starting now: a draft or scheduled broadcast becomes sending, and its messages go out ' +
        'under the provider’s rate limit; follow progress with get_broadcast. The template and audience are checked again first (an audience with no contacts is an error). ' +
        'A broadcast already sending or sent is an error (code business_rule). Returns the broadcast.',
      scope: 'broadcasts:write',
      input: { broadcast_id: broadcastId },
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: true },
      run: (args, workspaceId) => broadcasts.sendBroadcast(ctx, workspaceId, args.broadcast_id),
    }),
    defineTool({
      name: 'schedule_broadcast',
      title: 'Schedule a broadcast',
      description:
        'Schedules a draft broadcast, or moves a scheduled one, to scheduled_at: it WILL SEND to its whole audience at that time unless cancelled (cancel_broadcast). ' +
        'A broadcast already sending or sent is an error (code business_rule). Returns the broadcast.',
      scope: 'broadcasts:write',
      input: { broadcast_id: broadcastId, scheduled_at: scheduledAt },
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: true },
      run: (args, workspaceId) => broadcasts.scheduleBroadcast(ctx, workspaceId, args.broadcast_id, { scheduled_at: args.scheduled_at }),
    }),
    defineTool({
      name: 'cancel_broadcast',
      title: 'Cancel a broadcast',
      description:
        'Cancels a scheduled broadcast so it never goes out, or stops one that is sending: no further contact is messaged and its messages still waiting are cancelled ' +
        '(those already handed to WhatsApp are not recalled). Anything else (a draft, a completed broadcast) is an error (code business_rule). Returns the broadcast with its final counts.',
      scope: 'broadcasts:write',
      input: { broadcast_id: broadcastId },
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: false },
      run: (args, workspaceId) => broadcasts.cancelBroadcast(ctx, workspaceId, args.broadcast_id),
    }),
  ];
}
