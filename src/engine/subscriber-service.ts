import { isoTime } from '../domain/clock.js';
import {
  applyContactChanges as applyFieldChanges,
  buildSearchText,
  contactFieldsOf,
  emptyContactFields,
  normalizeContactInput,
  parseTags,
  type ContactChanges,
  type ContactFields,
} from '../domain/contact.js';
import { AppError, invalid, invalidFields, notFound, type FieldErrors } from '../domain/errors.js';
import { isUuid, newId } from '../domain/ids.js';
import { isPlainObject, nestsDeeperThan, parseJson, toJson } from '../domain/json.js';
import { normalizeEmail } from '../domain/phone.js';
import * as audience from '../store/audience-repository.js';
import { rawIn, type Db, type Tx } from '../store/database.js';
import type { ContactRow } from '../store/schema.js';
import * as tagRepo from '../store/tag-repository.js';
import * as contactRepo from '../store/contact-repository.js';
import * as engineContacts from '../store/engine-contact-repository.js';
import { applyContactChanges, wakeForOutcome, type AutomationOutcome, type ContactChange, type EnrollmentResult, type RecordedEvent } from './automation.js';
import { fieldColumns } from './contact-service.js';
import type { Context } from './context.js';
import { stopSessions } from './session-control.js';
import { consentData, emitWebhookEvent } from './webhook-emitter.js';

/**
 * Subscribers are contacts seen through the email-first, camelCase API of event-driven
 * sequences: the same rows, tags and lists. Every change here reports itself to the
 * automation (triggers, stop conditions, segments) inside its own transaction.
 */

export interface Subscriber {
  id: string;
  email: string | null;
  externalId: string | null;
  firstName: string | null;
  lastName: string | null;
  phone: string | null;
  status: 'active' | 'unsubscribed';
  tags: string[];
  lists: string[];
  customAttributes: Record<string, unknown>;
  createdAt: string;
  updatedAt: string;
}

export interface SubscriberInput {
  email?: unknown;
  externalId?: unknown;
  firstName?: unknown;
  lastName?: unknown;
  phone?: unknown;
  customAttributes?: unknown;
  attributes?: unknown;
  tags?: unknown;
  listIds?: unknown;
  status?: unknown;
  duplicateStrategy?: unknown;
}

const duplicateStrategies = ['skip', 'merge', 'overwrite'] as const;
type DuplicateStrategy = (typeof duplicateStrategies)[number];

async function toSubscriber(db: Db, row: ContactRow): Promise<Subscriber> {
  const tags = (await tagRepo.tagNamesByContact(db, row.workspace_id, [row.id])).get(row.id) ?? [];
  const lists = await audience.listIdsOfContact(db, row.id);
  return {
    id: row.id,
    email: row.email,
    externalId: row.external_id ?? null,
    firstName: row.first_name,
    lastName: row.last_name,
    phone: row.phone,
    status: row.email_opted_out_at === null ? 'active' : 'unsubscribed',
    tags,
    lists,
    customAttributes: parseJson<Record<string, unknown>>(row.metadata, {}),
    createdAt: isoTime(row.created_at)!,
    updatedAt: isoTime(row.updated_at)!,
  };
}

function requireEmail(value: unknown, field = 'email'): string {
  if (typeof value !== 'string' || value.trim() === '') throw invalid(field, 'is required, e.g. ana@example.com');
  const email = normalizeEmail(value);
  if (email === null) throw invalid(field, 'must be a valid email address such as ana@example.com');
  return email;
}

function externalIdOf(value: unknown, field = 'externalId'): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string' && typeof value !== 'number') throw invalid(field, 'must be a string');
  const text = String(value).trim();
  if (text.length === 0 || text.length > 200) throw invalid(field, 'must be 1 to 200 characters');
  return text;
}

/** The camelCase input as the contact domain's normalised changes (every problem named). */
function changesOf(input: SubscriberInput, ctx: Context): ContactChanges {
  const attributes = input.customAttributes ?? input.attributes;
  try {
    return normalizeContactInput(
      {
        ...(input.email !== undefined ? { email: input.email as string } : {}),
        ...(input.firstName !== undefined ? { first_name: input.firstName as string } : {}),
        ...(input.lastName !== undefined ? { last_name: input.lastName as string } : {}),
        ...(input.phone !== undefined ? { phone: input.phone as string } : {}),
        ...(attributes !== undefined ? { metadata: attributes } : {}),
        ...(input.tags !== undefined ? { tags: input.tags as string[] } : {}),
      },
      ctx.config.defaultCountry,
    );
  } catch (error) {
    // Name the fields as this API spells them.
    if (error instanceof AppError && error.errors) {
      const renamed: FieldErrors = {};
      const names: Record<string, string> = { first_name: 'firstName', last_name: 'lastName', metadata: 'customAttributes' };
      for (const [field, problems] of Object.entries(error.errors)) renamed[names[field] ?? field] = problems.map((p) => p.replace(new RegExp(`^${field}\\b`), names[field] ?? field));
      throw invalidFields(renamed);
    }
    throw error;
  }
}

function listIdsOf(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) throw invalid('listIds', 'must be an array of list ids');
  if (value.length > 100) throw invalid('listIds', 'may name at most 100 lists');
  return [...new Set(value as string[])];
}

async function requireLists(db: Db, workspaceId: string, ids: readonly string[], field = 'listIds'): Promise<void> {
  if (ids.length === 0) return;
  const found = await db.selectFrom('lists').select('id').where('workspace_id', '=', workspaceId).where('id', 'in', ids.filter(isUuid).length > 0 ? ids.filter(isUuid) : ['']).execute();
  const known = new Set(found.map((r) => r.id));
  const missing = ids.filter((id) => !known.has(id));
  if (missing.length > 0) throw invalid(field, `names lists that do not exist in this workspace: ${missing.slice(0, 5).join(', ')}`);
}

async function findByEmail(db: Db, workspaceId: string, email: string, forUpdate = false): Promise<ContactRow | undefined> {
  return contactRepo.findContactByEmail(db, workspaceId, email, { forUpdate });
}

async function findByExternalId(db: Db, workspaceId: string, externalId: string): Promise<ContactRow | undefined> {
  return db.selectFrom('contacts').selectAll().where('workspace_id', '=', workspaceId).where('external_id', '=', externalId).executeTakeFirst();
}

/**
 * Inserts a contact with this email unless the workspace has one; returns the row and
 * whether this call created it. Concurrent callers with one email end with one row.
 */
export async function ensureContactByEmail(
  ctx: Context,
  trx: Db,
  workspaceId: string,
  email: string,
  fields: Partial<ContactFields> & { external_id?: string | null },
  source: string,
): Promise<{ row: ContactRow; created: boolean }> {
  const existing = await findByEmail(trx, workspaceId, email);
  if (existing) return { row: existing, created: false };
  const now = ctx.clock.now();
  const { metadata, ...rest } = fields;
  const { contact, created } = await engineContacts.upsertContactByEmail(trx, {
    ...rest,
    id: newId(now),
    workspace_id: workspaceId,
    email,
    metadata: toJson(metadata ?? {}),
    source,
    now,
    optedIn: true,
  });
  return { row: contact, created };
}

/** Adds the contact to lists; returns the lists it was not in before. */
export async function addToLists(trx: Db, workspaceId: string, contactId: string, listIds: readonly string[], now: number): Promise<string[]> {
  const added: string[] = [];
  for (const listId of listIds) {
    const result = await trx
      .insertInto('list_members')
      .values({ list_id: listId, contact_id: contactId, workspace_id: workspaceId, created_at: now })
      .onConflict((oc) => oc.doNothing())
      .executeTakeFirst();
    if (Number(result.numInsertedOrUpdatedRows ?? 0) > 0) added.push(listId);
  }
  return added;
}

async function tagNames(db: Db, workspaceId: string, contactId: string): Promise<string[]> {
  return (await tagRepo.tagNamesByContact(db, workspaceId, [contactId])).get(contactId) ?? [];
}

function diffTags(before: readonly string[], after: readonly string[]): { added: string[]; removed: string[] } {
  const lower = (l: readonly string[]) => new Set(l.map((t) => t.toLowerCase()));
  const b = lower(before);
  const a = lower(after);
  return { added: after.filter((t) => !b.has(t.toLowerCase())), removed: before.filter((t) => !a.has(t.toLowerCase())) };
}

function statusChange(value: unknown): 'active' | 'unsubscribed' | undefined {
  if (value === undefined || value === null) return undefined;
  if (value !== 'active' && value !== 'unsubscribed') throw invalid('status', 'must be active or unsubscribed');
  return value;
}

async function runInTransaction<T extends { outcome?: AutomationOutcome }>(ctx: Context, work: (trx: Tx) => Promise<T>): Promise<T> {
  // On SQLite, concurrent requests share one commit (grouped-commit.ts), each under its own savepoint.
  const result = await ctx.database.transact(work);
  if (result.outcome) wakeForOutcome(ctx, result.outcome);
  return result;
}

/**
 * POST /subscribers: creates the subscriber, or applies `duplicateStrategy` to an
 * existing one with that email: `skip` leaves it as it is, `merge` (the default)
 * overwrites the given fields, merges custom attributes and adds tags and lists,
 * `overwrite` replaces its fields, attributes and tags with exactly what is given.
 */
export async function createSubscriber(ctx: Context, workspaceId: string, input: SubscriberInput): Promise<{ subscriber: Subscriber; created: boolean; skipped: boolean }> {
  const email = requireEmail(input.email);
  const strategy = (input.duplicateStrategy ?? 'merge') as DuplicateStrategy;
  if (!duplicateStrategies.includes(strategy)) throw invalid('duplicateStrategy', `must be one of ${duplicateStrategies.join(', ')}`);
  const changes = changesOf(input, ctx);
  const externalId = externalIdOf(input.externalId);
  const listIds = listIdsOf(input.listIds);
  const status = statusChange(input.status);
  await requireLists(ctx.database.db, workspaceId, listIds);

  return runInTransaction(ctx, async (trx) => {
    const now = ctx.clock.now();
    const existing = await findByEmail(trx, workspaceId, email, true);
    if (existing && strategy === 'skip') return { subscriber: await toSubscriber(trx, existing), created: false, skipped: true };
    const tagsBefore = existing ? await tagNames(trx, workspaceId, existing.id) : [];
    let row: ContactRow;
    let created = false;
    if (!existing) {
      const fields = applyFieldChanges({ ...emptyContactFields, email }, { ...changes, tags: undefined });
      const ensured = await ensureContactByEmail(ctx, trx, workspaceId, email, { ...fields, external_id: externalId ?? null }, 'api');
      row = ensured.row;
      created = ensured.created;
    } else {
      const base = strategy === 'overwrite' ? { ...emptyContactFields, email, timezone: existing.timezone, language: existing.language } : contactFieldsOf(existing);
      const next = applyFieldChanges(base, { ...changes, tags: undefined, metadata: strategy === 'overwrite' ? undefined : changes.metadata });
      if (strategy === 'overwrite') next.metadata = changes.metadata ?? {};
      await trx
        .updateTable('contacts')
        .set({ ...fieldColumns(next), ...(externalId !== undefined ? { external_id: externalId } : {}), updated_at: now })
        .where('id', '=', existing.id)
        .execute();
      row = (await findByEmail(trx, workspaceId, email))!;
    }
    if (changes.tags !== undefined) {
      const stored = await tagRepo.ensureTags(trx, workspaceId, changes.tags, now);
      if (strategy === 'overwrite' && !created) await tagRepo.detachTagsExcept(trx, workspaceId, row.id, stored.map((t) => t.id));
      await tagRepo.attachTags(trx, workspaceId, row.id, stored.map((t) => t.id), now);
    }
    if (status !== undefined) await setEmailStatus(ctx, trx, workspaceId, row, status, now);
    const listsAdded = await addToLists(trx, workspaceId, row.id, listIds, now);
    const { added, removed } = diffTags(tagsBefore, await tagNames(trx, workspaceId, row.id));
    const outcome = await applyContactChanges(ctx, trx, workspaceId, [{ contactId: row.id, created, tagsAdded: added, tagsRemoved: removed, listsAdded, attributes: !created }], 'api');
    const fresh = (await findByEmail(trx, workspaceId, email))!;
    return { subscriber: await toSubscriber(trx, fresh), created, skipped: false, outcome };
  });
}

/** Sets the email opt-out; a change (not a repeat) is announced as contact.opted_out / opted_in. */
async function setEmailStatus(
  ctx: Context,
  trx: Db,
  workspaceId: string,
  contact: { id: string; phone: string | null; email: string | null },
  status: 'active' | 'unsubscribed',
  now: number,
): Promise<void> {
  const result =
    status === 'unsubscribed'
      ? await trx.updateTable('contacts').set({ email_opted_out_at: now, updated_at: now }).where('id', '=', contact.id).where('email_opted_out_at', 'is', null).executeTakeFirst()
      : await trx.updateTable('contacts').set({ email_opted_out_at: null, updated_at: now }).where('id', '=', contact.id).where('email_opted_out_at', 'is not', null).executeTakeFirst();
  if (Number(result.numUpdatedRows) > 0) {
    await emitWebhookEvent(ctx, trx, workspaceId, status === 'unsubscribed' ? 'contact.opted_out' : 'contact.opted_in', consentData(contact, 'email', 'api'));
  }
}

export async function getSubscriber(ctx: Context, workspaceId: string, emailParam: string): Promise<Subscriber> {
  const email = normalizeEmail(emailParam);
  const row = email === null ? undefined : await findByEmail(ctx.database.db, workspaceId, email);
  if (!row) throw notFound('Subscriber');
  return toSubscriber(ctx.database.db, row);
}

/** PATCH: given fields overwrite, custom attributes merge (a key set to "" or null is removed), `tags` replaces. */
export async function updateSubscriber(ctx: Context, workspaceId: string, emailParam: string, input: SubscriberInput): Promise<Subscriber> {
  const email = normalizeEmail(emailParam);
  if (email === null) throw notFound('Subscriber');
  const changes = changesOf(input, ctx);
  const externalId = externalIdOf(input.externalId);
  const status = statusChange(input.status);
  const result = await runInTransaction(ctx, async (trx) => {
    const row = await findByEmail(trx, workspaceId, email, true);
    if (!row) throw notFound('Subscriber');
    const now = ctx.clock.now();
    const tagsBefore = await tagNames(trx, workspaceId, row.id);
    const next = applyFieldChanges(contactFieldsOf(row), { ...changes, tags: undefined });
    if (next.email === null && next.phone === null) throw invalid('email', 'cannot be cleared: a subscriber needs an email or a phone');
    try {
      await trx
        .updateTable('contacts')
        .set({ ...fieldColumns(next), ...(externalId !== undefined ? { external_id: externalId } : {}), updated_at: now })
        .where('id', '=', row.id)
        .execute();
    } catch (error) {
      if (/unique|duplicate/i.test(String((error as Error).message))) throw invalid(/external/i.test(String((error as Error).message)) ? 'externalId' : 'email', 'is already used by another subscriber in this workspace');
      throw error;
    }
    if (changes.tags !== undefined) {
      const stored = await tagRepo.ensureTags(trx, workspaceId, changes.tags, now);
      await tagRepo.detachTagsExcept(trx, workspaceId, row.id, stored.map((t) => t.id));
      await tagRepo.attachTags(trx, workspaceId, row.id, stored.map((t) => t.id), now);
    }
    if (status !== undefined) await setEmailStatus(ctx, trx, workspaceId, row, status, now);
    const { added, removed } = diffTags(tagsBefore, await tagNames(trx, workspaceId, row.id));
    const outcome = await applyContactChanges(ctx, trx, workspaceId, [{ contactId: row.id, tagsAdded: added, tagsRemoved: removed, attributes: true }], 'api');
    const fresh = (await trx.selectFrom('contacts').selectAll().where('id', '=', row.id).executeTakeFirst())!;
    return { subscriber: await toSubscriber(trx, fresh), outcome };
  });
  return result.subscriber;
}

/**
 * Deletes the subscriber: its running sessions stop (queued messages cancelled) and
 * its tags, list and segment memberships and events go with it. Sent-message
 * history stays for the workspace's records.
 */
export async function deleteSubscriber(ctx: Context, workspaceId: string, emailParam: string): Promise<{ id: string }> {
  const email = normalizeEmail(emailParam);
  if (email === null) throw notFound('Subscriber');
  return ctx.database.db.transaction().execute(async (trx) => {
    const row = await findByEmail(trx, workspaceId, email, true);
    if (!row) throw notFound('Subscriber');
    await stopSessions(ctx, trx, { workspaceId, contactId: row.id }, 'contact_deleted');
    for (const table of ['contact_tags', 'list_members', 'segment_members', 'segment_rechecks', 'events', 'contact_event_stats', 'trigger_fires'] as const) {
      await trx.deleteFrom(table).where('contact_id', '=', row.id).execute();
    }
    await trx.deleteFrom('contacts').where('id', '=', row.id).execute();
    return { id: row.id };
  });
}

/** POST /subscribers/tags: adds (or, with `action: "remove"`, removes) tags by email. */
export async function changeSubscriberTags(ctx: Context, workspaceId: string, input: { email?: unknown; tags?: unknown; tag?: unknown; action?: unknown }): Promise<Subscriber> {
  const email = requireEmail(input.email);
  const action = input.action ?? 'add';
  if (action !== 'add' && action !== 'remove') throw invalid('action', 'must be add or remove');
  const given = input.tags ?? input.tag;
  if (given === undefined || given === null) throw invalid('tags', 'is required: a tag name or an array of tag names');
  const tags = parseTags(given as string | string[]);
  if (tags.length === 0) throw invalid('tags', 'must name at least one tag');
  const result = await runInTransaction(ctx, async (trx) => {
    const now = ctx.clock.now();
    let row = await findByEmail(trx, workspaceId, email, true);
    let created = false;
    if (!row) {
      if (action === 'remove') throw notFound('Subscriber');
      const ensured = await ensureContactByEmail(ctx, trx, workspaceId, email, {}, 'api');
      row = ensured.row;
      created = ensured.created;
    }
    const before = await tagNames(trx, workspaceId, row.id);
    if (action === 'add') {
      const raw = rawIn(ctx.database, trx);
      const stored = await tagRepo.ensureTags(trx, workspaceId, tags, now, raw);
      await tagRepo.attachTags(trx, workspaceId, row.id, stored.map((t) => t.id), now, raw);
    } else {
      for (const tag of tags) {
        const stored = await tagRepo.findTagByKey(trx, workspaceId, tag.key);
        if (stored) await tagRepo.detachTag(trx, workspaceId, row.id, stored.id);
      }
    }
    const { added, removed } = diffTags(before, await tagNames(trx, workspaceId, row.id));
    if (added.length + removed.length > 0) await trx.updateTable('contacts').set({ updated_at: now }).where('id', '=', row.id).execute();
    const outcome = await applyContactChanges(ctx, trx, workspaceId, [{ contactId: row.id, created, tagsAdded: added, tagsRemoved: removed }], 'api');
    const fresh = (await trx.selectFrom('contacts').selectAll().where('id', '=', row.id).executeTakeFirst())!;
    return { subscriber: await toSubscriber(trx, fresh), outcome };
  });
  return result.subscriber;
}

export interface EventInput {
  email?: unknown;
  externalId?: unknown;
  event?: unknown;
  properties?: unknown;
  customAttributes?: unknown;
  occurredAt?: unknown;
  timestamp?: unknown;
  time?: unknown;
}

interface CheckedEvent {
  email: string | null;
  externalId: string | null;
  name: string;
  properties: Record<string, unknown>;
  attributes: Record<string, unknown> | undefined;
  occurredAt: number | null;
}

const maxPropertiesBytes = 32 * 1024;

/**
 * When an event happened: an ISO 8601 string, or a Unix time as a number — seconds
 * below 10^11 (until the year 5138), milliseconds above — as SDKs send either.
 */
function eventTime(value: unknown): number | null {
  let ms: number;
  if (typeof value === 'string') ms = /^\d+(\.\d+)?$/.test(value.trim()) ? unixNumber(Number(value)) : Date.parse(value);
  else if (typeof value === 'number') ms = unixNumber(value);
  else return null;
  return Number.isFinite(ms) && ms >= 0 ? Math.round(ms) : null;
}

function unixNumber(n: number): number {
  return n < 1e11 ? n * 1000 : n;
}

/** How far ahead of this server's clock an event's time may be (the sender's clock may run fast). */
const futureToleranceMs = 5 * 60_000;

function checkEvent(input: unknown, prefix: string, errors: FieldErrors): CheckedEvent | null {
  const add = (field: string, message: string) => (errors[`${prefix}${field}`] ??= []).push(`${prefix}${field} ${message}`);
  if (!isPlainObject(input)) {
    add('', 'must be an object');
    return null;
  }
  const e = input as EventInput;
  let email: string | null = null;
  if (e.email !== undefined && e.email !== null && e.email !== '') {
    email = typeof e.email === 'string' ? normalizeEmail(e.email) : null;
    if (email === null) add('email', 'must be a valid email address such as ana@example.com');
  }
  let externalId: string | null = null;
  try {
    externalId = externalIdOf(e.externalId, `${prefix}externalId`) ?? null;
  } catch (error) {
    add('externalId', 'must be a string of 1 to 200 characters');
    void error;
  }
  if (email === null && externalId === null && !errors[`${prefix}email`]) add('email', 'or externalId is required to name the subscriber');
  const name = typeof e.event === 'string' ? e.event.trim() : '';
  if (name.length === 0 || name.length > 200) add('event', 'is required: the event name, 1 to 200 characters (e.g. "order.placed")');
  let properties: Record<string, unknown> = {};
  if (e.properties !== undefined && e.properties !== null) {
    if (!isPlainObject(e.properties)) add('properties', 'must be an object');
    else if (nestsDeeperThan(e.properties, 16)) add('properties', 'must not nest more than 16 levels deep');
    else if (Buffer.byteLength(JSON.stringify(e.properties), 'utf8') > maxPropertiesBytes) add('properties', `must be at most ${maxPropertiesBytes} bytes as JSON`);
    else properties = e.properties;
  }
  let attributes: Record<string, unknown> | undefined;
  if (e.customAttributes !== undefined && e.customAttributes !== null) {
    if (!isPlainObject(e.customAttributes)) add('customAttributes', 'must be an object');
    else attributes = e.customAttributes;
  }
  let occurredAt: number | null = null;
  const timeField = e.occurredAt !== undefined ? 'occurredAt' : e.timestamp !== undefined ? 'timestamp' : 'time';
  const when = e.occurredAt ?? e.timestamp ?? e.time;
  if (when !== undefined && when !== null) {
    const parsed = eventTime(when);
    if (parsed === null) add(timeField, 'must be an ISO 8601 time such as 2026-05-07T08:14:23Z, or Unix seconds or milliseconds');
    else occurredAt = parsed;
  }
  return { email, externalId, name, properties, attributes, occurredAt };
}

export interface TrackedEvent {
  eventId: string;
  subscriberId: string;
  subscriberCreated: boolean;
  enrollments: Array<Pick<EnrollmentResult, 'sequenceId' | 'sequenceName' | 'status' | 'reason' | 'sessionId'>>;
  stoppedSessions: number;
}

async function trackOne(ctx: Context, trx: Tx, workspaceId: string, event: CheckedEvent, index: string): Promise<{ tracked: TrackedEvent; outcome: AutomationOutcome }> {
  const now = ctx.clock.now();
  if (event.occurredAt !== null && event.occurredAt > now + futureToleranceMs) {
    throw invalid(`${index}occurredAt`, `is ${Math.round((event.occurredAt - now) / 60_000)} minutes ahead of this server's clock; send the time the event happened`);
  }
  let row: ContactRow | undefined;
  let created = false;
  if (event.externalId !== null) row = await findByExternalId(trx, workspaceId, event.externalId);
  if (row && row.email === null && event.email !== null && !(await findByEmail(trx, workspaceId, event.email))) {
    // Known by externalId until now: the email given with this event becomes its address.
    await trx.updateTable('contacts').set({ email: event.email, search_text: buildSearchText({ ...row, email: event.email }), updated_at: now }).where('id', '=', row.id).execute();
    row = { ...row, email: event.email };
  }
  if (!row && event.email !== null) {
    const ensured = await ensureContactByEmail(ctx, trx, workspaceId, event.email, { external_id: event.externalId }, 'event');
    row = ensured.row;
    created = ensured.created;
    if (!created && event.externalId !== null && row.external_id == null) {
      await trx.updateTable('contacts').set({ external_id: event.externalId }).where('id', '=', row.id).execute();
    }
  }
  if (!row && event.externalId !== null) {
    // Known only by the caller's own id: a subscriber without an email yet (PATCH can add one).
    const inserted = await trx
      .insertInto('contacts')
      .values(engineContacts.newContactValues({ id: newId(now), workspace_id: workspaceId, external_id: event.externalId, source: 'event', now, optedIn: true }))
      .onConflict((oc) => oc.columns(['workspace_id', 'external_id']).doNothing())
      .executeTakeFirst();
    created = Number(inserted.numInsertedOrUpdatedRows ?? 0) > 0;
    row = await findByExternalId(trx, workspaceId, event.externalId);
  }
  if (!row) throw new AppError('conflict', 'The subscriber changed while this event was recorded; send it again');
  let attributes = false;
  if (event.attributes !== undefined) {
    const next = applyFieldChanges(contactFieldsOf(row), { metadata: event.attributes });
    await trx.updateTable('contacts').set({ metadata: toJson(next.metadata), updated_at: now }).where('id', '=', row.id).execute();
    attributes = true;
  }
  // A time a little ahead (a fast clock) is taken as now, so no count or inactivity
  // window ever sees an event from the future.
  const recorded: RecordedEvent = { id: newId(now), name: event.name, properties: event.properties, occurredAt: Math.min(event.occurredAt ?? now, now) };
  await trx
    .insertInto('events')
    .values({ id: recorded.id, workspace_id: workspaceId, contact_id: row.id, name: recorded.name, properties: toJson(recorded.properties), occurred_at: recorded.occurredAt, created_at: now })
    .execute();
  await audience.noteEventStat(trx, workspaceId, row.id, recorded.name, recorded.occurredAt);
  const change: ContactChange = { contactId: row.id, created, attributes, event: recorded };
  const outcome = await applyContactChanges(ctx, trx, workspaceId, [change], 'event');
  return {
    tracked: {
      eventId: recorded.id,
      subscriberId: row.id,
      subscriberCreated: created,
      enrollments: outcome.enrollments.map((e) => ({ sequenceId: e.sequenceId, sequenceName: e.sequenceName, status: e.status, ...(e.reason ? { reason: e.reason } : {}), ...(e.sessionId ? { sessionId: e.sessionId } : {}) })),
      stoppedSessions: outcome.stopped.length,
    },
    outcome,
  };
}

/**
 * Records an event for a subscriber (created when its email is new), and in the same
 * transaction starts every matching sequence, stops runs whose stop condition it
 * meets and updates segments.
 */
export async function trackEvent(ctx: Context, workspaceId: string, input: unknown): Promise<TrackedEvent> {
  const errors: FieldErrors = {};
  const event = checkEvent(input, '', errors);
  if (Object.keys(errors).length > 0 || event === null) throw invalidFields(errors);
  const result = await runInTransaction(ctx, async (trx) => trackOne(ctx, trx, workspaceId, event, ''));
  return result.tracked;
}

/** Many events in one transaction: all are recorded, or (on any invalid one) none. */
export async function trackEvents(ctx: Context, workspaceId: string, input: unknown): Promise<TrackedEvent[]> {
  const list = isPlainObject(input) ? (input as { events?: unknown }).events : undefined;
  if (!Array.isArray(list) || list.length === 0) throw invalid('events', 'is required: an array of 1 to 1000 events');
  if (list.length > 1000) throw invalid('events', 'may hold at most 1000 events per call');
  const errors: FieldErrors = {};
  const checked = list.map((item, i) => checkEvent(item, `events[${i}].`, errors));
  if (Object.keys(errors).length > 0) throw invalidFields(errors);
  const result = await runInTransaction(ctx, async (trx) => {
    const tracked: TrackedEvent[] = [];
    const enrollments: EnrollmentResult[] = [];
    for (let i = 0; i < checked.length; i += 1) {
      const one = await trackOne(ctx, trx, workspaceId, checked[i]!, `events[${i}].`);
      tracked.push(one.tracked);
      enrollments.push(...one.outcome.enrollments);
    }
    return { tracked, outcome: { enrollments, stopped: [], segmentsEntered: [], segmentsLeft: [] } };
  });
  return result.tracked;
}
