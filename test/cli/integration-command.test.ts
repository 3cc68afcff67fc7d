import { describe, expect, it } from 'vitest';
import { createWorkspace } from '../../src/engine/auth-service.js';
import { getIntegrationCredentials } from '../../src/engine/integration-service.js';
import { createTestContext } from '../support/app.js';
import { dialects } from '../support/databases.js';
import { startFakeStripe } from '../support/fake-stripe.js';
import { startNudge } from '../support/processes.js';

const secretKey = 'sk_test_51NudgeCli00000000000000000000wxyz';

async function nudge(args: string[], env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const run = startNudge(args, env);
  const code = await run.exited;
  return { code, output: run.output.join('') };
}

describe.each(dialects)('nudge integration on %s', (dialect) => {
  it('connects Stripe after checking the key with it, lists it without the secret, names a bad field and disconnects', async () => {
    const ctx = await createTestContext(dialect);
    const stripe = await startFakeStripe(secretKey);
    try {
      const ws = await createWorkspace(ctx, 'Cli');
      const env = {
        NUDGE_SECRET_KEY: ctx.secretKey,
        NUDGE_DATA_DIR: ctx.database.dataDir,
        ...(ctx.database.databaseUrl ? { DATABASE_URL: ctx.database.databaseUrl } : {}),
      };
      const set = await nudge(['integration', 'set', 'stripe', '--secret-key', secretKey, '--base-url', stripe.baseUrl, '--workspace', ws.id], env);
      expect(set.code, set.output).toBe(0);
      expect(set.output).toMatch(/^stripe\tok\tbase_url=http:\/\/127\.0\.0\.1:\d+ secret_key_set=true$/m);
      expect(set.output).not.toContain(secretKey);
      expect(stripe.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['GET /v1/coupons']);
      expect((await getIntegrationCredentials(ctx, ws.id, 'stripe'))?.settings).toMatchObject({ secretKey, baseUrl: stripe.baseUrl });

      const list = await nudge(['integration', 'list', '--workspace', ws.id], env);
      expect(list.code, list.output).toBe(0);
      expect(list.output).toMatch(/^shopify\tnot_connected\taccess_token_set=false$/m);
      expect(list.output).not.toContain(secretKey);

      const bad = await nudge(['integration', 'set', 'shopify', '--shop-domain', 'shop.example.com', '--workspace', ws.id], env);
      expect(bad.code).toBe(2);
      expect(bad.output).toContain('shop_domain must be the shop’s myshopify.com domain');
      expect(bad.output).toContain('access_token is required');

      const removed = await nudge(['integration', 'remove', 'stripe', '--workspace', ws.id], env);
      expect(removed.code, removed.output).toBe(0);
      expect(await getIntegrationCredentials(ctx, ws.id, 'stripe')).toBeNull();
    } finally {
      await stripe.close();
      await ctx.database.close();
    }
  });
});
