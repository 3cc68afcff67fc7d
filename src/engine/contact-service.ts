import { isoTime } from '../domain/clock.js';
import {
  applyContactChanges,
  buildSearchText,
  contactFieldsOf,
  contactLimits,
  emptyContactFields,
  normalizeContactInput,
  normalizeTagName,
  resolveContactRef,
  searchTerms,
  toPublicContact,
  type Contact,
  type ContactChanges,
  type ContactFields,
  type ContactInput,
  type ContactLookup,
  type ContactRef,
  type TagName,
} from '../domain/contact.js';
import { decodeCursor, encodeCursor } from '../domain/cursor.js';
import { invalid, notFound } from '../domain/errors.js';
import { newId } from '../domain/ids.js';
import { toJson } from '../domain/json.js';
import { normalizePhone } from '../domain/phone.js';
import * as contactRepo from '../store/contact-repository.js';
import type { ContactFilter, ContactRow, LockOptions } from '../store/contact-repository.js';
import { rawIn, type Db } from '../store/database.js';
import { isUniqueViolation } from '../store/errors.js';
import * as tagRepo from '../store/tag-repository.js';
import { applyContactChanges as applyAutomation, type ContactChange } from './automation.js';
import type { Context } from './context.js';

export type { Contact, ContactInput, ContactRef } from '../domain/contact.js';

export interface Tag {
  id: string;
  name: string;
  contacts_count: number;
  created_at: string;
}

/** The answer of add-tag and remove-tag: the tag as stored and every tag the contact now has. */
export interface ContactTags {
  contact_id: string;
  tag: string;
  tags: string[];
}

export interface ContactPage {
  data: Contact[];
  next_cursor: string | null;
}

export interface UpsertedContact {
  contact: Contact;
  /** False when a contact with that phone existed already (it was updated instead). */
  created: boolean;
}

export interface UpdateContactInput extends ContactInput {
  /** Names the contact; when given, `phone` is a new phone rather than the lookup key. */
  contact_id?: string | null;
}

export interface SearchContactsInput {
  query?: string | null;
  tag?: string | null;
  email?: string | null;
  /** 1 to 50; 50 when absent. */
  limit?: number;
}

export interface ListContactsInput {
  /** 1 to 200; 50 when absent. */
  limit?: number;
  cursor?: string | null;
  tag?: string | null;
  email?: string | null;
  phone?: string | null;
  query?: string | null;
  opted_out?: boolean;
  /** ISO 8601. */
  created_after?: string | null;
  created_before?: string | null;
}

export interface TagChangeInput {
  contact_id?: string | null;
  phone?: string | null;
  tag: string;
}

/**
 * Runs `work` in one transaction, so a failure part-way changes nothing, and turns a
 * unique-index collision into a 422 naming the field. With `outer` (a caller's own
 * transaction, e.g. an enrollment) the work joins it instead.
 */
async function inTransaction<T>(ctx: Context, outer: Db | undefined, work: (trx: Db) => Promise<T>): Promise<T> {
  try {
    if (outer) return await work(outer);
    let used: Db | undefined;
    // On SQLite, concurrent requests share one commit (grouped-commit.ts): each unit is
    // still all or nothing under its own savepoint, and answers only after the commit.
    const result = await ctx.database.transact((trx) => {
      used = trx;
      return work(trx);
    });
    if (used !== undefined && enrolledIn.has(used)) ctx.wake.sessions();
    return result;
  } catch (error) {
    if (isUniqueViolation(error, 'email')) throw invalid('email', 'is already used by another contact in this workspace');
    if (isUniqueViolation(error, 'phone')) throw invalid('phone', 'is already used by another contact in this workspace');
    throw error;
  }
}

/** A filter's text, trimmed; empty means "not given" (form-driven clients send every field). */
function present(value: string | null | undefined, field: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw invalid(field, 'must be a string');
  const trimmed = value.trim();
  return trimmed === '' ? undefined : trimmed;
}

/** The stored columns of a contact's editable fields (with its search text). */
export function fieldColumns(fields: ContactFields) {
  return {
    phone: fields.phone,
    email: fields.email,
    name: fields.name,
    first_name: fields.first_name,
    last_name: fields.last_name,
    timezone: fields.timezone,
    language: fields.language,
    metadata: toJson(fields.metadata),
    search_text: buildSearchText(fields),
  };
}

function changesFields(changes: ContactChanges): boolean {
  return (['phone', 'email', 'name', 'first_name', 'last_name', 'timezone', 'language', 'metadata'] as const).some((k) => changes[k] !== undefined);
}

async function findByLookup(db: Db, workspaceId: string, lookup: ContactLookup, options: LockOptions = {}): Promise<ContactRow | undefined> {
  switch (lookup.by) {
    case 'id':
      return contactRepo.findContactById(db, workspaceId, lookup.id, options);
    case 'phone':
      return contactRepo.findContactByPhone(db, workspaceId, lookup.phone, options);
    case 'email':
      return contactRepo.findContactByEmail(db, workspaceId, lookup.email, options);
  }
}

async function toContacts(db: Db, workspaceId: string, rows: readonly ContactRow[]): Promise<Contact[]> {
  const tags = await tagRepo.tagNamesByContact(db, workspaceId, rows.map((r) => r.id));
  return rows.map((row) => toPublicContact(row, tags.get(row.id) ?? []));
}

async function loadContact(db: Db, workspaceId: string, id: string): Promise<Contact> {
  const row = await contactRepo.findContactById(db, workspaceId, id);
  if (!row) throw notFound('Contact');
  const [contact] = await toContacts(db, workspaceId, [row]);
  return contact!;
}

async function tagNames(db: Db, workspaceId: string, contactId: string): Promise<string[]> {
  return (await tagRepo.tagNamesByContact(db, workspaceId, [contactId])).get(contactId) ?? [];
}

function diffTags(before: readonly string[], after: readonly string[]): { added: string[]; removed: string[] } {
  const b = new Set(before.map((t) => t.toLowerCase()));
  const a = new Set(after.map((t) => t.toLowerCase()));
  return { added: after.filter((t) => !b.has(t.toLowerCase())), removed: before.filter((t) => !a.has(t.toLowerCase())) };
}

/**
 * Reports a contact change to the automation (triggers, stop conditions, segments) in
 * the same transaction, and wakes the scheduler once that transaction has committed.
 */
async function automate(ctx: Context, trx: Db, workspaceId: string, change: ContactChange): Promise<void> {
  const outcome = await applyAutomation(ctx, trx, workspaceId, [change], 'api');
  if (outcome.enrollments.some((e) => e.status === 'enrolled')) enrolledIn.add(trx);
}

/** Transactions that started sessions: inTransaction wakes the scheduler after they commit. */
const enrolledIn = new WeakSet<Db>();

/** Gives the contact exactly these tags. Returns whether anything changed. */
async function replaceTags(db: Db, workspaceId: string, contactId: string, names: readonly TagName[], now: number): Promise<boolean> {
  const rows = await tagRepo.ensureTags(db, workspaceId, names, now);
  const ids = rows.map((r) => r.id);
  const removed = await tagRepo.detachTagsExcept(db, workspaceId, contactId, ids);
  const added = await tagRepo.attachTags(db, workspaceId, contactId, ids, now);
  return removed + added > 0;
}

/**
 * The shared phone upsert: finds the workspace's contact with this E.164 phone or
 * inserts it. Concurrent callers with one phone end with one contact: the insert
 * yields to the unique (workspace_id, phone) index and the loser reads the winner's
 * row. On an existing contact the changes apply (metadata merges, tags are added).
 */
async function upsertByPhone(
  ctx: Context,
  db: Db,
  workspaceId: string,
  phone: string,
  changes: ContactChanges,
  options: { source: string; optedIn: boolean },
): Promise<UpsertedContact> {
  const now = ctx.clock.now();
  // The phone is the key here, never a change.
  const { phone: _phone, tags, ...fieldChanges } = changes;
  const addTags = async (contactId: string): Promise<number> => {
    if (tags === undefined || tags.length === 0) return 0;
    const tagRows = await tagRepo.ensureTags(db, workspaceId, tags, now);
    return tagRepo.attachTags(db, workspaceId, contactId, tagRows.map((t) => t.id), now);
  };

  // Lock an existing contact only when this call will change it: the engine's
  // find-or-create runs inside enrollments and must not serialise them.
  const lock = { forUpdate: changesFields(fieldChanges) || (tags?.length ?? 0) > 0 };
  let row = await contactRepo.findContactByPhone(db, workspaceId, phone, lock);
  if (row === undefined) {
    const fields = applyContactChanges({ ...emptyContactFields, phone }, fieldChanges);
    const id = newId();
    const inserted = await contactRepo.insertContactUnlessPhoneExists(db, {
      id,
      workspace_id: workspaceId,
      ...fieldColumns(fields),
      source: options.source,
      opted_in_at: options.optedIn ? now : null,
      opted_out_at: null,
      whatsapp_opted_out_at: null,
      sms_opted_out_at: null,
      email_opted_out_at: null,
      whatsapp_last_inbound_at: null,
      sms_last_inbound_at: null,
      last_message_at: null,
      total_messages: 0,
      created_at: now,
      updated_at: now,
    });
    if (inserted) {
      await addTags(id);
      const contact = await loadContact(db, workspaceId, id);
      await automate(ctx, db, workspaceId, { contactId: id, created: true, tagsAdded: contact.tags });
      return { contact, created: true };
    }
    // Another request inserted this phone between our read and our insert: update theirs.
    row = await contactRepo.findContactByPhone(db, workspaceId, phone, lock);
    if (row === undefined) throw new Error('a contact inserted concurrently was not visible after the conflict');
  }

  let touched = false;
  if (changesFields(fieldChanges)) {
    const next = applyContactChanges(contactFieldsOf(row), fieldChanges);
    await contactRepo.updateContactRow(db, workspaceId, row.id, { ...fieldColumns(next), updated_at: now });
    touched = true;
  }
  const tagsBefore = tags !== undefined && tags.length > 0 ? await tagNames(db, workspaceId, row.id) : null;
  if ((await addTags(row.id)) > 0 && !touched) await contactRepo.touchContact(db, workspaceId, row.id, now);
  const contact = await loadContact(db, workspaceId, row.id);
  const tagsAdded = tagsBefore === null ? [] : diffTags(tagsBefore, contact.tags).added;
  if (touched || tagsAdded.length > 0) await automate(ctx, db, workspaceId, { contactId: row.id, attributes: touched, tagsAdded });
  return { contact, created: false };
}

/**
 * create-contact: upserts by phone. A new contact gets `source` (default `api`) and,
 * unless `optedIn` is false, `opted_in_at` = now. On an existing phone the given
 * fields overwrite (`""` clears), `metadata` shallow-merges and `tags` are added to
 * the contact's tags (update-contact is the one that replaces them).
 *
 * @example
 * const { contact, created } = await createOrUpsertContact(ctx, workspaceId, { phone: '+14155550123', name: 'Ana', tags: 'vip' });
 */
export async function createOrUpsertContact(
  ctx: Context,
  workspaceId: string,
  input: ContactInput,
  options: { source?: string; optedIn?: boolean } = {},
): Promise<UpsertedContact> {
  if (present(input.phone, 'phone') === undefined) throw invalid('phone', 'is required, e.g. +14155550123');
  const changes = normalizeContactInput(input, ctx.config.defaultCountry);
  const phone = changes.phone!;
  return inTransaction(ctx, undefined, (trx) =>
    upsertByPhone(ctx, trx, workspaceId, phone, changes, { source: options.source ?? 'api', optedIn: options.optedIn ?? true }),
  );
}

/**
 * The engine's contact upsert (trigger-sequence, trigger-flow, send-template-message):
 * the workspace's contact with this phone, created when missing with `source` and,
 * when `optedIn`, `opted_in_at` = now. An existing contact is returned unchanged.
 * Pass `db` to run inside the caller's transaction (so an enrollment and the contact
 * it creates commit together); on PostgreSQL that transaction must be READ COMMITTED
 * (the default), so a contact a concurrent caller just inserted is visible once its
 * insert wins. A phone that cannot be read is a 422 naming `phone`.
 */
export async function findOrCreateContactByPhone(
  ctx: Context,
  workspaceId: string,
  phone: string,
  options: { source: string; optedIn: boolean; db?: Db },
): Promise<UpsertedContact> {
  const normalized = normalizePhone(phone, ctx.config.defaultCountry);
  if (normalized === null) throw invalid('phone', 'must be a valid phone number, in international form such as +14155550123');
  return inTransaction(ctx, options.db, (trx) => upsertByPhone(ctx, trx, workspaceId, normalized, {}, options));
}

/**
 * update-contact: names the contact by `contact_id` or `phone`. Given fields overwrite,
 * `""` (or null) clears one, `metadata` shallow-merges (a key set to `""` is removed)
 * and `tags` replaces the contact's tags (`""` or `[]` removes them all).
 */
export async function updateContact(ctx: Context, workspaceId: string, input: UpdateContactInput): Promise<Contact> {
  const country = ctx.config.defaultCountry;
  const lookup = resolveContactRef(input, country, ['contact_id', 'phone']);
  const { contact_id: _id, ...fields } = input;
  // Looked up by phone, the phone is the key; by id, a phone is the new phone.
  const changes = normalizeContactInput(lookup.by === 'phone' ? { ...fields, phone: undefined } : fields, country);
  return inTransaction(ctx, undefined, async (trx) => {
    const row = await findByLookup(trx, workspaceId, lookup, { forUpdate: true });
    if (!row) throw notFound('Contact');
    const now = ctx.clock.now();
    const next = applyContactChanges(contactFieldsOf(row), changes);
    if (next.phone === null && next.email === null) {
      throw invalid(changes.phone === null ? 'phone' : 'email', 'cannot be cleared: a contact needs a phone or an email');
    }
    await contactRepo.updateContactRow(trx, workspaceId, row.id, { ...fieldColumns(next), updated_at: now });
    const before = await tagNames(trx, workspaceId, row.id);
    if (changes.tags !== undefined) await replaceTags(trx, workspaceId, row.id, changes.tags, now);
    const contact = await loadContact(trx, workspaceId, row.id);
    const { added, removed } = diffTags(before, contact.tags);
    await automate(ctx, trx, workspaceId, { contactId: row.id, attributes: changesFields(changes), tagsAdded: added, tagsRemoved: removed });
    return contact;
  });
}

/** get-contact: by `contact_id`, else `phone`, else `email`. 404 when absent or in another workspace. */
export async function getContact(ctx: Context, workspaceId: string, ref: ContactRef): Promise<Contact> {
  const lookup = resolveContactRef(ref, ctx.config.defaultCountry, ['contact_id', 'phone', 'email']);
  const db = ctx.database.db;
  const row = await findByLookup(db, workspaceId, lookup);
  if (!row) throw notFound('Contact');
  const [contact] = await toContacts(db, workspaceId, [row]);
  return contact!;
}

function tagFilter(value: string | null | undefined): string | undefined {
  const tag = present(value, 'tag');
  return tag === undefined ? undefined : normalizeTagName(tag, 'tag').key;
}

function limitOf(value: number | undefined, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1 || value > max) throw invalid('limit', `must be a whole number from 1 to ${max}`);
  return value;
}

/**
 * search-contacts: every word of `query` must occur (case- and accent-insensitively)
 * in the contact's names, phone or email; `tag` and `email` narrow further (email is an
 * exact, case-insensitive match). At most 50, most recently messaged first, contacts
 * never messaged last, then newest first.
 */
export async function searchContacts(ctx: Context, workspaceId: string, input: SearchContactsInput): Promise<Contact[]> {
  const filter: ContactFilter = {
    terms: searchTerms(input.query),
    tagKey: tagFilter(input.tag),
    email: present(input.email, 'email')?.toLowerCase(),
  };
  const limit = limitOf(input.limit, contactLimits.searchResults, contactLimits.searchResults);
  const db = ctx.database.db;
  return toContacts(db, workspaceId, await contactRepo.searchContactRows(db, workspaceId, filter, limit));
}

function timeFilter(field: string, value: string | null | undefined): number | undefined {
  const text = present(value, field);
  if (text === undefined) return undefined;
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) throw invalid(field, 'must be an ISO 8601 time such as 2026-05-07T08:14:23Z');
  return ms;
}

/**
 * The contacts of a workspace page by page, in creation (id) order. `next_cursor` is
 * null on the last page; pass it back as `cursor` for the next one.
 */
export async function listContacts(ctx: Context, workspaceId: string, input: ListContactsInput = {}): Promise<ContactPage> {
  const limit = limitOf(input.limit, contactLimits.defaultPageSize, contactLimits.pageSize);
  const cursor = present(input.cursor, 'cursor');
  const phoneText = present(input.phone, 'phone');
  let phone: string | undefined;
  if (phoneText !== undefined) {
    const normalized = normalizePhone(phoneText, ctx.config.defaultCountry);
    if (normalized === null) throw invalid('phone', 'must be a valid phone number, in international form such as +14155550123');
    phone = normalized;
  }
  const filter: ContactFilter = {
    terms: searchTerms(input.query),
    tagKey: tagFilter(input.tag),
    email: present(input.email, 'email')?.toLowerCase(),
    phone,
    optedOut: input.opted_out,
    createdAfter: timeFilter('created_after', input.created_after),
    createdBefore: timeFilter('created_before', input.created_before),
  };
  const db = ctx.database.db;
  // One row more than asked tells whether another page exists.
  const rows = await contactRepo.listContactRows(db, workspaceId, filter, {
    afterId: cursor === undefined ? undefined : decodeCursor(cursor),
    limit: limit + 1,
  });
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return {
    data: await toContacts(db, workspaceId, page),
    next_cursor: rows.length > limit && last ? encodeCursor(last.id) : null,
  };
}

/** add-tag: creates the tag when the workspace has none of that name (ignoring case); adding twice is harmless. */
export async function addTag(ctx: Context, workspaceId: string, input: TagChangeInput): Promise<ContactTags> {
  const lookup = resolveContactRef(input, ctx.config.defaultCountry, ['contact_id', 'phone']);
  const tag = normalizeTagName(input.tag, 'tag');
  return inTransaction(ctx, undefined, async (trx) => {
    // SQLite: the hot statements run prepared on the handle (tag writes come one request per contact).
    const raw = rawIn(ctx.database, trx);
    // Lock the contact first, as every writer does, so lock order is always contact then tags.
    const row = await findByLookup(trx, workspaceId, lookup, { forUpdate: true, raw });
    if (!row) throw notFound('Contact');
    const now = ctx.clock.now();
    const [stored] = await tagRepo.ensureTags(trx, workspaceId, [tag], now, raw);
    const added = await tagRepo.attachTags(trx, workspaceId, row.id, [stored!.id], now, raw);
    if (added > 0) {
      await contactRepo.touchContact(trx, workspaceId, row.id, now, raw);
      await automate(ctx, trx, workspaceId, { contactId: row.id, tagsAdded: [stored!.name] });
    }
    const names = await tagRepo.tagNamesByContact(trx, workspaceId, [row.id], raw);
    return { contact_id: row.id, tag: stored!.name, tags: names.get(row.id) ?? [] };
  });
}

/** remove-tag: removing a tag the contact lacks (or no contact has) is harmless. The tag itself stays. */
export async function removeTag(ctx: Context, workspaceId: string, input: TagChangeInput): Promise<ContactTags> {
  const lookup = resolveContactRef(input, ctx.config.defaultCountry, ['contact_id', 'phone']);
  const tag = normalizeTagName(input.tag, 'tag');
  return inTransaction(ctx, undefined, async (trx) => {
    const raw = rawIn(ctx.database, trx);
    // Lock the contact first, as every writer does, so lock order is always contact then tags.
    const row = await findByLookup(trx, workspaceId, lookup, { forUpdate: true, raw });
    if (!row) throw notFound('Contact');
    const stored = await tagRepo.findTagByKey(trx, workspaceId, tag.key);
    if (stored) {
      const removed = await tagRepo.detachTag(trx, workspaceId, row.id, stored.id);
      if (removed > 0) {
        await contactRepo.touchContact(trx, workspaceId, row.id, ctx.clock.now(), raw);
        await automate(ctx, trx, workspaceId, { contactId: row.id, tagsRemoved: [stored.name] });
      }
    }
    const names = await tagRepo.tagNamesByContact(trx, workspaceId, [row.id], raw);
    return { contact_id: row.id, tag: stored?.name ?? tag.name, tags: names.get(row.id) ?? [] };
  });
}

/** list-tags: every tag of the workspace with how many contacts carry it, alphabetical. */
export async function listTags(ctx: Context, workspaceId: string): Promise<Tag[]> {
  const rows = await tagRepo.listTagsWithCounts(ctx.database.db, workspaceId);
  return rows.map((row) => ({ id: row.id, name: row.name, contacts_count: row.contacts_count, created_at: isoTime(row.created_at) }));
}
