import { isoTime } from './clock.js';
import { invalid, invalidFields, type FieldErrors } from './errors.js';
import { isPlainObject, parseJson, type JsonObject } from './json.js';
import { normalizeEmail, normalizePhone } from './phone.js';

/** Bounds of every contact field; the API schemas and these rules share them. */
export const contactLimits = {
  phone: 40,
  email: 254,
  name: 200,
  timezone: 64,
  language: 35,
  tag: 100,
  /** Tags named in one request. */
  tagsPerRequest: 100,
  /** A comma-separated `tags` string. */
  tagsText: 10_000,
  /** The serialised JSON of a contact's metadata, in bytes. */
  metadataBytes: 16 * 1024,
  query: 200,
  queryTerms: 10,
  searchResults: 50,
  pageSize: 200,
  defaultPageSize: 50,
} as const;

/** A contact as the API and the MCP tools show it. */
export interface Contact {
  id: string;
  phone: string | null;
  email: string | null;
  name: string | null;
  first_name: string | null;
  last_name: string | null;
  timezone: string | null;
  language: string | null;
  source: string;
  opted_in_at: string | null;
  opted_out_at: string | null;
  last_message_at: string | null;
  total_messages: number;
  tags: string[];
  metadata: JsonObject;
  created_at: string;
  updated_at: string;
}

/** The stored columns the public shape is built from (the store's ContactRow fits it). */
export interface StoredContact {
  id: string;
  phone: string | null;
  email: string | null;
  name: string | null;
  first_name: string | null;
  last_name: string | null;
  timezone: string | null;
  language: string | null;
  source: string;
  metadata: string;
  opted_in_at: number | null;
  opted_out_at: number | null;
  last_message_at: number | null;
  total_messages: number;
  created_at: number;
  updated_at: number;
}

export function toPublicContact(row: StoredContact, tags: readonly string[]): Contact {
  return {
    id: row.id,
    phone: row.phone,
    email: row.email,
    name: row.name,
    first_name: row.first_name,
    last_name: row.last_name,
    timezone: row.timezone,
    language: row.language,
    source: row.source,
    opted_in_at: isoTime(row.opted_in_at),
    opted_out_at: isoTime(row.opted_out_at),
    last_message_at: isoTime(row.last_message_at),
    total_messages: Number(row.total_messages),
    tags: [...tags],
    metadata: storedMetadata(row.metadata),
    created_at: isoTime(row.created_at),
    updated_at: isoTime(row.updated_at),
  };
}

/**
 * Contact fields as a caller sends them. A property left out means "leave it";
 * `""` (or null) means "clear it".
 */
export interface ContactInput {
  phone?: string | null;
  email?: string | null;
  name?: string | null;
  first_name?: string | null;
  last_name?: string | null;
  timezone?: string | null;
  language?: string | null;
  /** Comma-separated names, or an array of names. */
  tags?: string | readonly string[] | null;
  /** Shallow patch: a key set to `""` or null is removed. */
  metadata?: unknown;
}

export interface TagName {
  /** As first written, trimmed, inner whitespace collapsed. */
  name: string;
  /** The case-insensitive identity (`tags.name_key`). */
  key: string;
}

/** Normalised changes: an absent property leaves the field, null clears it. */
export interface ContactChanges {
  phone?: string | null;
  email?: string | null;
  name?: string | null;
  first_name?: string | null;
  last_name?: string | null;
  timezone?: string | null;
  language?: string | null;
  metadata?: JsonObject;
  tags?: TagName[];
}

/** The stored, editable fields of a contact. */
export interface ContactFields {
  phone: string | null;
  email: string | null;
  name: string | null;
  first_name: string | null;
  last_name: string | null;
  timezone: string | null;
  language: string | null;
  metadata: JsonObject;
}

export const emptyContactFields: Readonly<ContactFields> = Object.freeze({
  phone: null,
  email: null,
  name: null,
  first_name: null,
  last_name: null,
  timezone: null,
  language: null,
  metadata: {},
});

type TextField = 'name' | 'first_name' | 'last_name';

/**
 * `"  Ana  "` → `"Ana"`; `""`/whitespace/null → null (clear); undefined stays undefined
 * (leave). The API's schemas check types already; callers without them (MCP tools,
 * scripts) get a 422 naming the field instead of a crash.
 */
function cleanText(value: unknown, field: string): string | null | undefined {
  if (value === undefined) return undefined;
  if (value === null) return null;
  if (typeof value !== 'string') throw invalid(field, 'must be a string');
  // Control characters have no place in a name and break CSV exports and logs.
  // eslint-disable-next-line no-control-regex
  const cleaned = value.replace(/[\u0000-\u001f\u007f]+/g, ' ').replace(/\s+/g, ' ').trim();
  return cleaned === '' ? null : cleaned;
}

/** The canonical IANA name of a time zone (`america/new_york` → `America/New_York`), or null. */
export function normalizeTimeZone(value: string): string | null {
  if (value.length > contactLimits.timezone || !/^[A-Za-z0-9_+\-/]+$/.test(value)) return null;
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone: value }).resolvedOptions().timeZone;
  } catch {
    return null;
  }
}

const languagePattern = /^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*$/;

/**
 * Normalises and checks every field a caller sent, reporting every problem at once
 * (a 422 naming each field). Phones become E.164, read in `defaultCountry` when they
 * lack a `+`; emails are lowercased.
 */
export function normalizeContactInput(input: ContactInput, defaultCountry: string): ContactChanges {
  const errors: FieldErrors = {};
  const problem = (field: string, text: string) => (errors[field] ??= []).push(`${field} ${text}`);
  const changes: ContactChanges = {};

  const phone = cleanText(input.phone, 'phone');
  if (phone !== undefined) {
    if (phone === null) changes.phone = null;
    else {
      const normalized = normalizePhone(phone, defaultCountry);
      if (normalized === null) problem('phone', `must be a valid phone number, in international form such as +14155550123 (numbers without + are read as ${defaultCountry})`);
      else changes.phone = normalized;
    }
  }

  const email = cleanText(input.email, 'email');
  if (email !== undefined) {
    if (email === null) changes.email = null;
    else {
      const normalized = normalizeEmail(email);
      if (normalized === null) problem('email', 'must be a valid email address such as ana@example.com');
      else changes.email = normalized;
    }
  }

  for (const field of ['name', 'first_name', 'last_name'] as const satisfies readonly TextField[]) {
    const value = cleanText(input[field], field);
    if (value === undefined) continue;
    if (value !== null && value.length > contactLimits.name) problem(field, `must be at most ${contactLimits.name} characters`);
    else changes[field] = value;
  }

  const timezone = cleanText(input.timezone, 'timezone');
  if (timezone !== undefined) {
    if (timezone === null) changes.timezone = null;
    else {
      const normalized = normalizeTimeZone(timezone);
      if (normalized === null) problem('timezone', 'must be an IANA time zone such as America/New_York');
      else changes.timezone = normalized;
    }
  }

  const language = cleanText(input.language, 'language');
  if (language !== undefined) {
    if (language === null) changes.language = null;
    else if (language.length > contactLimits.language || !languagePattern.test(language)) problem('language', 'must be a language code such as en, pt_BR or es-419');
    else changes.language = language;
  }

  if (input.tags !== undefined) {
    try {
      changes.tags = parseTags(input.tags);
    } catch (error) {
      Object.assign(errors, (error as { errors?: FieldErrors }).errors ?? { tags: ['tags is invalid'] });
    }
  }

  if (input.metadata !== undefined) {
    if (!isPlainObject(input.metadata)) problem('metadata', 'must be an object, e.g. {"plan": "pro"}');
    else if (metadataBytes(input.metadata) > contactLimits.metadataBytes) problem('metadata', `must be at most ${contactLimits.metadataBytes} bytes when serialised as JSON`);
    else changes.metadata = input.metadata;
  }

  if (Object.keys(errors).length > 0) throw invalidFields(errors);
  return changes;
}

function metadataBytes(value: JsonObject): number {
  return Buffer.byteLength(JSON.stringify(value), 'utf8');
}

/**
 * Shallow merge: keys of `patch` replace those of `current`; a key set to `""` or
 * null is removed. Built with Object.fromEntries, so a `__proto__` key stays a plain key.
 */
export function mergeMetadata(current: JsonObject, patch: JsonObject): JsonObject {
  const merged = new Map(Object.entries(current));
  for (const [key, value] of Object.entries(patch)) {
    if (value === '' || value === null) merged.delete(key);
    else merged.set(key, value);
  }
  return Object.fromEntries(merged);
}

/**
 * Applies normalised changes to a contact's fields. `name` also fills `first_name`
 * and `last_name` (first word, the rest) unless the same change gives either; names
 * given only in parts make `name` when the contact has none. The merged metadata must
 * stay within 16 KiB.
 */
export function applyContactChanges(current: ContactFields, changes: ContactChanges): ContactFields {
  const next: ContactFields = { ...current, metadata: current.metadata };
  for (const field of ['phone', 'email', 'name', 'first_name', 'last_name', 'timezone', 'language'] as const) {
    const value = changes[field];
    if (value !== undefined) next[field] = value;
  }
  const partsGiven = changes.first_name !== undefined || changes.last_name !== undefined;
  if (typeof changes.name === 'string' && !partsGiven) {
    const [first, ...rest] = changes.name.split(' ');
    next.first_name = first ?? null;
    next.last_name = rest.length > 0 ? rest.join(' ') : null;
  } else if (partsGiven && changes.name === undefined && next.name === null) {
    const joined = [next.first_name, next.last_name].filter((p) => p !== null).join(' ');
    next.name = joined === '' ? null : joined.slice(0, contactLimits.name);
  }
  if (changes.metadata !== undefined) {
    next.metadata = mergeMetadata(current.metadata, changes.metadata);
    if (metadataBytes(next.metadata) > contactLimits.metadataBytes) {
      throw invalid('metadata', `would exceed ${contactLimits.metadataBytes} bytes once merged with the stored metadata; remove keys by setting them to ""`);
    }
  }
  return next;
}

/** Folds text for matching: lowercase, accents removed (`José` matches `jose`). */
export function foldForSearch(text: string): string {
  return text.normalize('NFKD').replace(/\p{M}+/gu, '').toLowerCase();
}

/** The `search_text` column: names, phone and email, folded, space-separated. */
export function buildSearchText(fields: Pick<ContactFields, 'name' | 'first_name' | 'last_name' | 'phone' | 'email'>): string {
  const parts = [fields.name, fields.first_name, fields.last_name, fields.phone, fields.email].filter((p): p is string => p !== null && p !== '');
  return foldForSearch([...new Set(parts)].join(' '));
}

/**
 * The words of a search query, folded like `search_text`. A word that looks like a
 * phone fragment (`(415)`, `555-0123`, `+1415`) keeps only its digits, so it matches
 * the stored E.164 number however the caller formatted it.
 */
export function searchTerms(query: string | undefined | null): string[] {
  if (query === undefined || query === null) return [];
  if (typeof query !== 'string') throw invalid('query', 'must be a string');
  if (query.length > contactLimits.query) throw invalid('query', `must be at most ${contactLimits.query} characters`);
  const words = foldForSearch(query)
    .split(/\s+/)
    .filter((w) => w !== '')
    .map((w) => (/^[+\d().\-/]+$/.test(w) && /\d/.test(w) ? w.replace(/\D/g, '') : w));
  const unique = [...new Set(words)];
  if (unique.length > contactLimits.queryTerms) throw invalid('query', `must have at most ${contactLimits.queryTerms} words`);
  return unique;
}

/** Escapes LIKE wildcards so user text matches literally; pair with `escape '\'`. */
export function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/** `%term%`, escaped: the pattern for "contains". */
export function containsPattern(term: string): string {
  return `%${escapeLike(term)}%`;
}

/** The case-insensitive identity of a tag name. */
export function tagKey(name: string): string {
  return name.normalize('NFKC').toLowerCase();
}

/**
 * One tag name: whitespace trimmed and collapsed, 1 to 100 characters, no comma (the
 * `tags` field is comma-separated, so a comma could never round-trip).
 */
export function normalizeTagName(raw: string, field = 'tag'): TagName {
  if (raw === undefined || raw === null) throw invalid(field, 'is required');
  if (typeof raw !== 'string') throw invalid(field, 'must be a string');
  const name = raw.normalize('NFC').replace(/\s+/g, ' ').trim();
  if (name === '') throw invalid(field, 'must not be empty');
  if (name.length > contactLimits.tag) throw invalid(field, `must be at most ${contactLimits.tag} characters`);
  if (name.includes(',')) throw invalid(field, 'must not contain a comma');
  return { name, key: tagKey(name) };
}

/**
 * Tags from a comma-separated string (`"vip, lead"`) or an array (`["vip", "lead"]`;
 * elements are split on commas too). Empty pieces are skipped, duplicates (ignoring
 * case) keep their first spelling. `""`, null and `[]` mean "no tags".
 */
export function parseTags(input: string | readonly string[] | null | undefined): TagName[] {
  if (input === undefined || input === null) return [];
  if (typeof input === 'string' && input.length > contactLimits.tagsText) throw invalid('tags', `must be at most ${contactLimits.tagsText} characters`);
  const pieces = (typeof input === 'string' ? [input] : input).flatMap((item) => {
    if (typeof item !== 'string') throw invalid('tags', 'must be a comma-separated string or an array of strings');
    return item.split(',');
  });
  const byKey = new Map<string, TagName>();
  for (const piece of pieces) {
    if (piece.trim() === '') continue;
    const tag = normalizeTagName(piece, 'tags');
    if (!byKey.has(tag.key)) byKey.set(tag.key, tag);
  }
  if (byKey.size > contactLimits.tagsPerRequest) throw invalid('tags', `must name at most ${contactLimits.tagsPerRequest} tags`);
  return [...byKey.values()];
}

/** A reference to one contact, as the actions accept it. */
export interface ContactRef {
  contact_id?: string | null;
  phone?: string | null;
  email?: string | null;
}

export type ContactLookup = { by: 'id'; id: string } | { by: 'phone'; phone: string } | { by: 'email'; email: string };

/**
 * Which contact a request names: `contact_id` first, then `phone`, then `email`
 * (only those in `accepted`). Empty strings count as absent, because form-driven
 * clients (n8n, Zapier) send every field of the form.
 */
export function resolveContactRef(ref: ContactRef, defaultCountry: string, accepted: ReadonlyArray<'contact_id' | 'phone' | 'email'>): ContactLookup {
  const id = cleanText(ref.contact_id, 'contact_id');
  if (accepted.includes('contact_id') && typeof id === 'string') return { by: 'id', id: id.toLowerCase() };
  const phone = cleanText(ref.phone, 'phone');
  if (accepted.includes('phone') && typeof phone === 'string') {
    const normalized = normalizePhone(phone, defaultCountry);
    if (normalized === null) throw invalid('phone', 'must be a valid phone number, in international form such as +14155550123');
    return { by: 'phone', phone: normalized };
  }
  const email = cleanText(ref.email, 'email');
  if (accepted.includes('email') && typeof email === 'string') {
    const normalized = normalizeEmail(email);
    if (normalized === null) throw invalid('email', 'must be a valid email address such as ana@example.com');
    return { by: 'email', email: normalized };
  }
  const names = accepted.join(accepted.length > 2 ? ', ' : ' or ').replace(/, (?=[^,]*$)/, ' or ');
  throw invalid(accepted[0] ?? 'contact_id', `is required: name the contact by ${names}`);
}

/** The fields of a stored contact that changes apply to. */
export function contactFieldsOf(row: Pick<StoredContact, keyof ContactFields>): ContactFields {
  return {
    phone: row.phone,
    email: row.email,
    name: row.name,
    first_name: row.first_name,
    last_name: row.last_name,
    timezone: row.timezone,
    language: row.language,
    metadata: storedMetadata(row.metadata),
  };
}

function storedMetadata(text: string): JsonObject {
  const value = parseJson<unknown>(text, {});
  return isPlainObject(value) ? value : {};
}
