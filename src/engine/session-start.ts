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
  /** False when the contact already had an active session for this definition and key. */
  created: boolean;
  /** The new session, or the active one that stopped this start. */
  sessionId: string | null;
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
