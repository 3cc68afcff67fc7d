import type { DefinitionKind } from '../domain/definition.js';
import { AppError, invalid, notFound } from '../domain/errors.js';
import { newId, isUuid } from '../domain/ids.js';
import { isPlainObject, nestsDeeperThan, toJson } from '../domain/json.js';
import { normalizePhone } from '../domain/phone.js';
import { rawIn } from '../store/database.js';
import * as definitions from '../store/definition-repository.js';
import * as contacts from '../store/engine-contact-repository.js';
import { applyContactChanges } from './automation.js';
import type { Context } from './context.js';
import { startSession } from './session-start.js';
import type { VersionCache } from './version-cache.js';
import { keptDefinition } from './lookup-cache.js';

export interface TriggerInput {
  definitionId: string;
  contactId?: string;
  phone?: string;
  context?: unknown;
  source?: string;
  enrollmentKey?: string;
  event?: Record<string, unknown> | null;
}

export interface TriggerOutcome {
  created: boolean;
  sessionId: string;
  definitionId: string;
  definitionName: string;
  contactId: string;
}

/**
 * Starts a published definition for a contact, or reports the session already running.
 * The insert races on the partial unique index (definition, contact, enrollment key)
 * where active = 1: fifty identical concurrent calls make exactly one session.
 */
export async function triggerDefinition(ctx: Context, cache: VersionCache, workspaceId: string, kind: DefinitionKind, input: TriggerInput): Promise<TriggerOutcome> {
  const label = kind === 'sequence' ? 'Sequence' : 'Flow';
  const idField = kind === 'sequence' ? 'sequence_id' : 'flow_id';
  if (!isUuid(input.definitionId)) throw notFound(label);
  if (input.contactId === undefined && input.phone === undefined) {
    throw new AppError('validation_failed', 'Either contact_id or phone is required', {
      errors: { contact_id: ['contact_id or phone is required'], phone: ['contact_id or phone is required'] },
    });
  }
  if (input.context !== undefined && !isPlainObject(input.context)) throw invalid('context', 'must be an object');
  if (nestsDeeperThan(input.context, 16)) throw invalid('context', 'must not nest objects or arrays more than 16 levels deep');
  const contextJson = toJson(input.context ?? {});
  if (contextJson.length > 32_768) throw invalid('context', 'must be at most 32 KiB as JSON');

  const db = ctx.database.db;
  const definition = await ctx.lookups.definition(`${workspaceId}:${kind}:${input.definitionId}`, async () => keptDefinition(await definitions.findDefinition(db, workspaceId, kind, input.definitionId)));
  if (!definition || definition.status !== 'active' || definition.current_version_id === null) {
    throw new AppError('not_found', `${label} not found or not published`, { errors: { [idField]: [`${label} not found or not published`] } });
  }
  if (definition.enrollments_paused === 1) {
    // As enroll, execute and the automations do: a paused sequence keeps its running sessions and starts none.
    throw new AppError('business_rule', `The ${kind}'s enrollments are paused: resume them to start new contacts`, { extra: { reason: 'enrollments_paused' } });
  }
  const version = (await cache.load(db, [definition.current_version_id])).get(definition.current_version_id);
  if (!version || version.graph.entry === null) {
    throw new AppError('no_entry_node', `${label} has no entry node: its graph is empty`);
  }

  const now = ctx.clock.now();
  let phone: string | null = null;
  if (input.contactId === undefined) {
    phone = normalizePhone(String(input.phone), ctx.config.defaultCountry);
    if (phone === null) throw invalid('phone', 'must be a valid phone number in international format, e.g. +14155550123');
  } else if (!isUuid(input.contactId)) {
    throw new AppError('not_found', 'Contact not found', { errors: { contact_id: ['Contact not found'] } });
  }

  const enrollmentKey = input.enrollmentKey ?? '';
  // One transaction: the contact upsert and the session commit together, with one commit's cost.
  const { started, contactId } = await ctx.database.transact(async (trx) => {
    let contactId: string;
    if (phone === null) {
      const found = await contacts.findContactById(trx, workspaceId, input.contactId!);
      if (!found) throw new AppError('not_found', 'Contact not found', { errors: { contact_id: ['Contact not found'] } });
      contactId = found.id;
    } else {
      const upserted = await contacts.upsertContactByPhone(trx, { id: newId(now), workspace_id: workspaceId, phone, source: input.source ?? 'api', now, optedIn: true }, rawIn(ctx.database, trx));
      contactId = upserted.contact.id;
      // A contact created here is a new contact like any other: contact_added sequences start for it.
      if (upserted.created) await applyContactChanges(ctx, trx, workspaceId, [{ contactId, created: true }], 'api');
    }
    const started = await startSession(ctx, trx, {
      definition,
      version,
      contactId,
      enrollmentKey,
      context: contextJson,
      event: input.event ? toJson(input.event) : null,
      source: input.source ?? 'api',
    });
    if (started.refused) throw new AppError('business_rule', started.refused.message, { extra: { reason: started.refused.reason } });
    return { started, contactId };
  });
  if (started.created) {
    ctx.wake.sessions();
    return { created: true, sessionId: started.sessionId!, definitionId: definition.id, definitionName: definition.name, contactId };
  }
  if (started.skipped) {
    throw new AppError('business_rule', `The contact already meets this ${kind}'s stop condition (${definition.stop_type} ${definition.stop_key}); it was not started`, { extra: { reason: started.skipped } });
  }
  if (started.sessionId === null) {
    // The running session ended between our insert and its read: the caller may retry.
    throw new AppError('conflict', 'The contact’s session changed while this request ran; retry it');
  }
  return { created: false, sessionId: started.sessionId, definitionId: definition.id, definitionName: definition.name, contactId };
}
