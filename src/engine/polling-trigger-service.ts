import type { Audience } from '../domain/broadcast.js';
import { isoTime } from '../domain/clock.js';
import { invalid } from '../domain/errors.js';
import { isUuid } from '../domain/ids.js';
import { parseJson } from '../domain/json.js';
import * as feeds from '../store/polling-trigger-repository.js';
import type { Context } from './context.js';

/**
 * Polling triggers for integration tools (n8n, Zapier, Make): each answers the newest
 * items first, at most `feedLimit`, as flat snake_case objects with ISO times, the
 * contact's phone, email and name alongside its id, and an `id` that is the stored
 * record's own id, so it never changes and a tool that de-duplicates on it sees each
 * item once. Dropdowns answer `{id, label}` lists for the tools' form pickers.
 */

export const feedLimit = 100;

export interface MessageReceivedItem {
  id: string;
  message_type: string;
  channel: string;
  text: string | null;
  button_id: string | null;
  contact_id: string;
  contact_phone: string | null;
  contact_email: string | null;
  contact_name: string | null;
  contact_first_name: string | null;
  contact_last_name: string | null;
  /** The flow session the reply was routed to, if one was waiting for it. */
  session_id: string | null;
  flow_id: string | null;
  provider_message_id: string | null;
  received_at: string;
  created_at: string;
}

function uuidFilter(field: string, value: string | undefined): string | undefined {
  if (value === undefined || value === '') return undefined;
  if (!isUuid(value)) throw invalid(field, 'must be an id (UUID)');
  return value.toLowerCase();
}

/** Inbound messages, newest first; `message_type` (text, button) and `channel` filter. */
export async function newMessagesReceived(ctx: Context, workspaceId: string, filter: { message_type?: string; channel?: string } = {}): Promise<MessageReceivedItem[]> {
  const rows = await feeds.recentInbound(ctx.database.db, workspaceId, { kind: filter.message_type, channel: filter.channel, limit: feedLimit });
  return rows.map((r) => {
    const content = parseJson<{ text?: unknown; button_id?: unknown }>(r.content, {});
    return {
      id: r.id,
      message_type: r.kind,
      channel: r.channel,
      text: typeof content.text === 'string' ? content.text : null,
      button_id: typeof content.button_id === 'string' ? content.button_id : null,
      contact_id: r.contact_id,
      contact_phone: r.phone,
      contact_email: r.email,
      contact_name: r.name ?? ([r.first_name, r.last_name].filter(Boolean).join(' ') || null),
      contact_first_name: r.first_name,
      contact_last_name: r.last_name,
      session_id: r.session_id,
      flow_id: r.definition_id,
      provider_message_id: r.provider_message_id,
      received_at: isoTime(r.created_at),
      created_at: isoTime(r.created_at),
    };
  });
}

export interface SessionStartedItem {
  id: string;
  status: string;
  source: string;
  end_reason: string | null;
  contact_id: string;
  contact_phone: string | null;
  contact_email: string | null;
  contact_name: string | null;
  contact_first_name: string | null;
  contact_last_name: string | null;
  /** The caller's values given when it was started (`{{context.*}}`). */
  context: Record<string, unknown>;
  started_at: string;
  ended_at: string | null;
  created_at: string;
}

export type FlowTriggeredItem = SessionStartedItem & { flow_id: string; flow_name: string | null };
export type SequenceTriggeredItem = SessionStartedItem & { sequence_id: string; sequence_name: string | null };

async function sessionsStarted(ctx: Context, workspaceId: string, kind: 'sequence' | 'flow', definitionId: string | undefined) {
  const rows = await feeds.recentSessions(ctx.database.db, workspaceId, kind, { definitionId, limit: feedLimit });
  return rows.map((r) => ({
    row: r,
    item: {
      id: r.id,
      status: r.status,
      source: r.source,
      end_reason: r.end_reason,
      contact_id: r.contact_id,
      contact_phone: r.phone,
      contact_email: r.email,
      contact_name: r.name ?? ([r.first_name, r.last_name].filter(Boolean).join(' ') || null),
      contact_first_name: r.first_name,
      contact_last_name: r.last_name,
      context: parseJson<Record<string, unknown>>(r.context, {}),
      started_at: isoTime(r.created_at),
      ended_at: isoTime(r.ended_at),
      created_at: isoTime(r.created_at),
    } satisfies SessionStartedItem,
  }));
}

/** Flow sessions started, newest first; `flow_id` keeps one flow's. */
export async function newFlowsTriggered(ctx: Context, workspaceId: string, filter: { flow_id?: string } = {}): Promise<FlowTriggeredItem[]> {
  const started = await sessionsStarted(ctx, workspaceId, 'flow', uuidFilter('flow_id', filter.flow_id));
  return started.map(({ row, item }) => ({ ...item, flow_id: row.definition_id, flow_name: row.definition_name }));
}

/** Sequence sessions started, newest first; `sequence_id` keeps one sequence's. */
export async function newSequencesTriggered(ctx: Context, workspaceId: string, filter: { sequence_id?: string } = {}): Promise<SequenceTriggeredItem[]> {
  const started = await sessionsStarted(ctx, workspaceId, 'sequence', uuidFilter('sequence_id', filter.sequence_id));
  return started.map(({ row, item }) => ({ ...item, sequence_id: row.definition_id, sequence_name: row.definition_name }));
}

export interface CampaignSentItem {
  id: string;
  name: string;
  status: string;
  template_id: string;
  template_name: string | null;
  language: string | null;
  audience_type: string;
  audience_tag: string | null;
  audience_segment_id: string | null;
  audience_list_id: string | null;
  /** Contacts a message was addressed to (the skipped ones aside). */
  recipients: number;
  /** Contacts left out: opted out of WhatsApp, or without a phone. */
  skipped: number;
  scheduled_at: string | null;
  started_at: string | null;
  sent_at: string;
  created_at: string;
}

/**
 * Broadcasts sent (every message queued), most recently sent first; `template_id`
 * filters. Delivery counts keep moving after this point: GET /api/v1/broadcasts/{id}
 * has them.
 */
export async function newCampaignsSent(ctx: Context, workspaceId: string, filter: { template_id?: string } = {}): Promise<CampaignSentItem[]> {
  const rows = await feeds.recentlySentBroadcasts(ctx.database.db, workspaceId, { templateId: uuidFilter('template_id', filter.template_id), limit: feedLimit });
  return rows.map((r) => {
    const audience = parseJson<Partial<Audience> & { type?: string }>(r.audience, {});
    return {
      id: r.id,
      name: r.name,
      status: r.status,
      template_id: r.template_id,
      template_name: r.template_name,
      language: r.language,
      audience_type: audience.type ?? 'contacts',
      audience_tag: 'tag' in audience && typeof audience.tag === 'string' ? audience.tag : null,
      audience_segment_id: 'segment_id' in audience && typeof audience.segment_id === 'string' ? audience.segment_id : null,
      audience_list_id: 'list_id' in audience && typeof audience.list_id === 'string' ? audience.list_id : null,
      recipients: r.recipients,
      skipped: r.skipped,
      scheduled_at: isoTime(r.scheduled_at),
      started_at: isoTime(r.started_at),
      sent_at: isoTime(r.completed_at),
      created_at: isoTime(r.created_at),
    };
  });
}

/** Published (active) sequences or flows for a picker, alphabetical: the ones a trigger action can start. */
export async function definitionDropdown(ctx: Context, workspaceId: string, kind: 'sequence' | 'flow'): Promise<Array<{ id: string; label: string }>> {
  const rows = await feeds.activeDefinitionOptions(ctx.database.db, workspaceId, kind, 1000);
  return rows.map((r) => ({ id: r.id, label: r.name }));
}
