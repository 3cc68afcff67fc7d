import { newId } from '../domain/ids.js';
import type { Db, Tx } from '../store/database.js';
import * as sessions from '../store/session-repository.js';
import type { Context } from './context.js';
import type { LoadedVersion } from './version-cache.js';
import { emitWebhookEvent, sessionData } from './webhook-emitter.js';

/** The definition a session starts in, as the enrollment paths have loaded it. */
export interface StartTarget {
  id: string;
  workspace_id: string;
  kind: 'sequence' | 'flow';
  /** The published stop condition (see definition-service triggerColumns). */
  stop_type?: string | null;
  stop_key?: string | null;
}

export interface SessionStart {
  definition: StartTarget;
  version: LoadedVersion;
  contactId: string;
  enrollmentKey: string;
  /** The caller's bag (`{{context.*}}`), as JSON. */
  context: string;
  /** The event that enrolled the contact (`{{event.*}}`), as JSON, or null. */
  event: string | null;
  source: string;
}

export interface StartedSession {
  /** False when the contact already had an active session for this definition and key, or was skipped. */
  created: boolean;
  /** The new session, or the active one that stopped this start. */
  sessionId: string | null;
  /** Why no session started although none was running. */
  skipped?: 'stop_condition_met';
}

const defaultFlowTtlMinutes = 30;

/**
 * Every enrollment ends here, inside the caller's transaction: the API trigger, bulk
 * enrollment, and the automation (tags, lists, segments, events, inactivity). The
 * insert races on the partial unique index (definition, contact, enrollment key)
 * where active = 1, so concurrent starts for the same run make exactly one session.
 */
export async function startSession(ctx: Context, trx: Tx | Db, start: SessionStart): Promise<StartedSession> {
  const { definition, version } = start;
  // A run that its stop condition would end at once is not started: an onboarding that
  // stops when the contact becomes a customer does not begin for a customer.
  if (await meetsStopCondition(trx, definition, start.contactId)) return { created: false, sessionId: null, skipped: 'stop_condition_met' };
  const now = ctx.clock.now();
  const ttlMinutes = definition.kind === 'flow' ? Number(version.body.settings.session_ttl_minutes ?? defaultFlowTtlMinutes) : null;
  const sessionId = newId(now);
  const inserted = await sessions.insertSessionIfNoneActive(trx, {
    id: sessionId,
    workspace_id: definition.workspace_id,
    definition_id: definition.id,
    version_id: version.id,
    kind: definition.kind,
    contact_id: start.contactId,
    status: 'running',
    active: 1,
    enrollment_key: start.enrollmentKey,
    current_node: version.graph.entry,
    wake_at: now,
    expires_at: ttlMinutes === null ? null : now + ttlMinutes * 60_000,
    context: start.context,
    event: start.event,
    state: '{"visits":{}}',
    source: start.source,
    end_reason: null,
    steps_run: 0,
    created_at: now,
    updated_at: now,
    ended_at: null,
  });
  if (inserted) {
    await emitWebhookEvent(ctx, trx, definition.workspace_id, 'session.started', () =>
      sessionData({ id: sessionId, kind: definition.kind, definition_id: definition.id, contact_id: start.contactId, status: 'running', end_reason: null, created_at: now, ended_at: null }),
    );
    return { created: true, sessionId };
  }
  const existing = await sessions.findActiveSession(trx, definition.id, start.contactId, start.enrollmentKey);
  return { created: false, sessionId: existing?.id ?? null };
}

/** has_tag and added_to_list describe a state the contact can already be in; the others are changes. */
export async function meetsStopCondition(trx: Tx | Db, definition: StartTarget, contactId: string): Promise<boolean> {
  const key = definition.stop_key ?? null;
  if (key === null) return false;
  if (definition.stop_type === 'has_tag') {
    const row = await trx
      .selectFrom('contact_tags')
      .innerJoin('tags', 'tags.id', 'contact_tags.tag_id')
      .select('contact_tags.contact_id')
      .where('contact_tags.contact_id', '=', contactId)
      .where('tags.workspace_id', '=', definition.workspace_id)
      .where('tags.name_key', '=', key)
      .executeTakeFirst();
    return row !== undefined;
  }
  if (definition.stop_type === 'added_to_list') {
    const row = await trx.selectFrom('list_members').select('contact_id').where('list_id', '=', key).where('contact_id', '=', contactId).executeTakeFirst();
    return row !== undefined;
  }
  return false;
}
