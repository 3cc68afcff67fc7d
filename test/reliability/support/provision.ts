import { buildApp } from '../../../src/api/app.js';
import { createToken, createWorkspace } from '../../../src/engine/auth-service.js';
import { setProviderSettings } from '../../../src/engine/provider-settings-service.js';
import type { TestContext } from '../../support/app.js';
import type { CountingMeta } from './counting-meta.js';

export const templateName = 'reliability_step';

export interface Provisioned {
  workspaceId: string;
  token: string;
  sequenceId: string;
  /** What the fake counts for step `s` (1-based) sent to contact number `n`. */
  expectedText: (s: number, n: number) => string;
  steps: number;
}

/**
 * A workspace whose WhatsApp channel is the fake Meta, as a user would set it up
 * through the API: the channel settings, a template submitted to Meta and approved by
 * its review webhook, and a published sequence of `steps` template messages (the first
 * at once, then one every `delaySeconds`). Templates may be sent outside the 24-hour
 * window, so every enrolled contact can receive every step.
 */
export async function provisionWhatsAppSequence(ctx: TestContext, fake: CountingMeta, options: { steps: number; delaySeconds: number; name?: string }): Promise<Provisioned> {
  const workspace = await createWorkspace(ctx, options.name ?? 'Reliability');
  const token = await createToken(ctx, { workspaceId: workspace.id, name: 'reliability', rateLimit: 10_000_000 });
  await setProviderSettings(ctx, workspace.id, 'whatsapp', fake.settings());
  const app = await buildApp(ctx);
  await app.ready();
  try {
    const auth = { authorization: `Bearer ${token.token}` };
    const template = await app.inject({
      method: 'POST',
      url: '/api/v1/templates',
      headers: auth,
      payload: { name: templateName, language: 'en_US', category: 'UTILITY', body: 'Step {{1}} for contact {{2}}', examples: { '1': '1', '2': '7' } },
    });
    if (template.statusCode !== 201) throw new Error(`template: ${template.statusCode} ${template.body}`);
    const review = fake.templateReview(templateName, 'APPROVED');
    const reviewed = await app.inject({ method: 'POST', url: '/webhooks/whatsapp', headers: review.headers, payload: review.raw });
    if (reviewed.statusCode !== 200) throw new Error(`template review: ${reviewed.statusCode} ${reviewed.body}`);
    const approved = await app.inject({ method: 'GET', url: `/api/v1/templates/${template.json().id}`, headers: auth });
    if (approved.json().status !== 'APPROVED') throw new Error(`template not approved: ${approved.body}`);

    const steps = Array.from({ length: options.steps }, (_, i) => ({
      type: 'whatsapp',
      ...(i > 0 ? { delay: { seconds: options.delaySeconds } } : {}),
      template: { name: templateName, language: 'en_US', variables: { '1': String(i + 1), '2': '{{context.n}}' } },
    }));
    const created = await app.inject({ method: 'POST', url: '/api/v1/sequences', headers: auth, payload: { name: 'Drip', steps } });
    if (created.statusCode !== 201) throw new Error(`sequence: ${created.statusCode} ${created.body}`);
    const sequenceId = created.json().sequence.id as string;
    const published = await app.inject({ method: 'POST', url: `/api/v1/sequences/${sequenceId}/publish`, headers: auth });
    if (published.statusCode !== 200) throw new Error(`publish: ${published.statusCode} ${published.body}`);
    return { workspaceId: workspace.id, token: token.token, sequenceId, steps: options.steps, expectedText: (s, n) => `template:${templateName}:${s}|${n}` };
  } finally {
    await app.close();
  }
}
