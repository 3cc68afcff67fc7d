import { abLimits, isSplitPercent, twoProportionZTest } from '../domain/ab-split.js';
import { AppError, invalid, invalidFields, notFound, type FieldErrors } from '../domain/errors.js';
import { isUuid } from '../domain/ids.js';
import * as abRepo from '../store/ab-test-repository.js';
import * as definitions from '../store/definition-repository.js';
import type { Context } from './context.js';

/**
 * A/B tests between two sequences. Sequence A names a variant B and the percentage of
 * the contacts enrolled into A that run B instead (see session-start.ts for where each
 * contact's side is decided). The test takes effect at once, for every enrollment
 * path; it is not part of A's draft, so it needs no publishing. Removing it leaves the
 * sessions it started marked with their side, so its results stay readable.
 */

export interface AbTestInput {
  variantSequenceId?: unknown;
  splitPercent?: unknown;
}

export interface AbTestView {
  sequenceId: string;
  variantSequenceId: string;
  variantSequenceName: string | null;
  /** B's status: enrollments into A are refused while B is not active. */
  variantStatus: string | null;
  splitPercent: number;
}

function readInput(input: AbTestInput): { variantId: string; splitPercent: number } {
  const errors: FieldErrors = {};
  const variant = input.variantSequenceId;
  if (typeof variant !== 'string' || variant.trim() === '') errors.variantSequenceId = ['variantSequenceId is required: the id of the sequence that runs as variant B'];
  else if (!isUuid(variant.trim())) errors.variantSequenceId = ['variantSequenceId must be a sequence id (a UUID)'];
  if (input.splitPercent === undefined || input.splitPercent === null) errors.splitPercent = [`splitPercent is required: the share of contacts sent to B, a whole number from ${abLimits.minPercent} to ${abLimits.maxPercent}`];
  else if (!isSplitPercent(input.splitPercent)) errors.splitPercent = [`splitPercent must be a whole number from ${abLimits.minPercent} to ${abLimits.maxPercent}`];
  if (Object.keys(errors).length > 0) throw invalidFields(errors);
  return { variantId: (variant as string).trim().toLowerCase(), splitPercent: input.splitPercent as number };
}

async function requireSequence(ctx: Context, workspaceId: string, id: string): Promise<definitions.DefinitionRow> {
  const row = isUuid(id) ? await definitions.findDefinition(ctx.database.db, workspaceId, 'sequence', id.toLowerCase()) : undefined;
  if (!row) throw notFound('Sequence');
  return row;
}

/**
 * Starts (or changes) the A/B test of sequence A: `variantSequenceId` runs for
 * `splitPercent`% of the contacts enrolled into A. B must be another sequence of the
 * same workspace and must not run a test of its own; A must not be the variant of
 * another test. B may still be a draft: enrollments into A are then refused (422,
 * reason `ab_variant_not_active`) until B is enabled, rather than sending B's share to A.
 *
 * @example
 * await setAbTest(ctx, workspaceId, sequenceA, { variantSequenceId: sequenceB, splitPercent: 30 });
 * // { sequenceId: sequenceA, variantSequenceId: sequenceB, variantSequenceName: 'Welcome (short)', variantStatus: 'active', splitPercent: 30 }
 */
export async function setAbTest(ctx: Context, workspaceId: string, sequenceId: string, input: AbTestInput): Promise<AbTestView> {
  await requireSequence(ctx, workspaceId, sequenceId);
  const { variantId, splitPercent } = readInput(input);
  const aId = sequenceId.toLowerCase();
  if (variantId === aId) throw invalid('variantSequenceId', 'must name another sequence: a sequence cannot be its own variant');
  const { db, dialect } = ctx.database;
  return db.transaction().execute(async (trx) => {
    const rows = await abRepo.lockSequences(trx, dialect, workspaceId, [aId, variantId]);
    const a = rows.find((r) => r.id === aId);
    const b = rows.find((r) => r.id === variantId);
    if (!a) throw notFound('Sequence');
    if (!b) throw invalid('variantSequenceId', 'names no sequence of this workspace');
    if (b.ab_variant_id !== null) throw invalid('variantSequenceId', `names a sequence that runs an A/B test of its own ("${b.name}"): a variant cannot have a variant`);
    const testsOfA = await abRepo.testsUsingVariant(trx, workspaceId, a.id);
    if (testsOfA.length > 0) {
      throw new AppError('business_rule', `This sequence is the variant of the A/B test of "${testsOfA[0]!.name}": a variant cannot run a test of its own`, {
        extra: { reason: 'sequence_is_a_variant', sequenceId: testsOfA[0]!.id },
      });
    }
    await abRepo.setAbTest(trx, workspaceId, a.id, b.id, splitPercent, ctx.clock.now());
    return { sequenceId: a.id, variantSequenceId: b.id, variantSequenceName: b.name, variantStatus: b.status, splitPercent };
  });
}

/** Ends the A/B test of A (if it has one): every enrollment runs A again. Returns whether a test was removed. */
export async function removeAbTest(ctx: Context, workspaceId: string, sequenceId: string): Promise<{ removed: boolean }> {
  const row = await requireSequence(ctx, workspaceId, sequenceId);
  if (row.ab_variant_id === null) return { removed: false };
  await abRepo.setAbTest(ctx.database.db, workspaceId, row.id, null, null, ctx.clock.now());
  return { removed: true };
}

export const abMetrics = ['sent', 'delivered', 'read', 'clicked', 'replied', 'goalReached'] as const;
export type AbMetric = (typeof abMetrics)[number];

type Counts = Record<AbMetric, number>;

export interface AbVariantResult extends Counts {
  variant: 'A' | 'B';
  /** The sequence this side ran (B's id, or A's). */
  sequenceId: string | null;
  /** Sessions started on this side: each is one enrolled contact. */
  enrolled: number;
  /** Each count over `enrolled`, rounded to 4 places. */
  rates: Counts;
  /** Outbound messages of this side in each state (a contact who clicks two emails counts twice here, once above). */
  messages: Omit<Counts, 'goalReached'>;
}

export interface AbSignificance {
  metric: AbMetric;
  test: 'two-proportion z-test';
  alpha: number;
  rateA: number | null;
  rateB: number | null;
  /** rateB − rateA. */
  difference: number | null;
  z: number | null;
  pValue: number | null;
  significant: boolean;
  /** The side with the higher rate when the difference is significant. */
  winner: 'A' | 'B' | null;
}

export interface AbResults {
  success: true;
  sequenceId: string;
  abTest: { variantSequenceId: string; splitPercent: number } | null;
  variants: AbVariantResult[];
  significance: AbSignificance;
}

const alpha = 0.05;
const round = (value: number) => Math.round(value * 10_000) / 10_000;

/**
 * The results of A's test, per side: enrollments, and how many of those enrollments
 * had a message sent, delivered, read, clicked (a tracked link followed) or replied to,
 * and reached a goal, with each rate over the enrollments; then a two-sided
 * two-proportion z-test (pooled, alpha 0.05) of one metric between the sides. The
 * metric is `metric` when given; otherwise `goalReached` when either sequence has a
 * goal step, else `clicked`. The unit is the enrollment, so every contact counts once
 * per side however many emails it opened.
 */
export async function abTestResults(ctx: Context, workspaceId: string, sequenceId: string, query: { metric?: string } = {}): Promise<AbResults> {
  const row = await requireSequence(ctx, workspaceId, sequenceId);
  if (query.metric !== undefined && !(abMetrics as readonly string[]).includes(query.metric)) throw invalid('metric', `must be one of ${abMetrics.join(', ')}`);
  const db = ctx.database.db;
  const counted = await abRepo.countAbSides(db, workspaceId, row.id);
  const variants = (['A', 'B'] as const).map((variant): AbVariantResult => {
    const rows = counted.filter((c) => c.variant === variant);
    const sum = (pick: (c: abRepo.AbSideCounts) => number) => rows.reduce((total, c) => total + pick(c), 0);
    const enrolled = sum((c) => c.enrolled);
    const counts: Counts = {
      sent: sum((c) => c.sent),
      delivered: sum((c) => c.delivered),
      read: sum((c) => c.read),
      clicked: sum((c) => c.clicked),
      replied: sum((c) => c.replied),
      goalReached: sum((c) => c.goalReached),
    };
    const rates = Object.fromEntries(abMetrics.map((m) => [m, enrolled === 0 ? 0 : round(counts[m] / enrolled)])) as Counts;
    // The side's sequence: A itself, or the configured B (or, once the test was removed, the B its sessions ran).
    const sequenceOfSide = variant === 'A' ? row.id : (row.ab_variant_id ?? [...rows].sort((x, y) => y.enrolled - x.enrolled)[0]?.definitionId ?? null);
    return {
      variant,
      sequenceId: sequenceOfSide,
      enrolled,
      ...counts,
      rates,
      messages: {
        sent: sum((c) => c.messages.sent),
        delivered: sum((c) => c.messages.delivered),
        read: sum((c) => c.messages.read),
        clicked: sum((c) => c.messages.clicked),
        replied: sum((c) => c.messages.replied),
      },
    };
  });

  const metric = (query.metric as AbMetric | undefined) ?? (await defaultMetric(ctx, row, variants[1]!.sequenceId));
  const [a, b] = variants as [AbVariantResult, AbVariantResult];
  const test = twoProportionZTest({ successes: a[metric], trials: a.enrolled }, { successes: b[metric], trials: b.enrolled }, alpha);
  const rateA = a.enrolled === 0 ? null : a[metric] / a.enrolled;
  const rateB = b.enrolled === 0 ? null : b[metric] / b.enrolled;
  return {
    success: true,
    sequenceId: row.id,
    abTest: row.ab_variant_id === null || row.ab_split_percent === null ? null : { variantSequenceId: row.ab_variant_id, splitPercent: Number(row.ab_split_percent) },
    variants,
    significance: {
      metric,
      test: 'two-proportion z-test',
      alpha,
      rateA: rateA === null ? null : round(rateA),
      rateB: rateB === null ? null : round(rateB),
      difference: rateA === null || rateB === null ? null : round(rateB - rateA),
      z: test.z === null ? null : Math.round(test.z * 10_000) / 10_000,
      pValue: test.pValue,
      significant: test.significant,
      winner: test.significant && rateA !== null && rateB !== null ? (rateB > rateA ? 'B' : 'A') : null,
    },
  };
}

/** goalReached when either side's published version has a goal step (a conversion to measure), else clicked. */
async function defaultMetric(ctx: Context, a: definitions.DefinitionRow, variantId: string | null): Promise<AbMetric> {
  const db = ctx.database.db;
  const b = variantId === null ? undefined : await definitions.findDefinition(db, a.workspace_id, 'sequence', variantId);
  const versionIds = [a.current_version_id, b?.current_version_id ?? null].filter((id): id is string => id !== null);
  const versions = await ctx.versions.load(db, versionIds);
  return [...versions.values()].some((v) => v.body.graph.nodes.some((n) => n.type === 'goal')) ? 'goalReached' : 'clicked';
}
