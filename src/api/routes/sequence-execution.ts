import { Type } from 'typebox';
import { abLimits } from '../../domain/ab-split.js';
import { notFound } from '../../domain/errors.js';
import { isUuid } from '../../domain/ids.js';
import * as abTests from '../../engine/ab-test-service.js';
import type { Context } from '../../engine/context.js';
import { executeSequence, executionLimits, type ExecuteInput } from '../../engine/sequence-execution-service.js';
import { authErrors, errorResponses, Nullable, ok } from '../schemas.js';
import type { App } from '../types.js';

/** Bulk execution of a sequence for contacts given by email, and A/B tests between sequences. */

const ids = {
  sequence: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b',
  variant: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5d',
  contact: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a61',
  otherContact: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a62',
  session: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a60',
  otherSession: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a63',
};

const IdParams = Type.Object({ id: Type.String({ maxLength: 100 }) });
const OptionalText = (maxLength: number, description: string) => Type.Optional(Nullable(Type.String({ maxLength, description })));

const ExecuteContact = Type.Object(
  {
    email: OptionalText(254, 'Required: the contact is found by it, ignoring case, or created with it'),
    firstName: OptionalText(200, 'Stored on the contact when given'),
    lastName: OptionalText(200, 'Stored on the contact when given'),
    phone: OptionalText(40, 'Stored as E.164; numbers without + are read in NUDGE_DEFAULT_COUNTRY'),
  },
  { additionalProperties: false },
);

const ExecuteBody = Type.Object(
  {
    contacts: Type.Array(ExecuteContact, { minItems: 1, maxItems: executionLimits.contacts, description: `1 to ${executionLimits.contacts} contacts, each with an email` }),
    context: Type.Optional(Type.Object({}, { additionalProperties: true, description: 'Free-form values, available in every step as {{context.*}}' })),
  },
  { additionalProperties: false },
);

export const ExecutionResult = Type.Object({
  index: Type.Integer({ description: 'Position of the contact in the request' }),
  email: Type.Optional(Nullable(Type.String({ description: 'The email as submitted' }))),
  contactId: Nullable(Type.String()),
  contactCreated: Type.Optional(Type.Boolean({ description: 'Whether this call created the contact' })),
  status: Type.Union([Type.Literal('queued'), Type.Literal('skipped')]),
  reason: Type.Optional(
    Type.String({ description: 'Why it was skipped: invalid, unsubscribed, already_running, enrollments_paused, already_enrolled_once or enrollment_key_missing' }),
  ),
  errors: Type.Optional(Type.Record(Type.String(), Type.Array(Type.String()), { description: 'invalid: the problems, per field' })),
  sessionId: Type.Optional(Type.String({ description: 'The session started, or the one already running' })),
  variant: Type.Optional(Type.Union([Type.Literal('A'), Type.Literal('B')], { description: 'With an A/B test: the side the contact runs' })),
  variantSequenceId: Type.Optional(Type.String({ description: 'With an A/B test: the sequence that side runs' })),
});

export const ExecutionOutcome = Type.Object({
  success: Type.Boolean(),
  sequenceId: Type.String(),
  queued: Type.Integer(),
  skipped: Type.Integer(),
  results: Type.Array(ExecutionResult),
});

const AbTestBody = Type.Object(
  {
    variantSequenceId: Type.String({ maxLength: 100, description: 'The sequence that runs as variant B: another sequence of this workspace, without a test of its own' }),
    splitPercent: Type.Integer({ minimum: abLimits.minPercent, maximum: abLimits.maxPercent, description: 'The percentage of contacts enrolled into this sequence that run B instead' }),
  },
  { additionalProperties: false },
);

const AbTestView = Type.Object({
  sequenceId: Type.String(),
  variantSequenceId: Type.String(),
  variantSequenceName: Nullable(Type.String()),
  variantStatus: Nullable(Type.String({ description: 'Enrollments are refused while B is not active' })),
  splitPercent: Type.Integer(),
});

const metricCounts = (description: string) =>
  Type.Object(
    {
      sent: Type.Number(),
      delivered: Type.Number(),
      read: Type.Number(),
      clicked: Type.Number(),
      replied: Type.Number(),
      goalReached: Type.Number(),
    },
    { description },
  );

const AbVariant = Type.Object({
  variant: Type.Union([Type.Literal('A'), Type.Literal('B')]),
  sequenceId: Nullable(Type.String()),
  enrolled: Type.Integer({ description: 'Sessions started on this side' }),
  sent: Type.Integer({ description: 'Enrollments with at least one message sent' }),
  delivered: Type.Integer(),
  read: Type.Integer(),
  clicked: Type.Integer({ description: 'Enrollments with at least one tracked email link followed' }),
  replied: Type.Integer({ description: 'Enrollments whose contact replied to one of their messages' }),
  goalReached: Type.Integer({ description: 'Enrollments that reached a goal step' }),
  rates: metricCounts('Each count over enrolled, to 4 places'),
  messages: Type.Object(
    { sent: Type.Integer(), delivered: Type.Integer(), read: Type.Integer(), clicked: Type.Integer(), replied: Type.Integer() },
    { description: 'Outbound messages of this side in each state' },
  ),
});

const AbResults = Type.Object({
  success: Type.Boolean(),
  sequenceId: Type.String(),
  abTest: Nullable(Type.Object({ variantSequenceId: Type.String(), splitPercent: Type.Integer() })),
  variants: Type.Array(AbVariant),
  significance: Type.Object({
    metric: Type.String({ description: 'The metric compared: the `metric` asked for, else goalReached when either sequence has a goal step, else clicked' }),
    test: Type.String(),
    alpha: Type.Number(),
    rateA: Nullable(Type.Number()),
    rateB: Nullable(Type.Number()),
    difference: Nullable(Type.Number({ description: 'rateB − rateA' })),
    z: Nullable(Type.Number()),
    pValue: Nullable(Type.Number({ description: 'Two-sided' })),
    significant: Type.Boolean({ description: 'pValue < alpha' }),
    winner: Nullable(Type.Union([Type.Literal('A'), Type.Literal('B')])),
  }),
});

const variantExample = (variant: 'A' | 'B', enrolled: number, clicked: number, goal: number) => ({
  variant,
  sequenceId: variant === 'A' ? ids.sequence : ids.variant,
  enrolled,
  sent: enrolled,
  delivered: enrolled - 12,
  read: Math.round(enrolled * 0.6),
  clicked,
  replied: Math.round(enrolled * 0.02),
  goalReached: goal,
  rates: {
    sent: 1,
    delivered: Math.round(((enrolled - 12) / enrolled) * 10_000) / 10_000,
    read: 0.6,
    clicked: Math.round((clicked / enrolled) * 10_000) / 10_000,
    replied: 0.02,
    goalReached: Math.round((goal / enrolled) * 10_000) / 10_000,
  },
  messages: { sent: enrolled * 3, delivered: enrolled * 3 - 20, read: Math.round(enrolled * 1.4), clicked: Math.round(clicked * 1.3), replied: Math.round(enrolled * 0.02) },
});

export function registerSequenceExecutionRoutes(app: App, ctx: Context): void {
  const idOf = (request: { params: unknown }) => {
    const id = (request.params as { id: string }).id;
    if (!isUuid(id)) throw notFound('Sequence');
    return id;
  };

  app.post(
    '/api/v1/sequences/:id/execute',
    {
      config: { scope: 'sequences:execute', idempotent: true },
      schema: {
        summary: 'Execute a sequence for contacts',
        description:
          `Enrolls 1 to ${executionLimits.contacts} contacts in an active sequence, in one transaction. Each contact is found by \`email\` (ignoring case) or created, ` +
          'its `firstName`, `lastName` and `phone` (stored as E.164) saved when given. Every contact gets a result naming it by `index` and `email`: ' +
          '`queued` with its session, or `skipped` with a `reason`: `invalid` (with `errors` per field), `unsubscribed` (opted out of every channel the sequence sends on), ' +
          '`already_running` (with the running session), `enrollments_paused`, `already_enrolled_once` or `enrollment_key_missing`. ' +
          'With an A/B test on the sequence, each contact runs its side (`variant`). ' +
          'Refused with 422 `business_rule` and a `reason`, writing nothing, when the sequence is not active (`sequence_not_active`), has no steps (`sequence_has_no_steps`), ' +
          'its A/B variant cannot take enrollments (`ab_variant_not_active`, `ab_variant_has_no_steps`), or no contact given can be enrolled (`no_enrollable_contacts`, with every result).',
        tags: ['Sequences'],
        operationId: 'executeSequence',
        params: IdParams,
        body: { ...ExecuteBody, examples: [{ contacts: [{ email: 'customer@example.com', firstName: 'Jane', lastName: 'Doe', phone: '+15551234567' }] }] },
        response: {
          200: ok(ExecutionOutcome, 'One result per contact given, in order', {
            success: true,
            sequenceId: ids.sequence,
            queued: 1,
            skipped: 2,
            results: [
              { index: 0, email: 'customer@example.com', contactId: ids.contact, contactCreated: true, status: 'queued', sessionId: ids.session },
              { index: 1, email: 'ana@example', contactId: null, status: 'skipped', reason: 'invalid', errors: { email: ['email must be a valid email address such as ana@example.com'] } },
              { index: 2, email: 'bo@example.com', contactId: ids.otherContact, contactCreated: false, status: 'skipped', reason: 'already_running', sessionId: ids.otherSession },
            ],
          }),
          ...errorResponses(400, ...authErrors, 404, 409, 415, 422),
        },
      },
    },
    async (request) => executeSequence(ctx, request.principal!.workspaceId, idOf(request), (request.body ?? {}) as ExecuteInput),
  );

  app.put(
    '/api/v1/sequences/:id/ab-test',
    {
      config: { scope: 'sequences:write' },
      schema: {
        summary: 'Set up an A/B test',
        description:
          'Sends `splitPercent`% of the contacts enrolled into this sequence (A) to the variant sequence B instead, from now on and by every way of enrolling ' +
          '(API, execute, enroll, triggers). Each contact always lands on the same side. B must be another sequence of the workspace without a test of its own. ' +
          'While B is not active or has no steps, enrollments into A are refused with 422 (`reason` `ab_variant_not_active` or `ab_variant_has_no_steps`). ' +
          'Takes effect at once: the test is not part of the draft and needs no publishing.',
        tags: ['Sequences'],
        operationId: 'setSequenceAbTest',
        params: IdParams,
        body: { ...AbTestBody, examples: [{ variantSequenceId: ids.variant, splitPercent: 30 }] },
        response: {
          200: ok(Type.Object({ success: Type.Boolean(), abTest: AbTestView }), 'The test', {
            success: true,
            abTest: { sequenceId: ids.sequence, variantSequenceId: ids.variant, variantSequenceName: 'Welcome 7-day (short)', variantStatus: 'active', splitPercent: 30 },
          }),
          ...errorResponses(400, ...authErrors, 404, 415, 422),
        },
      },
    },
    async (request) => ({ success: true, abTest: await abTests.setAbTest(ctx, request.principal!.workspaceId, idOf(request), request.body as abTests.AbTestInput) }),
  );

  app.delete(
    '/api/v1/sequences/:id/ab-test',
    {
      config: { scope: 'sequences:write' },
      schema: {
        summary: 'Remove an A/B test',
        description: 'Every enrollment runs this sequence again. Sessions the test started keep their side, so its results stay available.',
        tags: ['Sequences'],
        operationId: 'removeSequenceAbTest',
        params: IdParams,
        response: {
          200: ok(Type.Object({ success: Type.Boolean(), removed: Type.Boolean({ description: 'False when the sequence had no test' }) }), 'Removed', { success: true, removed: true }),
          ...errorResponses(...authErrors, 404),
        },
      },
    },
    async (request) => ({ success: true, ...(await abTests.removeAbTest(ctx, request.principal!.workspaceId, idOf(request))) }),
  );

  app.get(
    '/api/v1/sequences/:id/ab-test/results',
    {
      config: { scope: 'sequences:read' },
      schema: {
        summary: 'Results of an A/B test',
        description:
          'Per side: enrollments, and how many of them had a message sent, delivered, read, a tracked email link clicked, a reply, or reached a goal step, with each rate over the enrollments ' +
          '(and message totals). `significance` compares one metric between the sides with a two-sided, pooled two-proportion z-test at alpha 0.05: ' +
          '`metric` when given, otherwise `goalReached` when either sequence has a goal step, else `clicked`.',
        tags: ['Sequences'],
        operationId: 'getSequenceAbTestResults',
        params: IdParams,
        querystring: Type.Object({ metric: Type.Optional(Type.Union(abTests.abMetrics.map((m) => Type.Literal(m)), { description: 'The metric to test' })) }),
        response: {
          200: ok(AbResults, 'The results', {
            success: true,
            sequenceId: ids.sequence,
            abTest: { variantSequenceId: ids.variant, splitPercent: 50 },
            variants: [variantExample('A', 1000, 50, 31), variantExample('B', 1000, 80, 35)],
            significance: { metric: 'clicked', test: 'two-proportion z-test', alpha: 0.05, rateA: 0.05, rateB: 0.08, difference: 0.03, z: 2.7211, pValue: 0.0065066, significant: true, winner: 'B' },
          }),
          ...errorResponses(...authErrors, 404, 422),
        },
      },
    },
    async (request) => abTests.abTestResults(ctx, request.principal!.workspaceId, idOf(request), request.query as { metric?: string }),
  );
}
