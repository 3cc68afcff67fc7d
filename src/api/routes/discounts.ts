import { Type } from 'typebox';
import type { Context } from '../../engine/context.js';
import * as discounts from '../../engine/discount-service.js';
import * as integrations from '../../engine/integration-service.js';
import { authErrors, errorResponses, Nullable, ok, Timestamp, Uuid } from '../schemas.js';
import type { App } from '../types.js';

/*
 * Discount integrations (Stripe, Shopify) and the discount codes sequences create.
 * Every rule lives in engine/integration-service.ts and engine/discount-service.ts;
 * secrets go in, never out. Integration settings are snake_case like the channel
 * settings; discount codes are camelCase like the sequences API and the
 * {{discount.*}} merge tags they feed.
 */

/** A plain JSON Schema enum: its validation error reads "x must be one of a, b" (an anyOf of literals reads far worse). */
const oneOf = (values: readonly string[], description: string) => Type.Unsafe<string>({ type: 'string', enum: [...values], description });

const ProviderParam = Type.Object({ provider: oneOf(['stripe', 'shopify'], 'stripe or shopify') });

const secretText = (description: string) => Type.Optional(Type.String({ maxLength: 4096, description: `${description} Secret: stored encrypted, never returned. Leave it out to keep the stored value.` }));

const IntegrationBody = Type.Object(
  {
    secret_key: secretText('Stripe: a secret key (sk_live_…, sk_test_…) or a restricted key (rk_…) allowed to write coupons, promotion codes and customers (required).'),
    shop_domain: Type.Optional(Type.String({ maxLength: 255, description: 'Shopify: the shop\u2019s myshopify.com domain, e.g. acme.myshopify.com (required)' })),
    access_token: secretText('Shopify: an Admin API access token (shpat_…) with the write_discounts and read_customers scopes (required).'),
    api_version: Type.Optional(Type.String({ maxLength: 20, description: 'Shopify: the Admin API version (default 2024-10)' })),
    base_url: Type.Optional(
      Type.String({ maxLength: 300, description: 'The provider API base URL: Stripe defaults to NUDGE_STRIPE_BASE_URL (https://api.stripe.com), Shopify to https://<shop_domain>. Change it only for a proxy or a test double.' }),
    ),
  },
  {
    additionalProperties: false,
    examples: [{ secret_key: 'sk_live_51H…' }, { shop_domain: 'acme.myshopify.com', access_token: 'shpat_…', api_version: '2024-10' }],
  },
);

const Integration = Type.Object(
  {
    provider: Type.String({ description: 'stripe or shopify' }),
    connected: Type.Boolean(),
    config: Type.Object({}, { additionalProperties: true, description: 'The non-secret settings, with defaults filled in' }),
    secrets: Type.Record(Type.String(), Type.Boolean(), { description: 'Which secrets are set (`secret_key_set: true`); never their values' }),
    status: Type.String({
      description: 'not_connected; ok (the provider accepted the credentials); error (it refused them: see last_error); unverified (it could not be reached to check them)',
    }),
    last_error: Nullable(Type.String({ description: "The provider's message when status is error or unverified" })),
    status_at: Nullable(Timestamp),
    updated_at: Nullable(Timestamp),
  },
  { $id: 'Integration', title: 'Integration' },
);
const integrationRef = { $ref: 'Integration#' } as const;

const stripeExample = {
  provider: 'stripe',
  connected: true,
  config: { base_url: 'https://api.stripe.com' },
  secrets: { secret_key_set: true },
  status: 'ok',
  last_error: null,
  status_at: '2026-05-07T08:14:23.000Z',
  updated_at: '2026-05-07T08:14:23.000Z',
};
const shopifyNotConnected = { provider: 'shopify', connected: false, config: {}, secrets: { access_token_set: false }, status: 'not_connected', last_error: null, status_at: null, updated_at: null };

const Discount = Type.Object(
  {
    id: Uuid,
    code: Type.String(),
    provider: Type.String({ description: 'builtin, stripe or shopify' }),
    status: Type.String({ description: 'active, expired or exhausted, as far as Nudge knows (Stripe and Shopify count their own redemptions)' }),
    percentOff: Nullable(Type.Number()),
    amountOff: Nullable(Type.Number({ description: 'In the currency\u2019s major unit: 10 is $10.00' })),
    currency: Nullable(Type.String()),
    duration: Nullable(Type.String({ description: 'once, repeating or forever: how long a subscription keeps the discount' })),
    durationInMonths: Nullable(Type.Integer()),
    appliesToAllPlans: Type.Boolean(),
    planIds: Type.Array(Type.String()),
    label: Nullable(Type.String()),
    expiresAt: Nullable(Timestamp),
    maxRedemptions: Nullable(Type.Integer()),
    redemptions: Type.Integer({ description: 'Redemptions through POST /api/v1/discounts/redeem (builtin codes)' }),
    remainingRedemptions: Nullable(Type.Integer()),
    lockedToContactId: Nullable(Uuid),
    contactId: Nullable(Uuid),
    sessionId: Nullable(Uuid),
    sequenceId: Nullable(Uuid),
    stepId: Nullable(Type.String()),
    providerRef: Nullable(Type.Record(Type.String(), Type.String(), { description: 'The provider\u2019s ids: couponId and promotionCodeId at Stripe, priceRuleId and discountCodeId at Shopify' })),
    createdAt: Timestamp,
    lastRedeemedAt: Nullable(Timestamp),
  },
  { $id: 'Discount', title: 'Discount' },
);
const discountRef = { $ref: 'Discount#' } as const;

const discountExample = {
  id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a70',
  code: 'WINBACK-7Q2KXM9PHT',
  provider: 'builtin',
  status: 'active',
  percentOff: 20,
  amountOff: null,
  currency: null,
  duration: 'once',
  durationInMonths: null,
  appliesToAllPlans: true,
  planIds: [],
  label: 'Create win-back discount',
  expiresAt: null,
  maxRedemptions: 1,
  redemptions: 0,
  remainingRedemptions: 1,
  lockedToContactId: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a61',
  contactId: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a61',
  sessionId: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a60',
  sequenceId: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c',
  stepId: 'step-1',
  providerRef: null,
  createdAt: '2026-05-07T08:14:23.000Z',
  lastRedeemedAt: null,
};

const RedeemBody = Type.Object(
  {
    code: Type.String({ minLength: 1, maxLength: 200, description: 'The code the customer gave; case is ignored' }),
    email: Type.Optional(Type.String({ maxLength: 254, description: 'The customer redeeming it (required for a code locked to its subscriber, unless contactId is given)' })),
    contactId: Type.Optional(Type.String({ maxLength: 36, description: 'The customer as a Nudge contact id, instead of email' })),
  },
  { additionalProperties: false, examples: [{ code: 'WINBACK-7Q2KXM9PHT', email: 'ana@example.com' }] },
);

const Redemption = Type.Object({
  discount: discountRef,
  redemption: Type.Object({ id: Uuid, contactId: Nullable(Uuid), email: Nullable(Type.String()), redeemedAt: Timestamp }),
});

const redeemErrors = {
  ...errorResponses(400, ...authErrors, 413, 415),
  404: {
    description: 'No such code in this workspace (or the contactId names no contact)',
    content: { 'application/json': { schema: { $ref: 'Error#' }, example: { error: 'Discount code not found', code: 'not_found', message: 'Discount code not found' } } },
  },
  409: {
    description: 'discount_exhausted: the code has been redeemed the most times it allows; or idempotency_conflict: the Idempotency-Key was used with another body',
    content: {
      'application/json': {
        schema: { $ref: 'Error#' },
        example: { error: 'This code has been redeemed the most times it allows (1)', code: 'discount_exhausted', message: 'This code has been redeemed the most times it allows (1)', maxRedemptions: 1 },
      },
    },
  },
  422: {
    description: 'discount_expired, discount_locked (locked to another subscriber), discount_not_redeemable (a Stripe or Shopify code) or validation_failed',
    content: {
      'application/json': {
        schema: { $ref: 'Error#' },
        example: { error: 'This code expired at 2026-06-01T00:00:00.000Z', code: 'discount_expired', message: 'This code expired at 2026-06-01T00:00:00.000Z', expiresAt: '2026-06-01T00:00:00.000Z' },
      },
    },
  },
};

export function registerDiscountRoutes(app: App, ctx: Context): void {
  app.addSchema(Integration);
  app.addSchema(Discount);

  app.get(
    '/api/v1/settings/integrations',
    {
      config: { scope: 'settings:read' },
      schema: {
        summary: 'List discount integrations',
        description: 'Stripe and Shopify, connected or not: the non-secret settings, which secrets are set (never the secrets), and what the provider last said about the credentials.',
        tags: ['Settings'],
        operationId: 'listIntegrations',
        response: { 200: ok(Type.Object({ data: Type.Array(integrationRef) }), 'The integrations', { data: [stripeExample, shopifyNotConnected] }), ...errorResponses(...authErrors) },
      },
    },
    async (request) => ({ data: await integrations.listIntegrations(ctx, request.principal!.workspaceId) }),
  );

  app.get(
    '/api/v1/settings/integrations/:provider',
    {
      config: { scope: 'settings:read' },
      schema: {
        summary: 'Get a discount integration',
        description: 'One provider\u2019s settings and status; `connected: false` when it has none.',
        tags: ['Settings'],
        operationId: 'getIntegration',
        params: ProviderParam,
        response: { 200: ok(integrationRef, 'The integration', stripeExample), ...errorResponses(...authErrors, 422) },
      },
    },
    async (request) => integrations.getIntegration(ctx, request.principal!.workspaceId, (request.params as { provider: string }).provider),
  );

  app.put(
    '/api/v1/settings/integrations/:provider',
    {
      config: { scope: 'settings:write' },
      schema: {
        summary: 'Connect a discount integration',
        description:
          'Connects the provider that `create_discount` steps use: Stripe (`secret_key`, optionally `base_url`) or Shopify (`shop_domain`, `access_token`, ' +
          'optionally `api_version`, `base_url`). Every field is checked and a bad one is named in the 422. The credentials are then tried with one read at the provider: ' +
          '`status` is `ok`, `error` (refused, with the provider\u2019s message in `last_error`) or `unverified` (the provider could not be reached). ' +
          'Secrets are encrypted with NUDGE_SECRET_KEY; a secret left out keeps its stored value. Sequences with discount steps can be enabled only while their provider is `ok`.',
        tags: ['Settings'],
        operationId: 'setIntegration',
        params: ProviderParam,
        body: IntegrationBody,
        response: { 200: ok(integrationRef, 'The integration as stored, with the provider\u2019s verdict', stripeExample), ...errorResponses(400, ...authErrors, 413, 415, 422) },
      },
    },
    async (request) => integrations.setIntegration(ctx, request.principal!.workspaceId, (request.params as { provider: string }).provider, request.body as Record<string, unknown>),
  );

  app.delete(
    '/api/v1/settings/integrations/:provider',
    {
      config: { scope: 'settings:write' },
      schema: {
        summary: 'Disconnect a discount integration',
        description: 'Removes the provider\u2019s settings and secrets. Discount steps that use it fail from then on (and sequences using it cannot be enabled again). Removing one that is not connected is harmless.',
        tags: ['Settings'],
        operationId: 'deleteIntegration',
        params: ProviderParam,
        response: { 200: ok(integrationRef, 'The integration, disconnected', { ...shopifyNotConnected, provider: 'stripe', secrets: { secret_key_set: false } }), ...errorResponses(...authErrors, 422) },
      },
    },
    async (request) => integrations.deleteIntegration(ctx, request.principal!.workspaceId, (request.params as { provider: string }).provider),
  );

  app.get(
    '/api/v1/discounts',
    {
      config: { scope: 'discounts:read' },
      schema: {
        summary: 'List discount codes',
        description: 'Every code the workspace\u2019s discount steps created, at any provider, newest first. Filter by contact, session, sequence or provider; pass `nextCursor` as `cursor` for the next page.',
        tags: ['Discounts'],
        operationId: 'listDiscounts',
        querystring: Type.Object({
          contactId: Type.Optional(Type.String({ maxLength: 36 })),
          sessionId: Type.Optional(Type.String({ maxLength: 36 })),
          sequenceId: Type.Optional(Type.String({ maxLength: 36 })),
          provider: Type.Optional(oneOf(['builtin', 'stripe', 'shopify'], 'Only codes of this provider')),
          cursor: Type.Optional(Type.String({ maxLength: 200 })),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
        }),
        response: {
          200: ok(Type.Object({ data: Type.Array(discountRef), nextCursor: Nullable(Type.String()) }), 'A page of codes', { data: [discountExample], nextCursor: null }),
          ...errorResponses(...authErrors, 422),
        },
      },
    },
    async (request) => discounts.listDiscounts(ctx, request.principal!.workspaceId, request.query as discounts.ListDiscountsQuery),
  );

  app.get(
    '/api/v1/discounts/:code',
    {
      config: { scope: 'discounts:read' },
      schema: {
        summary: 'Get a discount code',
        description: 'A code by its text, ignoring case: what it grants, until when, how often it was redeemed and who it is locked to. A checkout can call this to show the discount before redeeming it.',
        tags: ['Discounts'],
        operationId: 'getDiscount',
        params: Type.Object({ code: Type.String({ maxLength: 200 }) }),
        response: { 200: ok(discountRef, 'The code', discountExample), ...errorResponses(...authErrors, 404) },
      },
    },
    async (request) => discounts.getDiscount(ctx, request.principal!.workspaceId, (request.params as { code: string }).code),
  );

  app.post(
    '/api/v1/discounts/redeem',
    {
      config: { scope: 'discounts:write', idempotent: true },
      schema: {
        summary: 'Redeem a discount code',
        description:
          'Uses a Nudge (`builtin`) code once, for the customer given by `email` or `contactId`. The expiry, the redemption limit and the lock to the subscriber ' +
          'are checked and the use counted in one database statement, so concurrent redemptions of a single-use code let exactly one through. ' +
          'Refusals: 404 `not_found`, 409 `discount_exhausted`, 422 `discount_expired`, `discount_locked` or `discount_not_redeemable` (Stripe and Shopify codes are redeemed at their checkout).',
        tags: ['Discounts'],
        operationId: 'redeemDiscount',
        body: RedeemBody,
        response: {
          200: ok(Redemption, 'The code after this redemption', {
            discount: { ...discountExample, status: 'exhausted', redemptions: 1, remainingRedemptions: 0, lastRedeemedAt: '2026-05-08T10:00:00.000Z' },
            redemption: { id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a71', contactId: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a61', email: null, redeemedAt: '2026-05-08T10:00:00.000Z' },
          }),
          ...redeemErrors,
        },
      },
    },
    async (request) => discounts.redeemDiscount(ctx, request.principal!.workspaceId, request.body as discounts.RedeemInput),
  );
}
