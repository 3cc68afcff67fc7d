import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChannelAdapter } from '../../src/channels/channel.js';
import { ManualClock } from '../../src/domain/clock.js';
import type { ChannelRegistry } from '../../src/engine/channel-registry.js';
import { Worker } from '../../src/engine/worker.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { dialects } from '../support/databases.js';
import { createTestWorker } from '../support/engine.js';
import { startFakeShopify, type FakeShopify } from '../support/fake-shopify.js';
import { startFakeStripe, type FakeStripe } from '../support/fake-stripe.js';

const day = 86_400_000;
const hour = 3_600_000;
const secretKey = 'sk_test_51NudgeFake0000000000000000000000abcd';
const accessToken = 'shpat_0123456789abcdef0123456789abcdef';

/**
 * Discount steps end to end: a sequence whose create_discount step makes a code at Stripe,
 * at Shopify or in Nudge itself, and whose next email carries it through {{discount.*}}.
 * The providers are local fakes speaking their real wire formats; time is a ManualClock.
 */
describe.each(dialects)('discount steps on %s', (dialect) => {
  let t: TestApp;
  let stripe: FakeStripe;
  let shopify: FakeShopify;
  // The fakes check expiries against the real time, so the clock starts there.
  const clock = new ManualClock(Date.now());
  const headers = () => t.auth;
  const post = (url: string, payload: unknown, auth = headers()) => t.app.inject({ method: 'POST', url, headers: auth, payload: payload as object });
  const put = (url: string, payload: unknown, auth = headers()) => t.app.inject({ method: 'PUT', url, headers: auth, payload: payload as object });
  const get = (url: string, auth = headers()) => t.app.inject({ method: 'GET', url, headers: auth });
  const worker = () => createTestWorker(t.ctx);
  const db = () => t.ctx.database.db;

  beforeAll(async () => {
    stripe = await startFakeStripe(secretKey);
    shopify = await startFakeShopify(accessToken);
    // A short provider timeout, so the test of a lost answer waits one second, not ten.
    t = await createTestApp(dialect, { clock, env: { NUDGE_WEBHOOK_TIMEOUT_MS: '1000' } });
    const connected = await put('/api/v1/settings/integrations/stripe', { secret_key: secretKey, base_url: stripe.baseUrl });
    expect(connected.statusCode, connected.body).toBe(200);
    expect(connected.json()).toMatchObject({ provider: 'stripe', connected: true, status: 'ok', secrets: { secret_key_set: true } });
    const shop = await put('/api/v1/settings/integrations/shopify', { shop_domain: 'nudge-test.myshopify.com', access_token: accessToken, base_url: shopify.baseUrl });
    expect(shop.statusCode, shop.body).toBe(200);
    expect(shop.json().status).toBe('ok');
  });
  afterAll(async () => {
    await t.close();
    await stripe.close();
    await shopify.close();
  });

  async function enabled(body: object): Promise<string> {
    const created = await post('/api/v1/sequences', body);
    expect(created.statusCode, created.body).toBe(201);
    const id = created.json().sequence.id as string;
    const enable = await post(`/api/v1/sequences/${id}/enable`, {});
    expect(enable.statusCode, enable.body).toBe(200);
    return id;
  }

  async function emailsOf(email: string): Promise<Array<{ status: string; content: { subject?: string; html?: string; text?: string } }>> {
    const row = await db().selectFrom('contacts').select('id').where('workspace_id', '=', t.workspaceId).where('email', '=', email).executeTakeFirstOrThrow();
    return (await get(`/api/v1/messages?contact_id=${row.id}&channel=email&limit=100`)).json().data;
  }

  async function sessionOf(definitionId: string) {
    const row = await db().selectFrom('sessions').selectAll().where('definition_id', '=', definitionId).executeTakeFirstOrThrow();
    const history = (await get(`/api/v1/sessions/${row.id}`)).json().history as Array<{ node_type: string; outcome: string; detail: Record<string, unknown> | null }>;
    return { row, history: history.filter((h) => h.node_type === 'create_discount') };
  }

  const codesOf = (definitionId: string) => db().selectFrom('discount_codes').selectAll().where('definition_id', '=', definitionId).execute();
  const tag = (email: string, name: string) => post('/api/v1/subscribers/tags', { email, tags: [name] });
  const posts = (path: string) => stripe.requests.filter((r) => r.method === 'POST' && r.path === path).length;

  it('runs the reference page’s Win-back Discount example verbatim: the next day’s email carries the promotion code Stripe made, for 20% off', async () => {
    // The example as published; only the host and the token differ.
    const created = await post('/api/v1/sequences', {
      name: 'Win-back Discount',
      trigger: 'tag_added',
      tagName: 'cancelled',
      steps: [
        {
          type: 'create_discount',
          discount: {
            label: 'Create win-back discount',
            discountType: 'percent',
            percentOff: 20,
            duration: 'once',
            appliesToAllPlans: true,
            maxRedemptions: 1,
            lockToSubscriber: true,
            codePrefix: 'WINBACK',
          },
        },
        {
          subject: 'Come back with {{discount.code}}',
          delay: { days: 1 },
          html: '<p>Use {{discount.code}} for {{discount.percentOff}}% off your next subscription.</p>',
        },
      ],
    });
    expect(created.statusCode, created.body).toBe(201);
    const id = created.json().sequence.id as string;
    const enable = await post(`/api/v1/sequences/${id}/enable`, {});
    expect(enable.statusCode, enable.body).toBe(200);

    expect((await tag('winback@example.com', 'cancelled')).statusCode).toBe(200);
    await worker().drain();
    // The code exists at Stripe from the first day; the email waits for its delay.
    expect(stripe.promotionCodes.filter((p) => String(p.code).startsWith('WINBACK-'))).toHaveLength(1);
    expect(await emailsOf('winback@example.com')).toEqual([]);

    clock.advance(day);
    await worker().drain();

    const promotion = stripe.promotionCodes.find((p) => String(p.code).startsWith('WINBACK-'))!;
    const code = String(promotion.code);
    expect(code).toMatch(/^WINBACK-[2-9A-HJKMNP-Z]{10}$/);
    const coupon = stripe.requests.find((r) => r.method === 'POST' && r.path === '/v1/coupons' && r.params.name === 'Create win-back discount')!;
    expect(coupon.params).toMatchObject({ percent_off: '20', duration: 'once', max_redemptions: '1' });
    const customer = stripe.customers.find((c) => c.email === 'winback@example.com')!;
    expect(customer).toBeDefined();
    const promotionRequest = stripe.requests.find((r) => r.method === 'POST' && r.path === '/v1/promotion_codes' && r.params.code === code)!;
    const couponId = String(stripe.coupons.find((c) => c.name === 'Create win-back discount')!.id);
    expect(promotionRequest.params).toMatchObject({ code, coupon: couponId, max_redemptions: '1', customer: customer.id });
    expect(promotionRequest.idempotencyKey).toMatch(/:promotion_code$/);

    const [email] = await emailsOf('winback@example.com');
    expect(email!.status).toBe('delivered');
    expect(email!.content.subject).toBe(`Come back with ${code}`);
    expect(email!.content.html).toContain(`Use ${code} for 20% off your next subscription.`);

    const stored = await codesOf(id);
    expect(stored).toHaveLength(1);
    const { row: session, history } = await sessionOf(id);
    expect(stored[0]).toMatchObject({ code, provider: 'stripe', session_id: session.id, contact_id: session.contact_id, max_redemptions: 1, lock_contact_id: session.contact_id });
    expect(history.map((h) => h.outcome)).toEqual(['creating', 'created']);
    expect(history[1]!.detail).toMatchObject({ provider: 'stripe', code });
    expect(session.status).toBe('completed');

    const shown = await get(`/api/v1/discounts/${code.toLowerCase()}`);
    expect(shown.statusCode, shown.body).toBe(200);
    expect(shown.json()).toMatchObject({ code, provider: 'stripe', percentOff: 20, duration: 'once', maxRedemptions: 1, sequenceId: id, providerRef: { promotionCodeId: promotion.id } });
  });

  it('makes a Shopify price rule and discount code, locked to the customer, and mails it at once', async () => {
    const customerId = shopify.addCustomer('shopper@example.com');
    const id = await enabled({
      name: 'Shopify thanks',
      trigger: 'tag_added',
      tagName: 'first-order',
      steps: [
        { type: 'create_discount', discount: { provider: 'shopify', percentOff: 15, expiresInHours: 48, maxRedemptions: 1, lockToSubscriber: true, codePrefix: 'THANKS' } },
        { subject: 'A gift', html: '<p>{{discount.code}}: {{discount.percentOff}}% off until {{discount.expiresAt}}</p>' },
      ],
    });
    await tag('shopper@example.com', 'first-order');
    await worker().drain();

    const [stored] = await codesOf(id);
    expect(stored).toMatchObject({ provider: 'shopify', percent_off: 15 });
    const code = stored!.code;
    const rule = shopify.priceRules.find((r) => r.title === code)!;
    expect(rule).toMatchObject({ value_type: 'percentage', value: '-15.0', usage_limit: 1, customer_selection: 'prerequisite', prerequisite_customer_ids: [customerId] });
    expect(shopify.discountCodes.filter((d) => d.code === code)).toHaveLength(1);
    const expiresAt = new Date(Date.parse(String(rule.ends_at))).toISOString();
    const [email] = await emailsOf('shopper@example.com');
    expect(email!.content.html).toContain(`${code}: 15% off until ${expiresAt}`);
    expect(JSON.parse(stored!.provider_ref!)).toMatchObject({ priceRuleId: String(rule.id) });
  });

  it('makes a random builtin code that the API redeems once, for its subscriber only, even under concurrent redemptions', async () => {
    const id = await enabled({
      name: 'Builtin thanks',
      trigger: 'tag_added',
      tagName: 'vip',
      steps: [
        { type: 'create_discount', discount: { provider: 'builtin', discountType: 'amount', amountOff: 10, currency: 'usd', maxRedemptions: 1, lockToSubscriber: true, codePrefix: 'vip', expiresInHours: 72 } },
        { subject: 'Your code', html: '<p>{{discount.code}} takes {{discount.amountOff}} {{discount.currency}} off.</p>' },
      ],
    });
    await tag('vip@example.com', 'vip');
    await tag('vip2@example.com', 'vip');
    await worker().drain();

    const codes = await codesOf(id);
    expect(codes).toHaveLength(2);
    expect(codes[0]!.code).not.toBe(codes[1]!.code);
    const vip = await db().selectFrom('contacts').select('id').where('workspace_id', '=', t.workspaceId).where('email', '=', 'vip@example.com').executeTakeFirstOrThrow();
    const mine = codes.find((c) => c.contact_id === vip.id)!;
    expect(mine.code).toMatch(/^VIP-[2-9A-HJKMNP-Z]{10}$/);
    expect(mine).toMatchObject({ provider: 'builtin', amount_off: 10, currency: 'USD', max_redemptions: 1, lock_contact_id: vip.id, expires_at: clock.now() + 72 * hour });
    const [email] = await emailsOf('vip@example.com');
    expect(email!.content.html).toContain(`${mine.code} takes 10 USD off.`);

    const shown = await get(`/api/v1/discounts/${mine.code.toLowerCase()}`);
    expect(shown.json()).toMatchObject({ code: mine.code, status: 'active', amountOff: 10, currency: 'USD', remainingRedemptions: 1, lockedToContactId: vip.id, expiresAt: new Date(clock.now() + 72 * hour).toISOString() });

    const other = await post('/api/v1/discounts/redeem', { code: mine.code, email: 'vip2@example.com' });
    expect(other.statusCode, other.body).toBe(422);
    expect(other.json().code).toBe('discount_locked');
    const nobody = await post('/api/v1/discounts/redeem', { code: mine.code });
    expect(nobody.statusCode).toBe(422);
    expect(nobody.json().errors).toHaveProperty('email');

    // Ten checkouts at once: the database lets exactly one through.
    const burst = await Promise.all(Array.from({ length: 10 }, () => post('/api/v1/discounts/redeem', { code: mine.code.toLowerCase(), contactId: vip.id })));
    expect(burst.map((r) => r.statusCode).sort()).toEqual([200, ...Array(9).fill(409)]);
    const won = burst.find((r) => r.statusCode === 200)!.json();
    expect(won).toMatchObject({ discount: { code: mine.code, status: 'exhausted', redemptions: 1, remainingRedemptions: 0 }, redemption: { contactId: vip.id } });
    expect(burst.find((r) => r.statusCode === 409)!.json().code).toBe('discount_exhausted');
    const again = await post('/api/v1/discounts/redeem', { code: mine.code, email: 'vip@example.com' });
    expect(again.statusCode).toBe(409);
    const redemptions = await db().selectFrom('discount_redemptions').selectAll().where('discount_code_id', '=', mine.id).execute();
    expect(redemptions).toHaveLength(1);
    expect((await get(`/api/v1/discounts/${mine.code}`)).json()).toMatchObject({ redemptions: 1, status: 'exhausted' });

    expect((await post('/api/v1/discounts/redeem', { code: 'VIP-NOSUCHCODE' })).statusCode).toBe(404);
  });

  it('refuses an expired builtin code and redeems an unlocked one for a customer Nudge does not know', async () => {
    const id = await enabled({
      name: 'Flash sale',
      trigger: 'tag_added',
      tagName: 'flash',
      steps: [
        { type: 'create_discount', discount: { provider: 'builtin', percentOff: 30, maxRedemptions: 3, expiresInHours: 2 } },
        { subject: 'Two hours', html: '<p>{{discount.code}}</p>' },
      ],
    });
    await tag('flash@example.com', 'flash');
    await worker().drain();
    const [stored] = await codesOf(id);
    const forwarded = await post('/api/v1/discounts/redeem', { code: stored!.code, email: 'Friend@Example.com' });
    expect(forwarded.statusCode, forwarded.body).toBe(200);
    expect(forwarded.json()).toMatchObject({ redemption: { contactId: null, email: 'friend@example.com' }, discount: { redemptions: 1, remainingRedemptions: 2, status: 'active' } });
    clock.advance(3 * hour);
    const late = await post('/api/v1/discounts/redeem', { code: stored!.code, email: 'flash@example.com' });
    expect(late.statusCode).toBe(422);
    expect(late.json()).toMatchObject({ code: 'discount_expired', expiresAt: new Date(Number(stored!.expires_at)).toISOString() });
    expect((await get(`/api/v1/discounts/${stored!.code}`)).json()).toMatchObject({ status: 'expired', redemptions: 1 });
  });

  it('retries a provider failure with backoff and ends with one code', async () => {
    const id = await enabled({
      name: 'Retry',
      trigger: 'tag_added',
      tagName: 'retry',
      steps: [
        { type: 'create_discount', discount: { percentOff: 5, codePrefix: 'RETRY' } },
        { subject: 'Code', html: '<p>{{discount.code}}</p>' },
      ],
    });
    stripe.script.push({ match: 'POST /v1/coupons', status: 500, body: { error: { type: 'api_error', message: 'Something went wrong on our end.' } } });
    await tag('retry@example.com', 'retry');
    await worker().drain();
    expect(stripe.script).toEqual([]);
    let { row, history } = await sessionOf(id);
    expect(row.status).toBe('running');
    expect(history.map((h) => h.outcome)).toEqual(['creating', 'retry_scheduled']);
    expect(history[1]!.detail).toMatchObject({ attempt: 1, code: 'api_error' });
    expect(Number(row.wake_at)).toBeGreaterThan(clock.now());
    expect(await codesOf(id)).toEqual([]);

    clock.advance(hour);
    await worker().drain();
    ({ row, history } = await sessionOf(id));
    expect(history.map((h) => h.outcome)).toEqual(['creating', 'retry_scheduled', 'creating_again', 'created']);
    const codes = await codesOf(id);
    expect(codes).toHaveLength(1);
    expect(stripe.promotionCodes.filter((p) => p.code === codes[0]!.code)).toHaveLength(1);
    expect(stripe.coupons.filter((c) => (c.metadata as Record<string, string>).nudge_code === codes[0]!.code)).toHaveLength(1);
    expect((await emailsOf('retry@example.com'))[0]!.content.html).toContain(codes[0]!.code);
    expect(row.status).toBe('completed');
  });

  it('finds the code Stripe made when its answer was lost, instead of making a second', async () => {
    const id = await enabled({
      name: 'Lost answer',
      trigger: 'tag_added',
      tagName: 'lost',
      steps: [
        { type: 'create_discount', discount: { percentOff: 7, codePrefix: 'LOST' } },
        { subject: 'Code', html: '<p>{{discount.code}}</p>' },
      ],
    });
    // Stripe makes the promotion code, then the connection goes quiet until our timeout.
    stripe.script.push({ match: 'POST /v1/promotion_codes', lose: true });
    await tag('lost@example.com', 'lost');
    await worker().drain();
    expect((await sessionOf(id)).history.map((h) => h.outcome)).toEqual(['creating', 'retry_scheduled']);
    const made = stripe.promotionCodes.filter((p) => String(p.code).startsWith('LOST-'));
    expect(made).toHaveLength(1);
    const postsBefore = posts('/v1/promotion_codes');

    clock.advance(hour);
    await worker().drain();
    expect(posts('/v1/promotion_codes')).toBe(postsBefore);
    expect(stripe.promotionCodes.filter((p) => String(p.code).startsWith('LOST-'))).toHaveLength(1);
    const codes = await codesOf(id);
    expect(codes.map((c) => c.code)).toEqual([made[0]!.code]);
    expect((await emailsOf('lost@example.com'))[0]!.content.html).toContain(String(made[0]!.code));
  });

  it('consumes a stored result without calling the provider again when the run after it crashed', async () => {
    const id = await enabled({
      name: 'Crash',
      trigger: 'tag_added',
      tagName: 'crash',
      steps: [
        { type: 'create_discount', discount: { percentOff: 12, codePrefix: 'CRASH' } },
        { subject: 'Code', html: '<p>{{discount.code}}</p>' },
      ],
    });
    await tag('crash@example.com', 'crash');
    // A worker whose email send dies mid-transaction, as a process killed there would:
    // the run that reads the stored code and queues the email rolls back entirely.
    const dying: ChannelAdapter = { provider: 'sandbox', inline: true, send: async () => Promise.reject(new Error('power cut')) };
    const registry: ChannelRegistry = {
      adapterFor: (workspaceId, channel, provider) => (channel === 'email' ? dying : t.ctx.channels.adapterFor(workspaceId, channel, provider)),
      providerFor: (workspaceId, channel) => t.ctx.channels.providerFor(workspaceId, channel),
    };
    const crashing = new Worker(t.ctx, registry, t.ctx.versions, null, { batchSize: 100, pollIntervalMs: 50, dispatchConcurrency: 8 });
    await crashing.runSchedulerOnce();
    const requestsAfterCall = stripe.requests.length;
    const stored = await sessionOf(id);
    expect(JSON.parse(stored.row.state).discount_runs).toEqual({ [`${stored.row.current_node}:1`]: expect.objectContaining({ result: expect.objectContaining({ ok: true }) }) });
    await expect(crashing.runSchedulerOnce()).rejects.toThrow('power cut');
    expect(await emailsOf('crash@example.com')).toEqual([]);

    await worker().drain();
    expect(stripe.requests.length).toBe(requestsAfterCall);
    const codes = await codesOf(id);
    expect(codes).toHaveLength(1);
    const emails = await emailsOf('crash@example.com');
    expect(emails).toHaveLength(1);
    expect(emails[0]!.content.html).toContain(codes[0]!.code);
    expect((await sessionOf(id)).history.map((h) => h.outcome)).toEqual(['creating', 'created']);
  });

  it('stops the run by default when the provider refuses the discount, and goes on with on_failure continue', async () => {
    const refusal = { error: { type: 'invalid_request_error', code: 'parameter_invalid', message: 'This coupon cannot be created.' } };
    const stopping = await enabled({
      name: 'Refused',
      trigger: 'tag_added',
      tagName: 'refused',
      steps: [
        { type: 'create_discount', discount: { percentOff: 9 } },
        { subject: 'Code', html: '<p>{{discount.code}}</p>' },
      ],
    });
    stripe.script.push({ match: 'POST /v1/coupons', status: 400, body: refusal });
    await tag('refused@example.com', 'refused');
    await worker().drain();
    const { row, history } = await sessionOf(stopping);
    expect(row).toMatchObject({ status: 'stopped', end_reason: 'discount_failed:parameter_invalid' });
    expect(history.map((h) => h.outcome)).toEqual(['creating', 'failed']);
    expect(history[1]!.detail).toMatchObject({ provider: 'stripe', code: 'parameter_invalid', reason: expect.stringContaining('This coupon cannot be created.') });
    expect(await emailsOf('refused@example.com')).toEqual([]);

    const going = await enabled({
      name: 'Refused but going on',
      trigger: 'tag_added',
      tagName: 'refused-continue',
      steps: [
        { type: 'create_discount', on_failure: 'continue', discount: { percentOff: 9 } },
        { subject: 'News', html: '<p>Hello</p>' },
      ],
    });
    stripe.script.push({ match: 'POST /v1/coupons', status: 400, body: refusal });
    await tag('going@example.com', 'refused-continue');
    await worker().drain();
    expect((await sessionOf(going)).row).toMatchObject({ status: 'completed' });
    expect(await emailsOf('going@example.com')).toHaveLength(1);
  });

  it('fails the step (not the worker) when the provider was disconnected after the sequence was enabled, and marks refused credentials', async () => {
    const id = await enabled({
      name: 'Disconnected later',
      trigger: 'tag_added',
      tagName: 'later',
      steps: [{ type: 'create_discount', discount: { provider: 'shopify', percentOff: 5 } }, { subject: 'Code', html: '<p>{{discount.code}}</p>' }],
    });
    expect((await t.app.inject({ method: 'DELETE', url: '/api/v1/settings/integrations/shopify', headers: t.auth })).json()).toMatchObject({ connected: false, status: 'not_connected' });
    await tag('later@example.com', 'later');
    await worker().drain();
    const { row, history } = await sessionOf(id);
    expect(row).toMatchObject({ status: 'stopped', end_reason: 'discount_failed:provider_not_connected' });
    expect(history.at(-1)!.detail).toMatchObject({ code: 'provider_not_connected' });
    // Reconnected with a token Shopify refuses: the step fails and the integration shows why.
    const wrong = await put('/api/v1/settings/integrations/shopify', { shop_domain: 'nudge-test', access_token: 'shpat_revoked000000', base_url: shopify.baseUrl });
    expect(wrong.json()).toMatchObject({ status: 'error', connected: true, config: { shop_domain: 'nudge-test.myshopify.com', api_version: '2024-10' } });
    expect((await post(`/api/v1/sequences/${id}/enable`, {})).json()).toMatchObject({ code: 'provider_not_connected', provider: 'shopify' });
    const fixed = await put('/api/v1/settings/integrations/shopify', { shop_domain: 'nudge-test.myshopify.com', access_token: accessToken, base_url: shopify.baseUrl });
    expect(fixed.json().status).toBe('ok');
  });

  it('lists the codes newest first, page by page, filtered by sequence and contact', async () => {
    const first = await get('/api/v1/discounts?limit=2');
    expect(first.statusCode, first.body).toBe(200);
    expect(first.json().data).toHaveLength(2);
    const next = await get(`/api/v1/discounts?limit=2&cursor=${first.json().nextCursor as string}`);
    expect(next.json().data[0].id < first.json().data[1].id).toBe(true);
    const all = (await get('/api/v1/discounts?limit=200')).json().data as Array<{ id: string; provider: string; sequenceId: string; contactId: string }>;
    expect(all.map((d) => d.id)).toEqual([...all.map((d) => d.id)].sort().reverse());
    expect(new Set(all.map((d) => d.provider))).toEqual(new Set(['stripe', 'shopify', 'builtin']));
    const one = all.find((d) => d.provider === 'shopify')!;
    expect((await get(`/api/v1/discounts?sequenceId=${one.sequenceId}`)).json().data.map((d: { id: string }) => d.id)).toEqual([one.id]);
    expect((await get(`/api/v1/discounts?contactId=${one.contactId}&provider=shopify`)).json().data.map((d: { id: string }) => d.id)).toEqual([one.id]);
  });
});
