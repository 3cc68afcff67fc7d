import type { CreatedDiscount, DiscountOutcome, DiscountRequest } from '../channels/discount-provider.js';
import { createShopifyDiscount } from '../channels/shopify-discounts.js';
import { createStripeDiscount } from '../channels/stripe-discounts.js';
import { isoTime } from '../domain/clock.js';
import { discountCodeKey, newDiscountCode } from '../domain/discount-code.js';
import { discountExpiry, discountType } from '../domain/discount-spec.js';
import { AppError, invalid, notFound, toError } from '../domain/errors.js';
import { decodeCursor, encodeCursor } from '../domain/cursor.js';
import { newId, isUuid } from '../domain/ids.js';
import { parseJson, toJson } from '../domain/json.js';
import { normalizeEmail } from '../domain/phone.js';
import { SecretBoxError } from '../domain/secret-box.js';
import * as codesRepo from '../store/discount-code-repository.js';
import type { DiscountCodeRow } from '../store/discount-code-repository.js';
import * as sessionsRepo from '../store/session-repository.js';
import type { Db, Tx } from '../store/database.js';
import { computeBackoff, maxAttempts } from './backoff.js';
import type { Context } from './context.js';
import { getIntegrationCredentials, recordIntegrationStatus, type IntegrationCredentials } from './integration-service.js';
import type { DiscountCall, DiscountStepResult, SessionState } from './interpreter.js';

/**
 * Discount codes: what a `create_discount` step does once the interpreter has chosen its
 * code, and Nudge's own (`builtin`) codes as the API reads and redeems them.
 *
 * A step's run, crash-safe in three parts:
 * 1. The scheduler's transaction commits the session waiting on the step, with the code
 *    and time the run will use (interpreter.ts, DiscountRun).
 * 2. The worker calls the provider outside any transaction ({@link attemptDiscount}). Every
 *    attempt of the run sends the same code, the same parameters and the same idempotency
 *    key (session:node:visit): Stripe replays what it did, and both clients look the code
 *    up first, so a retry after a lost answer or a crash finds the code instead of making
 *    a second one. Builtin codes need no call.
 * 3. One transaction ({@link settleDiscount}) stores the code in discount_codes (unique per
 *    step run) and the result in the session's state, or schedules a retry. The session's
 *    next run reads the result and goes on without calling anyone again.
 */

/** A step's discount call, with the session it belongs to. */
export interface PendingDiscount extends DiscountCall {
  sessionId: string;
  workspaceId: string;
  definitionId: string;
  contactId: string;
}

export type DiscountAttempt =
  | { kind: 'builtin' }
  | { kind: 'provider'; outcome: DiscountOutcome; credentials: IntegrationCredentials | null };

/**
 * Makes the provider call for one attempt of a step. Never throws: every failure comes
 * back as an outcome with a retryable flag.
 */
export async function attemptDiscount(ctx: Context, call: PendingDiscount): Promise<DiscountAttempt> {
  if (call.provider === 'builtin') return { kind: 'builtin' };
  if (call.provider !== 'stripe' && call.provider !== 'shopify') {
    return { kind: 'provider', credentials: null, outcome: { ok: false, retryable: false, code: 'invalid_discount', message: `Unknown discount provider "${call.provider}"` } };
  }
  let credentials: IntegrationCredentials | null;
  try {
    credentials = await getIntegrationCredentials(ctx, call.workspaceId, call.provider);
  } catch (error) {
    if (!(error instanceof SecretBoxError)) throw error;
    return { kind: 'provider', credentials: null, outcome: { ok: false, retryable: false, code: 'integration_unreadable', message: error.message } };
  }
  if (!credentials) {
    const message = `The discount provider ${call.provider} is not connected (PUT /api/v1/settings/integrations/${call.provider})`;
    return { kind: 'provider', credentials: null, outcome: { ok: false, retryable: false, code: 'provider_not_connected', message } };
  }
  const request: DiscountRequest = { spec: call.spec, code: call.code, idempotencyKey: call.idempotency_key, customerEmail: call.customer_email, now: call.at };
  const options = { timeoutMs: ctx.config.webhookTimeoutMs };
  try {
    const outcome = credentials.provider === 'stripe' ? await createStripeDiscount(credentials.settings, request, options) : await createShopifyDiscount(credentials.settings, request, options);
    return { kind: 'provider', credentials, outcome };
  } catch (error) {
    // The clients return expected failures as values; a throw is a bug or an outage: retry it.
    return { kind: 'provider', credentials, outcome: { ok: false, retryable: true, code: 'client_error', message: toError(error).message } };
  }
}

/**
 * Records one attempt in the caller's transaction: the code in discount_codes, and in the
 * session either the result (for the step's next run) or the retry after a backoff.
 * Returns whether the session was changed (and should be woken).
 */
export async function settleDiscount(ctx: Context, trx: Tx, call: PendingDiscount, attempt: DiscountAttempt): Promise<boolean> {
  const now = ctx.clock.now();
  const key = `${call.node_id}:${call.visit}`;
  const stepKey = `${call.sessionId}:${key}`;
  const session = await sessionsRepo.findSessionForUpdate(trx, ctx.database.dialect, call.workspaceId, call.sessionId);
  const state = session ? parseJson<SessionState>(session.state, { visits: {} }) : null;
  const run = state?.discount_runs?.[key];
  // The session may have moved on meanwhile (stopped, or another worker settled this run).
  const current = session !== undefined && session.active === 1 && session.current_node === call.node_id && run !== undefined && run.result === undefined && run.code === call.code;

  let result: DiscountStepResult | null = null;
  let retryAt: number | null = null;
  if (attempt.kind === 'builtin') {
    if (!current) return false;
    const row = await storeBuiltinCode(trx, call, stepKey, now);
    result = { ok: true, discount: tagsOf(row) };
  } else {
    const { outcome, credentials } = attempt;
    if (outcome.ok) {
      // Stored even when the session has moved on: the code exists at the provider.
      const row = await storeProviderCode(ctx, trx, call, stepKey, outcome.discount, now);
      if (credentials && credentials.status !== 'ok') await recordIntegrationStatus(ctx, trx, call.workspaceId, credentials.provider, 'ok', null, credentials.sealed);
      result = { ok: true, discount: { ...tagsOf(row), ...tagsOfCreated(outcome.discount), id: row.id } };
    } else {
      if (outcome.code === 'auth_failed' && credentials) await recordIntegrationStatus(ctx, trx, call.workspaceId, credentials.provider, 'error', outcome.message, credentials.sealed);
      if (outcome.retryable && call.attempt < maxAttempts) retryAt = now + computeBackoff(call.attempt, outcome.retryAfterMs);
      else result = { ok: false, code: outcome.retryable ? 'max_attempts_exceeded' : outcome.code, message: outcome.message.slice(0, 1000) };
    }
  }
  if (!current) return false;

  const runs = { ...state!.discount_runs };
  if (result !== null) {
    runs[key] = { ...run!, result };
    state!.discount_runs = runs;
    await sessionsRepo.updateSession(trx, session!.id, { state: toJson(state), wake_at: now, updated_at: now });
    return true;
  }
  const failure = attempt.kind === 'provider' && !attempt.outcome.ok ? attempt.outcome : null;
  runs[key] = { ...run!, attempts: run!.attempts + 1, last_error: failure ? { code: failure.code, message: failure.message.slice(0, 500) } : null };
  state!.discount_runs = runs;
  state!.wait = { node: call.node_id, visit: call.visit, until: retryAt };
  await sessionsRepo.updateSession(trx, session!.id, { state: toJson(state), wake_at: retryAt, updated_at: now });
  await sessionsRepo.insertSteps({ db: trx, raw: ctx.database.sqlite }, [
    {
      id: newId(now),
      workspace_id: call.workspaceId,
      session_id: call.sessionId,
      node_id: call.node_id,
      node_type: 'create_discount',
      visit: call.visit,
      outcome: 'retry_scheduled',
      detail: toJson({ provider: call.provider, attempt: call.attempt, code: failure?.code ?? null, reason: failure?.message.slice(0, 500) ?? null, retry_at: isoTime(retryAt) }),
      at: now,
    },
  ]);
  return true;
}

function termsOf(call: PendingDiscount): string {
  const spec = call.spec;
  const planIds = (spec.planIds ?? []).filter((id): id is string => typeof id === 'string');
  return toJson({
    duration: spec.duration ?? 'once',
    durationInMonths: spec.durationInMonths ?? null,
    appliesToAllPlans: spec.appliesToAllPlans !== false || planIds.length === 0,
    planIds,
    label: spec.label ?? spec.name ?? null,
  });
}

function baseRow(call: PendingDiscount, stepKey: string, now: number): Omit<codesRepo.NewDiscountCodeRow, 'id' | 'code' | 'code_key' | 'provider' | 'percent_off' | 'amount_off' | 'currency' | 'expires_at' | 'provider_ref' | 'lock_contact_id' | 'max_redemptions'> {
  return {
    workspace_id: call.workspaceId,
    definition_id: call.definitionId,
    session_id: call.sessionId,
    contact_id: call.contactId,
    node_id: call.node_id,
    step_key: stepKey,
    terms: termsOf(call),
    created_at: now,
    last_redeemed_at: null,
  };
}

/**
 * Stores a builtin code for the step run, or returns the one already stored for it. The
 * code was drawn at random before the run began; if it is taken already (once in about
 * 2^49 draws per code in the workspace), another is drawn.
 */
async function storeBuiltinCode(trx: Tx, call: PendingDiscount, stepKey: string, now: number): Promise<DiscountCodeRow> {
  const spec = call.spec;
  const percent = discountType(spec) === 'percent';
  const expiry = discountExpiry(spec, call.at);
  let code = call.code;
  for (let tries = 0; tries < 5; tries += 1) {
    const row: codesRepo.NewDiscountCodeRow = {
      ...baseRow(call, stepKey, now),
      id: newId(now),
      code,
      code_key: discountCodeKey(code),
      provider: 'builtin',
      percent_off: percent ? (spec.percentOff ?? null) : null,
      amount_off: percent ? null : (spec.amountOff ?? null),
      currency: percent || !spec.currency ? null : spec.currency.toUpperCase(),
      max_redemptions: spec.maxRedemptions ?? null,
      lock_contact_id: spec.lockToSubscriber === true ? call.contactId : null,
      expires_at: expiry ? expiry.getTime() : null,
      provider_ref: null,
    };
    await codesRepo.insertDiscountCode(trx, row);
    const stored = await codesRepo.findDiscountCodeByStepKey(trx, call.workspaceId, stepKey);
    if (stored) return stored;
    code = newDiscountCode(spec.codePrefix);
  }
  throw new Error('could not draw an unused discount code in 5 tries');
}

async function storeProviderCode(ctx: Context, trx: Tx, call: PendingDiscount, stepKey: string, created: CreatedDiscount, now: number): Promise<DiscountCodeRow> {
  const expiresAt = created.expiresAt ? Date.parse(created.expiresAt) : null;
  const row: codesRepo.NewDiscountCodeRow = {
    ...baseRow(call, stepKey, now),
    id: newId(now),
    code: created.code,
    code_key: discountCodeKey(created.code),
    provider: created.provider,
    percent_off: created.percentOff,
    amount_off: created.amountOff,
    currency: created.currency,
    max_redemptions: call.spec.maxRedemptions ?? null,
    lock_contact_id: call.spec.lockToSubscriber === true ? call.contactId : null,
    expires_at: expiresAt !== null && Number.isFinite(expiresAt) ? expiresAt : null,
    provider_ref: toJson(created.providerRef),
  };
  await codesRepo.insertDiscountCode(trx, row);
  const stored = await codesRepo.findDiscountCodeByStepKey(trx, call.workspaceId, stepKey);
  if (stored) return stored;
  // The code is already recorded for another step run: only possible if two runs drew the
  // same random code, which the provider would then have refused. Keep going with it.
  ctx.log.warn({ workspaceId: call.workspaceId, sessionId: call.sessionId, code: created.code }, 'discount code already recorded for another step run');
  return { ...row, redemptions: 0, node_id: row.node_id ?? null, step_key: stepKey, terms: row.terms ?? null, last_redeemed_at: null } as DiscountCodeRow;
}

/** The `{{discount.*}}` merge tags of a stored code. */
function tagsOf(row: DiscountCodeRow): Extract<DiscountStepResult, { ok: true }>['discount'] {
  return {
    id: row.id,
    code: row.code,
    percentOff: row.percent_off === null ? null : Number(row.percent_off),
    amountOff: row.amount_off === null ? null : Number(row.amount_off),
    currency: row.currency,
    expiresAt: isoTime(row.expires_at === null ? null : Number(row.expires_at)),
    provider: row.provider,
  };
}

/** What the provider answered wins over the stored copy: it is what the customer will get. */
function tagsOfCreated(created: CreatedDiscount) {
  return { code: created.code, percentOff: created.percentOff, amountOff: created.amountOff, currency: created.currency, expiresAt: created.expiresAt, provider: created.provider };
}

// ---------------------------------------------------------------- the API

/** A discount code as the API shows it (camelCase, like the sequences API and the merge tags). */
export interface DiscountView {
  id: string;
  code: string;
  provider: string;
  /** active, expired or exhausted (as Nudge knows it; a provider's code may be used up at the provider). */
  status: 'active' | 'expired' | 'exhausted';
  percentOff: number | null;
  amountOff: number | null;
  currency: string | null;
  duration: string | null;
  durationInMonths: number | null;
  appliesToAllPlans: boolean;
  planIds: string[];
  label: string | null;
  expiresAt: string | null;
  maxRedemptions: number | null;
  /** Redemptions through Nudge's API (builtin codes only). */
  redemptions: number;
  remainingRedemptions: number | null;
  lockedToContactId: string | null;
  contactId: string | null;
  sessionId: string | null;
  sequenceId: string | null;
  stepId: string | null;
  providerRef: Record<string, string> | null;
  createdAt: string;
  lastRedeemedAt: string | null;
}

function toView(row: DiscountCodeRow, now: number): DiscountView {
  const terms = parseJson<Record<string, unknown>>(row.terms, {});
  const max = row.max_redemptions === null ? null : Number(row.max_redemptions);
  const redemptions = Number(row.redemptions);
  const expiresAt = row.expires_at === null ? null : Number(row.expires_at);
  const status = expiresAt !== null && expiresAt <= now ? 'expired' : max !== null && redemptions >= max ? 'exhausted' : 'active';
  return {
    id: row.id,
    code: row.code,
    provider: row.provider,
    status,
    percentOff: row.percent_off === null ? null : Number(row.percent_off),
    amountOff: row.amount_off === null ? null : Number(row.amount_off),
    currency: row.currency,
    duration: typeof terms.duration === 'string' ? terms.duration : null,
    durationInMonths: typeof terms.durationInMonths === 'number' ? terms.durationInMonths : null,
    appliesToAllPlans: terms.appliesToAllPlans !== false,
    planIds: Array.isArray(terms.planIds) ? terms.planIds.filter((p): p is string => typeof p === 'string') : [],
    label: typeof terms.label === 'string' ? terms.label : null,
    expiresAt: isoTime(expiresAt),
    maxRedemptions: max,
    redemptions,
    remainingRedemptions: max === null ? null : Math.max(0, max - redemptions),
    lockedToContactId: row.lock_contact_id,
    contactId: row.contact_id,
    sessionId: row.session_id,
    sequenceId: row.definition_id,
    stepId: row.node_id,
    providerRef: row.provider_ref === null ? null : parseJson<Record<string, string>>(row.provider_ref, {}),
    createdAt: isoTime(Number(row.created_at)),
    lastRedeemedAt: isoTime(row.last_redeemed_at === null ? null : Number(row.last_redeemed_at)),
  };
}

const maxCodeLength = 200;

async function requireCode(db: Db, workspaceId: string, code: string): Promise<DiscountCodeRow> {
  const key = discountCodeKey(code);
  const row = key === '' || key.length > maxCodeLength ? undefined : await codesRepo.findDiscountCodeByKey(db, workspaceId, key);
  if (!row) throw notFound('Discount code');
  return row;
}

/** One code of the workspace, matched ignoring case; 404 for a code of another workspace. */
export async function getDiscount(ctx: Context, workspaceId: string, code: string): Promise<DiscountView> {
  return toView(await requireCode(ctx.database.db, workspaceId, code), ctx.clock.now());
}

export interface ListDiscountsQuery {
  limit?: number;
  cursor?: string;
  contactId?: string;
  sessionId?: string;
  sequenceId?: string;
  provider?: string;
}

/** The workspace's codes, newest first, a page at a time (`nextCursor` → `cursor`). */
export async function listDiscounts(ctx: Context, workspaceId: string, query: ListDiscountsQuery): Promise<{ data: DiscountView[]; nextCursor: string | null }> {
  const limit = query.limit ?? 50;
  for (const field of ['contactId', 'sessionId', 'sequenceId'] as const) {
    const value = query[field];
    if (value !== undefined && !isUuid(value)) throw invalid(field, 'must be a UUID');
  }
  const rows = await codesRepo.listDiscountCodes(ctx.database.db, workspaceId, {
    limit: limit + 1,
    after: query.cursor ? decodeCursor(query.cursor) : undefined,
    contactId: query.contactId?.toLowerCase(),
    sessionId: query.sessionId?.toLowerCase(),
    definitionId: query.sequenceId?.toLowerCase(),
    provider: query.provider,
  });
  const page = rows.slice(0, limit);
  const now = ctx.clock.now();
  return { data: page.map((row) => toView(row, now)), nextCursor: rows.length > limit ? encodeCursor(page[page.length - 1]!.id) : null };
}

export interface RedeemInput {
  code: string;
  email?: string;
  contactId?: string;
}

export interface Redemption {
  id: string;
  contactId: string | null;
  email: string | null;
  redeemedAt: string;
}

/**
 * Redeems a builtin code once for the customer named by `email` or `contactId`. The checks
 * and the count happen in one conditional UPDATE, so concurrent redemptions of a
 * single-use code let exactly one through. Refusals, each with its own code:
 * 404 not_found, 422 discount_expired, 409 discount_exhausted, 422 discount_locked (the
 * code is locked to another subscriber), 422 discount_not_redeemable (a Stripe or Shopify
 * code, redeemed at the provider's checkout).
 *
 * @example
 * await redeemDiscount(ctx, workspaceId, { code: 'WINBACK-7Q2KXM9PHT', email: 'ana@example.com' });
 */
export async function redeemDiscount(ctx: Context, workspaceId: string, input: RedeemInput): Promise<{ discount: DiscountView; redemption: Redemption }> {
  if (typeof input.code !== 'string' || input.code.trim() === '') throw invalid('code', 'is required: the discount code the customer gave');
  if (input.email !== undefined && input.contactId !== undefined) throw invalid('email', 'and contactId name the customer twice; give one');
  let email: string | null = null;
  if (input.email !== undefined) {
    email = normalizeEmail(input.email);
    if (email === null) throw invalid('email', 'must be an email address');
  }
  if (input.contactId !== undefined && !isUuid(input.contactId)) throw invalid('contactId', 'must be a UUID');
  const db = ctx.database.db;
  return db.transaction().execute(async (trx) => {
    const now = ctx.clock.now();
    const row = await requireCode(trx, workspaceId, input.code);
    if (row.provider !== 'builtin') {
      throw new AppError('discount_not_redeemable', `This code was created at ${row.provider === 'shopify' ? 'Shopify' : 'Stripe'}; it is redeemed at that provider's checkout, not through Nudge`);
    }
    let contactId: string | null = null;
    if (input.contactId !== undefined) {
      const contact = await trx.selectFrom('contacts').select('id').where('workspace_id', '=', workspaceId).where('id', '=', input.contactId.toLowerCase()).executeTakeFirst();
      if (!contact) throw notFound('Contact');
      contactId = contact.id;
    } else if (email !== null) {
      const contact = await trx.selectFrom('contacts').select('id').where('workspace_id', '=', workspaceId).where('email', '=', email).executeTakeFirst();
      contactId = contact?.id ?? null;
    }
    if (row.lock_contact_id !== null) {
      if (email === null && contactId === null) throw invalid('email', 'or contactId is required: this code is locked to one subscriber');
      if (contactId !== row.lock_contact_id) throw new AppError('discount_locked', 'This code is locked to another subscriber');
    }
    if (!(await codesRepo.countRedemption(trx, workspaceId, row.id, now))) {
      // The conditional update refused: tell which rule, from the row as it is now.
      const latest = (await codesRepo.findDiscountCodeByKey(trx, workspaceId, row.code_key)) ?? row;
      if (latest.expires_at !== null && Number(latest.expires_at) <= now) {
        throw new AppError('discount_expired', `This code expired at ${isoTime(Number(latest.expires_at))}`, { extra: { expiresAt: isoTime(Number(latest.expires_at)) } });
      }
      throw new AppError('discount_exhausted', `This code has been redeemed the most times it allows (${String(latest.max_redemptions)})`, { extra: { maxRedemptions: Number(latest.max_redemptions) } });
    }
    const redemption = { id: newId(now), workspace_id: workspaceId, discount_code_id: row.id, contact_id: contactId, email: contactId === null ? email : null, redeemed_at: now };
    await codesRepo.insertRedemption(trx, redemption);
    const updated = (await codesRepo.findDiscountCodeByKey(trx, workspaceId, row.code_key))!;
    return {
      discount: toView(updated, now),
      redemption: { id: redemption.id, contactId, email: redemption.email, redeemedAt: isoTime(now) },
    };
  });
}
