import { z } from 'zod';
import type { Context } from '../engine/context.js';
import * as sessions from '../engine/session-service.js';
import { defineTool, reads, type Tool } from './tool-kit.js';

/* Sessions (one contact inside one sequence or flow): the services behind api/routes/sessions.ts. */

const sessionId = z.string().max(100).describe('The session id (UUID), as returned by trigger_sequence, trigger_flow or list_sessions');
const sessionShape =
  'A session is {id, kind, definition_id, version_id, contact_id, status (running, waiting, completed, stopped, expired, failed), current_node, wake_at, expires_at, context, event, enrollment_key, source, end_reason, steps_run, created_at, updated_at, ended_at}.';

export function sessionTools(ctx: Context): Tool[] {
  return [
    defineTool({
      name: 'list_sessions',
      title: 'List sessions',
      description:
        'Lists sessions of sequences and flows, newest first, a page at a time: which contacts are in which sequence or flow, and how far they got. ' +
        `Filter by definition_id (a sequence or flow id), contact_id, status or kind. Returns {data: [session], next_cursor}. ${sessionShape}`,
      scope: 'sessions:read',
      input: {
        definition_id: z.string().max(36).optional().describe('Only sessions of this sequence or flow'),
        contact_id: z.string().max(36).optional().describe('Only sessions of this contact'),
        status: z.enum(['running', 'waiting', 'completed', 'stopped', 'expired', 'failed']).optional(),
        kind: z.enum(['sequence', 'flow']).optional(),
        limit: z.number().int().min(1).max(200).optional().describe('Page size, 1 to 200 (default 50)'),
        cursor: z.string().max(200).optional().describe('next_cursor of the previous page'),
      },
      annotations: reads,
      run: (args, workspaceId) => sessions.listSessions(ctx, workspaceId, args),
    }),
    defineTool({
      name: 'get_session',
      title: 'Get a session and its history',
      description:
        'Reads one session with its history: every node visited in order, what it did (message queued, waiting for a reply, branch taken) and when. ' +
        `Use it to see where a contact is in a sequence or flow and why. Returns the session with history [{node_id, node_type, visit, outcome, detail, at}]. ${sessionShape}`,
      scope: 'sessions:read',
      input: { session_id: sessionId },
      annotations: reads,
      run: (args, workspaceId) => sessions.getSession(ctx, workspaceId, args.session_id),
    }),
    defineTool({
      name: 'stop_session',
      title: 'Stop a session',
      description:
        'Ends a running or waiting session now: the contact gets no further messages from it and its queued, unsent messages are cancelled. ' +
        'A session that has already ended is an error (code business_rule). Returns the stopped session with its history.',
      scope: 'sessions:write',
      input: { session_id: sessionId, reason: z.string().max(500).optional().describe('Recorded as the end reason, e.g. "customer asked to stop"') },
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: false },
      run: (args, workspaceId) => sessions.stopSession(ctx, workspaceId, args.session_id, args.reason),
    }),
  ];
}
