import { applyContactChanges as applyFieldChanges, buildSearchText, contactFieldsOf, normalizeContactInput, type ContactChanges } from '../domain/contact.js';
import { AppError, invalid, type FieldErrors } from '../domain/errors.js';
import { isUuid, newId } from '../domain/ids.js';
import { isPlainObject, nestsDeeperThan, toJson } from '../domain/json.js';
import type { Tx } from '../store/database.js';
import * as contacts from '../store/engine-contact-repository.js';
import { isUniqueViolation } from '../store/errors.js';
import { applyContactChanges, enrollContacts, wakeForOutcome, type ContactChange, type EnrollmentResult } from './automation.js';
import type { Context } from './context.js';
import { refusal, requireEnrollableSequence, requireSequence, unsubscribedFrom, type EnrollableSequence } from './enrollment-admin-service.js';

/**
 * Executing a sequence for a batch of contacts: `POST /api/v1/sequences/{id}/execute`
 * (up to 100 contacts given by email, upserted) and the dashboard's
 * `POST /api/sequences/{id}/execute` (up to 500 existing contacts by id).
 *
 * Both run the whole call in one transaction with a fixed number of statements
 * whatever the batch size: one read of the contacts, one multi-row insert of the new
 * ones, one bulk update of changed names and phones, one multi-row insert of the
 * sessions. The call is refused with a 422 (`reason` says why) when the sequence is
 * not active, has no steps, has an A/B variant that cannot take its share, or when
 * every contact given is invalid or unsubscribed; a refused call writes nothing.
 */

export const executionLimits = {
  /** Contacts of one API call. */
  contacts: 100,
  /** Contact ids of one dashboard call. */
  contactIds: 500,
  contextBytes: 32_768,
} as const;

export type ExecutionSkipReason = 'invalid' | 'unsubscribed' | 'already_running' | 'enrollments_paused' | 'already_enrolled_once' | 'enrollment_key_missing' | 'ab_variant_not_active' | 'ab_variant_has_no_steps';

/** One result per contact given, in the order given. */
export interface ExecutionResult {
  /** The contact's position in the request. */
  index: number;
  /** The email as submitted (API call), or null when none was. */
  email?: string | null;
  contactId: string | null;
  status: 'queued' | 'skipped';
  reason?: ExecutionSkipReason;
  /** Why the contact is invalid: each problem under its field. */
  errors?: FieldErrors;
  /** The session started (queued) or the one already running. */
  sessionId?: string;
  /** With an A/B test: the side the contact runs, and that side's sequence. */
  variant?: 'A' | 'B';
  variantSequenceId?: string;
  /** API call: whether this call created the contact. */
  contactCreated?: boolean;
}

export interface ExecutionOutcome {
  success: true;
  sequenceId: string;
  queued: number;
  skipped: number;
  results: ExecutionResult[];
}

export interface ExecuteInput {
  contacts?: unknown;
  context?: unknown;
}

function readContext(value: unknown): Record<string, unknown> {
  if (value === undefined || value === null) return {};
  if (!isPlainObject(value)) throw invalid('context', 'must be an object');
  if (nestsDeeperThan(value, 16)) throw invalid('context', 'must not nest objects or arrays more than 16 levels deep');
  if (toJson(value).length > executionLimits.contextBytes) throw invalid('context', 'must be at most 32 KiB as JSON');
  return value;
}

/** A submitted contact, checked: its normalised email and field changes, or what is wrong with it. */
interface CheckedContact {
  index: number;
  submittedEmail: string | null;
  email: string | null;
  changes: ContactChanges;
  errors: FieldErrors | null;
}

const fieldNames = { first_name: 'firstName', last_name: 'lastName' } as Record<string, string>;

/** Present text: a string with something in it. Form-driven clients send every field, so "" and null mean "not given", never "clear". */
function given(value: unknown): boolean {
  return value !== undefined && value !== null && !(typeof value === 'string' && value.trim() === '');
}

function checkContact(item: unknown, index: number, defaultCountry: string): CheckedContact {
  const fail = (errors: FieldErrors, submittedEmail: string | null = null): CheckedContact => ({ index, submittedEmail, email: null, changes: {}, errors });
  if (!isPlainObject(item)) return fail({ contact: ['must be an object with at least an email'] });
  const c = item as Record<string, unknown>;
  const submittedEmail = typeof c.email === 'string' ? c.email : null;
  if (!given(c.email)) return fail({ email: ['email is required: the contact is found or created by it'] }, submittedEmail);
  try {
    const changes = normalizeContactInput(
      {
        email: c.email as string,
        ...(given(c.firstName) ? { first_name: c.firstName as string } : {}),
        ...(given(c.lastName) ? { last_name: c.lastName as string } : {}),
        ...(given(c.phone) ? { phone: c.phone as string } : {}),
      },
      defaultCountry,
    );
    return { index, submittedEmail, email: changes.email!, changes: { ...changes, email: undefined }, errors: null };
  } catch (error) {
    if (!(error instanceof AppError) || !error.errors) throw error;
    // Named as this API spells them.
    const errors: FieldErrors = {};
    for (const [field, problems] of Object.entries(error.errors)) {
      const name = fieldNames[field] ?? field;
      errors[name] = problems.map((p) => p.replace(new RegExp(`^${field}\\b`), name));
    }
    return fail(errors, submittedEmail);
  }
}

function readContacts(value: unknown, defaultCountry: string): CheckedContact[] {
  const max = executionLimits.contacts;
  if (!Array.isArray(value) || value.length === 0) throw invalid('contacts', `is required: an array of 1 to ${max} contacts, each with an email`);
  if (value.length > max) throw invalid('contacts', `may hold at most ${max} contacts per call (got ${value.length}); split the batch`);
  return value.map((item, i) => checkContact(item, i, defaultCountry));
}

/** The result of an enrollment attempt as this API reports it. */
function resultOf(base: Pick<ExecutionResult, 'index' | 'email' | 'contactId' | 'contactCreated'>, outcome: EnrollmentResult): ExecutionResult {
  const variant = outcome.variant === undefined ? {} : { variant: outcome.variant, variantSequenceId: outcome.definitionId };
  if (outcome.status === 'enrolled') return { ...base, status: 'queued', sessionId: outcome.sessionId, ...variant };
  if (outcome.status === 'already_enrolled') return { ...base, status: 'skipped', reason: 'already_running', ...(outcome.sessionId ? { sessionId: outcome.sessionId } : {}), ...variant };
  return { ...base, status: 'skipped', reason: (outcome.reason ?? 'invalid') as ExecutionSkipReason };
}

function summary(sequenceId: string, results: ExecutionResult[]): ExecutionOutcome {
  return { success: true, sequenceId, queued: results.filter((r) => r.status === 'queued').length, skipped: results.filter((r) => r.status === 'skipped').length, results };
}

/** The 422 of a call where no contact can be enrolled, with every result and the invalid fields named. */
function nothingToEnroll(results: ExecutionResult[], fieldPrefix: string): AppError {
  const invalidCount = results.filter((r) => r.reason === 'invalid').length;
  const unsubscribed = results.filter((r) => r.reason === 'unsubscribed').length;
  const errors: FieldErrors = {};
  for (const r of results) for (const [field, problems] of Object.entries(r.errors ?? {})) errors[`${fieldPrefix}.${r.index}${field === 'contact' ? '' : `.${field}`}`] = problems;
  const parts = [invalidCount > 0 ? `${invalidCount} invalid` : '', unsubscribed > 0 ? `${unsubscribed} unsubscribed` : ''].filter((p) => p !== '');
  return refusal('no_enrollable_contacts', `None of the submitted contacts can be enrolled (${parts.join(', ')}); nothing was written`, { results }, errors);
}

interface Planned {
  checked: CheckedContact;
  /** The contact this entry enrolls, once known. */
  contact?: contacts.EngineContactRow;
  /** Whether this entry is the one that writes the contact (the first entry of its email). */
  writes: boolean;
  skip?: { reason: 'invalid' | 'unsubscribed'; errors?: FieldErrors };
  created?: boolean;
}

const phoneTaken: FieldErrors = { phone: ['phone is already used by another contact in this workspace'] };

/**
 * The API's execute: finds or creates each contact by email (names and phone, E.164,
 * updated when given), then enrolls it. Every contact gets a result naming it by
 * `index` and `email`: `queued` with its session, or `skipped` with `reason`
 * `invalid` (with `errors` per field), `unsubscribed`, `already_running` (with the
 * running session), `enrollments_paused`, `already_enrolled_once` or
 * `enrollment_key_missing`. Contacts this call creates start their contact_added
 * sequences and join their segments, in the same transaction.
 *
 * @example
 * await executeSequence(ctx, workspaceId, sequenceId, { contacts: [{ email: 'customer@example.com', firstName: 'Jane', lastName: 'Doe', phone: '+15551234567' }] });
 * // { success: true, sequenceId, queued: 1, skipped: 0, results: [{ index: 0, email: 'customer@example.com', contactId: '…', contactCreated: true, status: 'queued', sessionId: '…' }] }
 */
export async function executeSequence(ctx: Context, workspaceId: string, sequenceId: string, input: ExecuteInput): Promise<ExecutionOutcome> {
  const db = ctx.database.db;
  await requireSequence(db, workspaceId, sequenceId);
  const checked = readContacts(input.contacts, ctx.config.defaultCountry);
  const context = readContext(input.context);

  const { outcome, started } = await db.transaction().execute(async (trx) => {
    const target = await requireEnrollableSequence(ctx, trx, workspaceId, sequenceId);
    const now = ctx.clock.now();
    const plans: Planned[] = checked.map((c) => (c.errors === null ? { checked: c, writes: false } : { checked: c, writes: false, skip: { reason: 'invalid', errors: c.errors } }));
    const valid = plans.filter((p) => p.skip === undefined);
    const byEmail = await contacts.findContactsByEmails(trx, workspaceId, valid.map((p) => p.checked.email!));
    const byPhone = await contacts.findContactsByPhones(trx, workspaceId, valid.flatMap((p) => (p.checked.changes.phone ? [p.checked.changes.phone] : [])));

    // Which entry writes each email (the first valid one: a repeated email enrolls the
    // same contact, and its fields are ignored), and who owns each phone once this call is done.
    const writer = new Map<string, Planned>();
    const phoneOwner = new Map<string, string>([...byPhone].map(([phone, row]) => [phone, row.email ?? `id:${row.id}`]));
    for (const plan of valid) {
      const email = plan.checked.email!;
      const existing = byEmail.get(email);
      if (existing && unsubscribedFrom(target.version, existing)) {
        plan.skip = { reason: 'unsubscribed' };
        plan.contact = existing;
        continue;
      }
      if (writer.has(email)) continue;
      const phone = plan.checked.changes.phone;
      if (phone) {
        const owner = phoneOwner.get(phone);
        if (owner !== undefined && owner !== email) {
          plan.skip = { reason: 'invalid', errors: phoneTaken };
          continue;
        }
        phoneOwner.set(phone, email);
      }
      plan.writes = true;
      writer.set(email, plan);
    }
    if (plans.every((p) => p.skip !== undefined)) throw nothingToEnroll(plans.map((p) => skippedResult(p)), 'contacts');

    const contactChanges = await writeContacts(ctx, trx, workspaceId, [...writer.values()], byEmail, now);
    for (const plan of plans) if (plan.skip === undefined) plan.contact ??= byEmail.get(plan.checked.email!);
    // A new contact that lost its phone to a concurrent request was not inserted.
    for (const plan of plans) if (plan.skip === undefined && plan.contact === undefined) plan.skip = { reason: 'invalid', errors: phoneTaken };
    if (plans.every((p) => p.skip !== undefined)) throw nothingToEnroll(plans.map((p) => skippedResult(p)), 'contacts');

    const enrolling = plans.filter((p) => p.skip === undefined);
    const outcomes = await enrollContacts(ctx, trx, target.rule, enrolling.map((p) => p.contact!.id), { source: 'api:execute', context });
    const outcomeOf = new Map(enrolling.map((p, i) => [p, outcomes[i]!]));
    const results = plans.map((plan) => {
      const outcome = outcomeOf.get(plan);
      if (outcome === undefined) return skippedResult(plan);
      return resultOf({ index: plan.checked.index, email: plan.checked.submittedEmail, contactId: plan.contact!.id, contactCreated: plan.created === true }, outcome);
    });
    // After the explicit enrollments, so a contact_added sequence executed on purpose keeps the caller's context.
    const automation = await applyContactChanges(ctx, trx, workspaceId, contactChanges, 'api');
    return { outcome: summary(target.row.id, results), started: [...outcomes, ...automation.enrollments] };
  });
  wakeForOutcome(ctx, { enrollments: started });
  return outcome;
}

function skippedResult(plan: Planned): ExecutionResult {
  return {
    index: plan.checked.index,
    email: plan.checked.submittedEmail,
    contactId: plan.contact?.id ?? null,
    status: 'skipped',
    reason: plan.skip?.reason ?? 'invalid',
    ...(plan.skip?.errors ? { errors: plan.skip.errors } : {}),
  };
}

/**
 * Inserts the new contacts (one multi-row statement) and updates the names and phones
 * of existing ones that changed (one bulk update), then fills `byEmail` with the rows
 * as stored. Returns the changes to report to the automation: created contacts, and
 * existing ones whose fields changed.
 */
async function writeContacts(ctx: Context, trx: Tx, workspaceId: string, writers: Planned[], byEmail: Map<string, contacts.EngineContactRow>, now: number): Promise<ContactChange[]> {
  const fresh: Planned[] = [];
  const updates: contacts.ContactNameUpdate[] = [];
  const changes: ContactChange[] = [];
  for (const plan of writers) {
    const existing = byEmail.get(plan.checked.email!);
    if (existing === undefined) {
      fresh.push(plan);
      continue;
    }
    const next = applyFieldChanges(contactFieldsOf(existing), plan.checked.changes);
    if (next.first_name === existing.first_name && next.last_name === existing.last_name && next.name === existing.name && next.phone === existing.phone) continue;
    updates.push({ id: existing.id, first_name: next.first_name, last_name: next.last_name, name: next.name, phone: next.phone, search_text: buildSearchText(next), updated_at: now });
    changes.push({ contactId: existing.id, attributes: true });
  }
  try {
    await contacts.updateContactNames({ db: trx, raw: ctx.database.sqlite }, updates);
  } catch (error) {
    // Another request gave one of these phones to its own contact since they were read.
    if (isUniqueViolation(error, 'phone')) throw new AppError('conflict', 'A phone in this call was just given to another contact by a concurrent request; retry the call');
    throw error;
  }

  if (fresh.length > 0) {
    const rows = fresh.map((plan) => {
      const fields = applyFieldChanges({ phone: null, email: plan.checked.email, name: null, first_name: null, last_name: null, timezone: null, language: null, metadata: {} }, plan.checked.changes);
      return contacts.newContactValues({ id: newId(now), workspace_id: workspaceId, email: plan.checked.email, phone: fields.phone, first_name: fields.first_name, last_name: fields.last_name, name: fields.name, source: 'api', now, optedIn: true });
    });
    const inserted = await contacts.insertContactsIfNew(trx, rows);
    const stored = await contacts.findContactsByEmails(trx, workspaceId, fresh.map((p) => p.checked.email!));
    for (const plan of fresh) {
      const row = stored.get(plan.checked.email!);
      if (row === undefined) continue;
      byEmail.set(plan.checked.email!, row);
      plan.created = inserted.has(row.id);
      if (plan.created) changes.push({ contactId: row.id, created: true });
    }
  }
  return changes;
}

/**
 * The dashboard's execute: enrolls up to 500 existing contacts of the workspace by id.
 * An id that names no contact of the workspace is `invalid`; the other results and the
 * refusals are those of the API's execute. Nothing but sessions is written.
 */
export async function executeSequenceForContacts(ctx: Context, workspaceId: string, sequenceId: string, input: { contactIds?: unknown; context?: unknown }): Promise<ExecutionOutcome> {
  const db = ctx.database.db;
  await requireSequence(db, workspaceId, sequenceId);
  const max = executionLimits.contactIds;
  const ids = input.contactIds;
  if (!Array.isArray(ids) || ids.length === 0) throw invalid('contactIds', `is required: an array of 1 to ${max} contact ids`);
  if (ids.length > max) throw invalid('contactIds', `may hold at most ${max} contact ids per call (got ${ids.length})`);
  const context = readContext(input.context);
  const wanted = ids.map((id) => (typeof id === 'string' && isUuid(id) ? id.toLowerCase() : null));

  const { outcome, started } = await db.transaction().execute(async (trx) => {
    const target: EnrollableSequence = await requireEnrollableSequence(ctx, trx, workspaceId, sequenceId);
    const found = await contacts.findContactsByIds(trx, workspaceId, wanted.filter((id): id is string => id !== null));
    type Entry = { index: number; contact: contacts.EngineContactRow | undefined; skip?: { reason: 'invalid' | 'unsubscribed'; errors?: FieldErrors } };
    const entries: Entry[] = wanted.map((id, index) => {
      const contact = id === null ? undefined : found.get(id);
      if (contact === undefined) return { index, contact, skip: { reason: 'invalid', errors: { contact: ['no contact with this id in the workspace'] } } };
      if (unsubscribedFrom(target.version, contact)) return { index, contact, skip: { reason: 'unsubscribed' } };
      return { index, contact };
    });
    const skipped = (e: Entry): ExecutionResult => ({
      index: e.index,
      contactId: e.contact?.id ?? (typeof ids[e.index] === 'string' ? (ids[e.index] as string) : null),
      status: 'skipped',
      reason: e.skip!.reason,
      ...(e.skip!.errors ? { errors: e.skip!.errors } : {}),
    });
    if (entries.every((e) => e.skip !== undefined)) throw nothingToEnroll(entries.map(skipped), 'contactIds');
    const enrolling = entries.filter((e) => e.skip === undefined);
    const outcomes = await enrollContacts(ctx, trx, target.rule, enrolling.map((e) => e.contact!.id), { source: 'dashboard:execute', context });
    const outcomeOf = new Map(enrolling.map((e, i) => [e, outcomes[i]!]));
    const results = entries.map((e) => {
      const result = outcomeOf.get(e);
      return result === undefined ? skipped(e) : resultOf({ index: e.index, contactId: e.contact!.id }, result);
    });
    return { outcome: summary(target.row.id, results), started: outcomes };
  });
  wakeForOutcome(ctx, { enrollments: started });
  return outcome;
}
