import type { App } from '../../../src/api/app.js';
import { unsubscribeUrlFor } from '../../../src/domain/unsubscribe-token.js';
import type { TestContext } from '../../support/app.js';
import { createTestWorker } from '../../support/engine.js';

/**
 * One of every resource in a workspace, made through the API, with values that carry a
 * marker (`Zq7` + a name) so another workspace's answers can be searched for them.
 * `ids` maps the collection a path parameter names (the segment before it:
 * `sequences` for `/sequences/{id}`) to this workspace's value for it; a route whose
 * collection has no entry here fails the isolation suite until one is added.
 */
export interface Fixture {
  ids: Record<string, string>;
  /** Strings that only this workspace's data contains: ids, names, phones, emails. */
  markers: string[];
}

/** Path parameters that name a kind of thing rather than a record: every workspace has them. */
export const sharedPathValues: Record<string, string[]> = {
  channels: ['whatsapp', 'sms', 'email'],
  integrations: ['stripe', 'shopify'],
};

/** The SMS credentials a fixture workspace is given (a fake Twilio started with them accepts its sends). */
export function fixtureSmsCredentials(marker: string): { accountSid: string; authToken: string; from: string } {
  return { accountSid: `AC${'7'.repeat(32)}`, authToken: `${marker}-auth-token-0123456789`, from: marker === 'Zq7Alpha' ? '+14155558001' : '+14155558002' };
}

export async function populateWorkspace(ctx: TestContext, app: App, token: string, marker: string, options: { smsBaseUrl?: string } = {}): Promise<Fixture> {
  const headers = { authorization: `Bearer ${token}` };
  const call = async (method: 'POST' | 'PUT' | 'GET', url: string, payload?: unknown, expected = [200, 201]) => {
    const res = await app.inject({ method, url, headers, ...(payload !== undefined ? { payload: payload as object } : {}) });
    if (!expected.includes(res.statusCode)) throw new Error(`${method} ${url}: ${res.statusCode} ${res.body}`);
    return res.json();
  };
  const tag = marker.toLowerCase();
  const phone = marker === 'Zq7Alpha' ? '+14155557001' : '+14155557002';
  const email = `${tag}@example.com`;
  const subscriberEmail = `${tag}.subscriber@example.com`;

  const contact = await call('POST', '/api/v1/actions/create-contact', { phone, email, name: `${marker} Person`, tags: [`${tag}-tag`], metadata: { secret: `${marker}-metadata` } });
  const template = await call('POST', '/api/v1/templates', { name: `${tag}_template`, language: 'en_US', category: 'UTILITY', body: `${marker} template {{1}}`, examples: { '1': 'x' } });
  const sequence = (await call('POST', '/api/v1/sequences', { name: `${marker} sequence`, steps: [{ type: 'sms', text: `${marker} first` }, { type: 'sms', delay: { days: 1 }, text: `${marker} second` }] })).sequence;
  await call('POST', `/api/v1/sequences/${sequence.id}/publish`, {});
  const flow = (await call('POST', '/api/v1/flows', { name: `${marker} flow`, steps: [{ type: 'sms', text: `${marker} flow says hi` }] })).flow;
  await call('POST', `/api/v1/flows/${flow.id}/publish`, {});
  const session = await call('POST', '/api/v1/actions/trigger-sequence', { sequence_id: sequence.id, contact_id: contact.id, context: { secret: `${marker}-context` } });
  const subscriber = (await call('POST', '/api/v1/subscribers', { email: subscriberEmail, firstName: `${marker}First`, tags: [`${tag}-subscriber-tag`], customAttributes: { plan: `${marker}-plan` } })).subscriber;
  const list = (await call('POST', '/api/v1/lists', { name: `${marker} list` })).list;
  await call('POST', `/api/v1/lists/${list.id}/subscribers`, { emails: [subscriberEmail] });
  const segment = (await call('POST', '/api/v1/segments', { name: `${marker} segment`, filter: { match: 'all', conditions: [{ type: 'tag', operator: 'has', tag: `${tag}-subscriber-tag` }] } })).segment;
  await call('POST', '/api/v1/subscribers/events', { email: subscriberEmail, event: `${tag}.event`, properties: { secret: `${marker}-event` } });
  const sms = fixtureSmsCredentials(marker);
  // Without a fake Twilio, a port nothing listens on: sends fail at once, never reach anyone.
  await call('PUT', '/api/v1/settings/channels/sms', { account_sid: sms.accountSid, auth_token: sms.authToken, from: sms.from, base_url: options.smsBaseUrl ?? 'http://127.0.0.1:2' });
  await call('PUT', '/api/v1/settings/consent', { opt_out_keywords: [`${marker.toUpperCase()}STOP`], opt_in_keywords: [`${marker.toUpperCase()}START`] });
  const emailTemplate = (await call('POST', '/api/v1/email-templates', { name: `${marker} email template`, subject: `${marker} subject`, html: `<p>${marker} email body</p>` })).template;
  const broadcast = await call('POST', '/api/v1/broadcasts', { name: `${marker} broadcast`, template_id: template.id, variables: { '1': `${marker}-broadcast` }, audience: { contact_ids: [contact.id] } });
  // Nothing listens on port 9: a delivery attempt fails at once and reaches nobody.
  const webhook = await call('POST', '/api/v1/webhooks', { url: `http://127.0.0.1:2/${tag}-hooks`, events: ['message.received'], description: `${marker} webhook` });
  const deliveries = await call('GET', `/api/v1/webhooks/${webhook.id}/deliveries`);
  const discountSequence = (await call('POST', '/api/v1/sequences', { name: `${marker} discount sequence`, steps: [{ type: 'create_discount', discount: { provider: 'builtin', percentOff: 10, codePrefix: tag.slice(0, 8) } }, { type: 'sms', text: `${marker} code {{discount.code}}` }] })).sequence;
  await call('POST', `/api/v1/sequences/${discountSequence.id}/publish`, {});
  await call('POST', '/api/v1/actions/trigger-sequence', { sequence_id: discountSequence.id, contact_id: contact.id });
  // The sessions' first steps run: the discount is made, and messages are sent (to a
  // provider that is not there: they stay queued or fail), so messages exist.
  await createTestWorker(ctx).runSchedulerOnce();
  await createTestWorker(ctx).runSchedulerOnce();
  const discounts = await call('GET', '/api/v1/discounts');
  const discount = (discounts.data as Array<{ code: string }>)[0];
  if (!discount) throw new Error(`no discount was made for ${marker}: ${JSON.stringify(discounts)}`);

  const ids: Record<string, string> = {
    sequences: sequence.id,
    flows: flow.id,
    contacts: contact.id,
    sessions: session.id,
    templates: template.id,
    lists: list.id,
    segments: segment.id,
    subscribers: subscriberEmail,
    'subscriber-ids': subscriber.id as string,
    'email-templates': emailTemplate.id,
    broadcasts: broadcast.id,
    webhooks: webhook.id,
    deliveries: (deliveries.data as Array<{ id: string }>)[0]!.id,
    discounts: discount.code,
    unsubscribe: unsubscribeUrlFor('http://x', ctx.secretKey, contact.workspace_id ?? (await workspaceOf(ctx, contact.id)), contact.id).split('/').pop()!,
  };
  const markers = [marker, ...Object.values(ids).filter((v) => v.length >= 8), phone, email, subscriberEmail, subscriber.id as string];
  return { ids, markers: [...new Set(markers)] };
}

async function workspaceOf(ctx: TestContext, contactId: string): Promise<string> {
  const row = await ctx.database.db.selectFrom('contacts').select('workspace_id').where('id', '=', contactId).executeTakeFirstOrThrow();
  return row.workspace_id;
}
