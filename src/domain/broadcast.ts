import type { FieldErrors } from './errors.js';
import { isUuid } from './ids.js';
import { isPlainObject } from './json.js';
import { extractMergeTags, mergeTagProblem } from './merge-tags.js';

/**
 * Broadcasts: one approved WhatsApp template sent once to an audience, now or at a
 * scheduled time. The pure rules: the audience's shape, the statuses and which of
 * them allow what, and the merge tags a broadcast's variables may use. Pure.
 */

export type BroadcastStatus = 'draft' | 'scheduled' | 'sending' | 'completed' | 'failed' | 'cancelled';
export const broadcastStatuses: readonly BroadcastStatus[] = ['draft', 'scheduled', 'sending', 'completed', 'failed', 'cancelled'];

/** Until sending starts, everything about a broadcast may change. */
export const editableStatuses: readonly BroadcastStatus[] = ['draft', 'scheduled'];
/** Cancelling stops what has not been queued yet and the queued messages not yet sent. */
export const cancellableStatuses: readonly BroadcastStatus[] = ['draft', 'scheduled', 'sending'];

/** The most contacts a broadcast may list by id; larger audiences are a tag, a list or a segment. */
export const maxListedContacts = 1000;

/**
 * Who receives it. A tag, a list or a segment is read as the broadcast goes out (a
 * contact tagged between scheduling and sending receives it); listed contacts are fixed.
 */
export type Audience =
  | { type: 'tag'; tag: string }
  | { type: 'segment'; segment_id: string }
  | { type: 'list'; list_id: string }
  | { type: 'contacts'; contact_ids: string[] };

const audienceKeys = { tag: 'tag', segment_id: 'segment', list_id: 'list', contact_ids: 'contacts' } as const;
type AudienceKey = keyof typeof audienceKeys;

/**
 * Reads an audience as the API takes it: exactly one of `tag`, `segment_id`,
 * `list_id` or `contact_ids`, with an optional `type` that must agree. Problems are
 * named by field (`audience.contact_ids.3`). Contact ids are de-duplicated and
 * lower-cased; whether the tag, list, segment or contacts exist is the service's check.
 *
 * @example
 * parseAudience({ tag: 'vip' }) // { audience: { type: 'tag', tag: 'vip' }, errors: {} }
 */
export function parseAudience(value: unknown): { audience: Audience | null; errors: FieldErrors } {
  const errors: FieldErrors = {};
  const fail = (field: string, problem: string) => {
    (errors[field] ??= []).push(`${field} ${problem}`);
    return { audience: null, errors };
  };
  if (!isPlainObject(value)) return fail('audience', 'must be an object with one of tag, segment_id, list_id or contact_ids');
  const unknown = Object.keys(value).filter((k) => k !== 'type' && !(k in audienceKeys));
  if (unknown.length > 0) return fail(`audience.${unknown[0]}`, 'is not a known field (use tag, segment_id, list_id or contact_ids)');
  const given = (Object.keys(audienceKeys) as AudienceKey[]).filter((k) => value[k] !== undefined);
  if (given.length !== 1) return fail('audience', given.length === 0 ? 'needs one of tag, segment_id, list_id or contact_ids' : `takes one of ${given.join(', ')}, not several`);
  const key = given[0]!;
  const type = audienceKeys[key];
  if (value.type !== undefined && value.type !== type) return fail('audience.type', `must be "${type}" for an audience given by ${key}`);
  const raw = value[key];
  switch (key) {
    case 'tag': {
      const tag = typeof raw === 'string' ? raw.normalize('NFC').replace(/\s+/g, ' ').trim() : '';
      if (tag === '' || tag.length > 100) return fail('audience.tag', 'must be a tag name of 1 to 100 characters');
      return { audience: { type: 'tag', tag }, errors };
    }
    case 'segment_id':
    case 'list_id': {
      if (typeof raw !== 'string' || !isUuid(raw)) return fail(`audience.${key}`, `must be a ${type} id (UUID)`);
      return { audience: key === 'segment_id' ? { type: 'segment', segment_id: raw.toLowerCase() } : { type: 'list', list_id: raw.toLowerCase() }, errors };
    }
    case 'contact_ids': {
      if (!Array.isArray(raw)) return fail('audience.contact_ids', 'must be an array of contact ids');
      if (raw.length === 0) return fail('audience.contact_ids', 'must name at least one contact');
      if (raw.length > maxListedContacts) return fail('audience.contact_ids', `may name at most ${maxListedContacts} contacts; use a tag, a list or a segment for more`);
      raw.forEach((id, i) => {
        if (typeof id !== 'string' || !isUuid(id)) (errors[`audience.contact_ids.${i}`] ??= []).push(`audience.contact_ids.${i} must be a contact id (UUID)`);
      });
      if (Object.keys(errors).length > 0) return { audience: null, errors };
      return { audience: { type: 'contacts', contact_ids: [...new Set((raw as string[]).map((id) => id.toLowerCase()))] }, errors };
    }
  }
}

/**
 * The variables of a broadcast: template placeholder keys to text, where the text may
 * hold contact merge tags rendered per recipient (`{{contact.first_name|there}}`,
 * `{{first_name}}`, `{{contact.metadata.plan}}`, `{{workspace.name}}`). Tags of other roots (`context`,
 * `event`, `reply`…) have no value outside a sequence or flow and are refused here,
 * named by variable, rather than rendering empty for every recipient.
 */
export function checkBroadcastVariables(value: unknown): { variables: Record<string, string> | null; errors: FieldErrors } {
  const errors: FieldErrors = {};
  if (value === undefined || value === null) return { variables: {}, errors };
  if (!isPlainObject(value)) {
    errors.variables = ['variables must be an object of placeholder keys to text, e.g. {"1": "{{contact.first_name|there}}"}'];
    return { variables: null, errors };
  }
  const variables: Record<string, string> = {};
  for (const [key, text] of Object.entries(value)) {
    const field = `variables.${key}`;
    if (!/^(\d{1,2}|header_1|button_\d)$/.test(key)) {
      (errors[field] ??= []).push(`${field} is not a placeholder key: use "1", "2"… for the body, "header_1", "button_<index>"`);
      continue;
    }
    if (typeof text !== 'string') {
      (errors[field] ??= []).push(`${field} must be a string`);
      continue;
    }
    if (text.length > 1024) {
      (errors[field] ??= []).push(`${field} must be at most 1024 characters`);
      continue;
    }
    for (const tag of extractMergeTags(text)) {
      const problem = mergeTagProblem(tag.path);
      const root = tag.path.split('.')[0]!;
      const allowed = root === 'contact' || root === 'workspace' || !tag.path.includes('.');
      if (problem !== null || !allowed || root === 'unsubscribe_url') {
        (errors[field] ??= []).push(`${field} uses {{${tag.path}}}, which a broadcast cannot fill: use contact fields such as {{contact.first_name|there}}`);
      }
    }
    variables[key] = text;
  }
  return { variables: Object.keys(errors).length > 0 ? null : variables, errors };
}

/** How far in the past a scheduled time may be and still mean "now": clients' clocks drift. */
export const scheduleSkewMs = 60_000;

/**
 * An ISO 8601 date-time with a zone (`2026-05-07T09:00:00Z`, `…+02:00`) as epoch ms, or
 * the problem with it. A time without a zone is refused: read on the server it would
 * be the server's zone, which the caller cannot see. A time more than a minute in the
 * past is refused too: it is almost certainly a mistake, and "now" is `/send`.
 */
export function parseScheduledAt(value: unknown, now: number): { at: number } | { problem: string } {
  if (typeof value !== 'string') return { problem: 'must be an ISO 8601 date-time such as 2026-05-07T09:00:00Z' };
  const text = value.trim();
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/i.test(text)) {
    return { problem: 'must be an ISO 8601 date-time with a time zone, such as 2026-05-07T09:00:00Z' };
  }
  const [year, month, day] = text.slice(0, 10).split('-').map(Number) as [number, number, number];
  const at = Date.parse(text);
  // Date.parse rolls 2026-02-30 over to March 2nd: a day the month lacks is a mistake.
  if (Number.isNaN(at) || new Date(Date.UTC(year, month - 1, day)).getUTCDate() !== day) return { problem: 'is not a valid date-time' };
  if (at < now - scheduleSkewMs) return { problem: `is in the past (${new Date(at).toISOString()}); give a future time, or send it now with /send` };
  return { at: Math.max(at, now) };
}
