import { writeSequenceEmails, type AiSettings, type WriteOutcome, type WrittenEmail } from '../channels/ai-writer.js';
import { compileSteps } from '../domain/compile-steps.js';
import type { DefinitionKind, Graph } from '../domain/definition.js';
import { htmlToBlocks } from '../domain/html-to-blocks.js';
import { isPlainObject, parseJson, toJson } from '../domain/json.js';
import type { Db } from '../store/database.js';
import type { Context } from './context.js';
import type { Draft, Enrichment } from './definition-service.js';
import { syncDefinitionTemplates } from './email-template-links.js';

/**
 * Writes the emails of sequences created from a `goal` (the create-sequence body's "AI
 * generation" option): the definition is stored as an empty draft with a pending
 * `enrichment` and `enrichment_due_at = now`; the worker's periodic pass calls
 * `writePendingSequences`, which asks the AI endpoint for the emails and stores them as
 * the draft's steps.
 *
 * Hazards, and how each is handled:
 * - Several worker processes: a row is claimed with a conditional update that moves
 *   `enrichment_due_at` to a lease (`… where enrichment_due_at = <value read>`), so only
 *   one claim of a due time can succeed; on PostgreSQL the read also skips rows another
 *   claim has locked. The lease value is the claim's fencing token: the result is stored
 *   only while `enrichment_due_at` still holds it.
 * - A worker killed mid-call: nothing but the lease remembers the claim, so the row is
 *   due again when the lease ends. The attempt is counted at claim time, so a sequence
 *   that kills its worker every time still ends as `failed` instead of looping.
 * - The call takes up to the endpoint's timeout: it runs outside any transaction, and
 *   the claimed rows are written in parallel so the last of a batch does not outlive its
 *   lease waiting for the others.
 * - The user edits or deletes the sequence meanwhile: the result is stored into the
 *   draft as it is at the end of the call (a rename or a trigger change is kept), not
 *   at all when the sequence was deleted, and steps the user gave while waiting win
 *   over the written ones.
 *
 * The queries live here rather than in a repository module because nothing else uses
 * them and they only make sense together (claim → fenced write).
 */

/** Sequences claimed per pass; each is one call of up to the endpoint's timeout, made in parallel. */
const batchSize = 5;
/** Calls made for one sequence before it is marked failed. */
export const maxWriteAttempts = 5;
/** Headroom over the call's own timeout before the claim lapses: the database writes around the call. */
const leaseSlackMs = 30_000;
const baseBackoffMs = 30_000;
const maxBackoffMs = 30 * 60_000;

/**
 * The wait before the next attempt: 30 s, 1 min, 2 min … after the 1st, 2nd, 3rd failed
 * attempt, never sooner than the endpoint's Retry-After, and never more than 30 minutes
 * (a Retry-After of hours from a confused proxy must not park a sequence that long).
 *
 * @example
 * enrichmentBackoff(1) // 30_000
 * enrichmentBackoff(3, 300_000) // 300_000
 */
export function enrichmentBackoff(attempts: number, retryAfterMs?: number): number {
  const exponential = baseBackoffMs * 2 ** Math.max(0, attempts - 1);
  return Math.min(maxBackoffMs, Math.max(exponential, retryAfterMs ?? 0));
}

interface EnrichmentRow {
  id: string;
  workspace_id: string;
  kind: DefinitionKind;
  name: string;
  draft: string;
  enrichment: string | null;
  enrichment_due_at: number | null;
  deleted_at: number | null;
}

interface Claim {
  row: EnrichmentRow;
  enrichment: Enrichment;
  draft: Draft;
  /** The `enrichment_due_at` the claim set: stored results are fenced by it. */
  lease: number;
}

const emptyDraft: Draft = { graph: { nodes: [], edges: [] }, settings: {}, trigger: { type: 'api' }, steps: null };

function readEnrichment(raw: string | null): Enrichment | null {
  const value = parseJson<unknown>(raw, null);
  if (!isPlainObject(value) || typeof value.goal !== 'string' || typeof value.emailCount !== 'number') return null;
  const attempts = typeof value.attempts === 'number' ? value.attempts : 0;
  return { ...(value as unknown as Enrichment), attempts };
}

/**
 * Claims up to `batchSize` due rows in one short transaction. Rows that can no longer be
 * written (deleted, or no pending enrichment) leave the due index instead; a pending row
 * already tried `maxWriteAttempts` times (its workers died or overran their lease) fails.
 */
async function claimDueRows(ctx: Context, now: number, lease: number): Promise<{ claims: Claim[]; tidied: number }> {
  const { db, dialect } = ctx.database;
  return db.transaction().execute(async (trx) => {
    let query = trx
      .selectFrom('definitions')
      .select(['id', 'workspace_id', 'kind', 'name', 'draft', 'enrichment', 'enrichment_due_at', 'deleted_at'])
      .where('enrichment_due_at', 'is not', null)
      .where('enrichment_due_at', '<=', now)
      .orderBy('enrichment_due_at')
      .limit(batchSize);
    // SQLite has no row locks (BEGIN IMMEDIATE already serialises writers); on PostgreSQL a
    // second worker passes over rows being claimed instead of waiting to lose the update.
    if (dialect === 'postgres') query = query.forUpdate().skipLocked();
    const due = (await query.execute()) as EnrichmentRow[];
    const claims: Claim[] = [];
    let tidied = 0;
    for (const row of due) {
      const enrichment = readEnrichment(row.enrichment);
      const fenced = trx.updateTable('definitions').where('id', '=', row.id).where('enrichment_due_at', '=', row.enrichment_due_at);
      if (row.deleted_at !== null || enrichment === null || enrichment.status !== 'pending') {
        const result = await fenced.set({ enrichment_due_at: null }).executeTakeFirst();
        tidied += Number(result.numUpdatedRows);
        continue;
      }
      if (enrichment.attempts >= maxWriteAttempts) {
        const failed: Enrichment = {
          ...enrichment,
          status: 'failed',
          error: enrichment.error ?? `Nudge started writing these emails ${enrichment.attempts} times without getting an answer (the worker stopped or overran its lease)`,
          completedAt: null,
        };
        const result = await fenced.set({ enrichment: toJson(failed), enrichment_due_at: null, updated_at: now }).executeTakeFirst();
        tidied += Number(result.numUpdatedRows);
        continue;
      }
      const counted: Enrichment = { ...enrichment, attempts: enrichment.attempts + 1 };
      const result = await fenced.set({ enrichment: toJson(counted), enrichment_due_at: lease }).executeTakeFirst();
      if (Number(result.numUpdatedRows) !== 1) continue; // Another process claimed this due time first.
      claims.push({ row, enrichment: counted, draft: parseJson<Draft>(row.draft, emptyDraft), lease });
    }
    return { claims, tidied };
  });
}

/** The written emails as the linear steps of the create body, and the graph they compile to (email HTML stored as blocks, as `buildDraft` stores it). */
function stepsFromEmails(emails: WrittenEmail[], kind: DefinitionKind): { steps: unknown[]; graph: Graph } | { problem: string } {
  const steps = emails.map((email) => ({
    subject: email.subject,
    ...(email.previewText !== null ? { previewText: email.previewText } : {}),
    html: email.html,
    ...(email.delay !== null ? { delay: email.delay } : {}),
  }));
  const compiled = compileSteps(steps, { defaultChannel: 'email', kind, templateExists: () => false, allowEmpty: false });
  if (compiled.problems.length > 0 || compiled.graph === null) {
    const shown = compiled.problems.slice(0, 3).map((p) => p.message);
    return { problem: `The written emails do not make a valid sequence: ${shown.join('; ') || 'no graph'}` };
  }
  // Mirrors definition-service's editableEmail (which is not exported): HTML becomes editable blocks.
  const graph: Graph = {
    ...compiled.graph,
    nodes: compiled.graph.nodes.map((node) => {
      if (node.type !== 'send_message' || node.channel !== 'email' || !node.content?.html || node.content.blocks) return node;
      const { html, ...rest } = node.content;
      return { ...node, content: { ...rest, blocks: htmlToBlocks(html) } };
    }),
  };
  return { steps, graph };
}

interface StoredChange {
  enrichment: Enrichment;
  dueAt: number | null;
  /** The new draft; absent to leave it as it is. */
  draft?: Draft;
}

/**
 * Applies `change` to the row's current enrichment and draft, in one transaction, only
 * while the claim still holds (the row is not deleted, its enrichment is pending and
 * `enrichment_due_at` is still this claim's lease). Returns the change applied, or null.
 */
async function storeOutcome(ctx: Context, claim: Claim, change: (current: { enrichment: Enrichment; draft: Draft }) => StoredChange, now: number): Promise<StoredChange | null> {
  return ctx.database.db.transaction().execute(async (trx) => {
    let read = trx
      .selectFrom('definitions')
      .select(['name', 'draft', 'enrichment'])
      .where('id', '=', claim.row.id)
      .where('deleted_at', 'is', null)
      .where('enrichment_due_at', '=', claim.lease);
    // Locked on PostgreSQL, like every writer of a draft: a PUT or an email template edit
    // committing between this read and the write below would otherwise be overwritten.
    if (ctx.database.dialect === 'postgres') read = read.forUpdate();
    const current = await read.executeTakeFirst();
    const enrichment = current ? readEnrichment(current.enrichment) : null;
    if (!current || enrichment?.status !== 'pending') return null;
    const next = change({ enrichment, draft: parseJson<Draft>(current.draft, emptyDraft) });
    const result = await trx
      .updateTable('definitions')
      .set({
        enrichment: toJson(next.enrichment),
        enrichment_due_at: next.dueAt,
        updated_at: now,
        ...(next.draft ? { draft: toJson(next.draft), draft_changed: 1 } : {}),
      })
      .where('id', '=', claim.row.id)
      .where('deleted_at', 'is', null)
      .where('enrichment_due_at', '=', claim.lease)
      .executeTakeFirst();
    if (Number(result.numUpdatedRows) !== 1) return null;
    // Each written email gets its email template, in the transaction that stores the draft.
    if (next.draft) await syncDefinitionTemplates(trx, claim.row.workspace_id, { id: claim.row.id, name: current.name }, next.draft.graph, new Map(), now);
    return next;
  });
}

async function workspaceName(db: Db, workspaceId: string): Promise<string> {
  const row = await db.selectFrom('workspaces').select('name').where('id', '=', workspaceId).executeTakeFirst();
  return row?.name ?? 'our company';
}

async function writeOne(ctx: Context, settings: AiSettings, claim: Claim): Promise<void> {
  const { row, draft } = claim;
  const log = ctx.log.child({ definitionId: row.id, workspaceId: row.workspace_id });
  const { goal, emailCount } = claim.enrichment;
  const eventName = typeof draft.trigger.eventName === 'string' ? draft.trigger.eventName : null;
  const outcome: WriteOutcome = await writeSequenceEmails(settings, {
    goal,
    emailCount,
    sequenceName: row.name,
    trigger: draft.trigger.type,
    brand: { name: await workspaceName(ctx.database.db, row.workspace_id) },
    eventName,
  });
  const now = ctx.clock.now();
  const built = outcome.ok ? stepsFromEmails(outcome.emails, row.kind) : null;

  if (outcome.ok && built !== null && !('problem' in built)) {
    const stored = await storeOutcome(
      ctx,
      claim,
      ({ enrichment, draft: current }) => {
        const done: Enrichment = { ...enrichment, status: 'completed', error: null, completedAt: now };
        // Steps the user gave while the emails were being written are theirs to keep.
        if (current.graph.nodes.length > 0) return { enrichment: done, dueAt: null };
        return { enrichment: done, dueAt: null, draft: { ...current, graph: built.graph, steps: built.steps } };
      },
      now,
    );
    if (stored) {
      const keptUserSteps = stored.draft === undefined;
      log.info(
        { emails: built.steps.length, model: outcome.model, usage: outcome.usage, attempts: claim.enrichment.attempts, keptUserSteps },
        keptUserSteps ? 'Nudge finished writing a sequence, but kept the steps given meanwhile' : 'Nudge wrote the emails of a sequence from its goal',
      );
    } else {
      log.info('Nudge discarded written emails: the sequence was deleted, finished or claimed again meanwhile');
    }
    return;
  }

  const failure = !outcome.ok
    ? outcome
    : { retryable: true, code: 'invalid_sequence', message: built !== null && 'problem' in built ? built.problem : 'The written emails are unusable' };
  const retryAfterMs = 'retryAfterMs' in failure ? failure.retryAfterMs : undefined;
  const stored = await storeOutcome(
    ctx,
    claim,
    ({ enrichment }) => {
      if (!failure.retryable || enrichment.attempts >= maxWriteAttempts) return { enrichment: { ...enrichment, status: 'failed', error: failure.message, completedAt: null }, dueAt: null };
      // Still pending: the error shows why it is taking longer while the next attempt waits.
      return { enrichment: { ...enrichment, error: failure.message }, dueAt: now + enrichmentBackoff(enrichment.attempts, retryAfterMs) };
    },
    now,
  );
  if (!stored) return;
  const final = stored.enrichment.status === 'failed';
  log.warn(
    { code: failure.code, attempts: claim.enrichment.attempts, retryable: failure.retryable, error: failure.message },
    final ? 'Nudge could not write the emails of a sequence; it is marked failed' : 'Nudge could not write the emails of a sequence yet; it will try again',
  );
}

/**
 * One pass over the sequences whose emails are due to be written: claims a few, calls the
 * AI endpoint for each (outside any transaction) and stores the steps, the next attempt or
 * the failure. Returns how many rows it handled (claimed, or taken off the due index).
 * Without an AI endpoint it does nothing: rows left pending from when one was configured
 * wait for it to come back (publishing them stays refused; the user may give steps).
 *
 * @example
 * // In the worker's periodic pass:
 * const written = await writePendingSequences(ctx);
 */
export async function writePendingSequences(ctx: Context): Promise<number> {
  const ai = ctx.config.ai;
  if (ai === null) return 0;
  const now = ctx.clock.now();
  const { claims, tidied } = await claimDueRows(ctx, now, now + ai.timeoutMs + leaseSlackMs);
  if (claims.length === 0) return tidied;
  const settings: AiSettings = { baseUrl: ai.baseUrl, apiKey: ai.apiKey, model: ai.model, timeoutMs: ai.timeoutMs };
  const results = await Promise.allSettled(claims.map((claim) => writeOne(ctx, settings, claim)));
  results.forEach((result, i) => {
    // A database error: the claim's lease runs out and the row is tried again then.
    if (result.status === 'rejected') ctx.log.error({ err: result.reason as unknown, definitionId: claims[i]!.row.id }, 'Nudge failed to store the emails written for a sequence; it will try again');
  });
  return tidied + claims.length;
}
