import { describe, expect, it } from 'vitest';
import { getProviderSettings } from '../../src/engine/provider-settings-service.js';
import { createWorkspace } from '../../src/engine/auth-service.js';
import { createTestContext } from '../support/app.js';
import { dialects } from '../support/databases.js';
import { startNudge } from '../support/processes.js';

/** `nudge channel …` from source, against the test's database, with the test's secret key. */
async function nudge(args: string[], env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const run = startNudge(args, env);
  const code = await run.exited;
  return { code, output: run.output.join('') };
}

describe.each(dialects)('nudge channel on %s', (dialect) => {
  it('sets, lists and removes a channel, never printing a secret, and names a bad field', async () => {
    const ctx = await createTestContext(dialect);
    try {
      const ws = await createWorkspace(ctx, 'Cli');
      const env = {
        NUDGE_SECRET_KEY: ctx.secretKey,
        NUDGE_DATA_DIR: ctx.database.dataDir,
        ...(ctx.database.databaseUrl ? { DATABASE_URL: ctx.database.databaseUrl } : {}),
      };
      const set = await nudge(['channel', 'set', 'whatsapp', '--phone-number-id', '106540352242922', '--access-token', 'EAAG-cli-secret', '--workspace', ws.id], env);
      expect(set.code, set.output).toBe(0);
      expect(set.output).toContain('whatsapp-cloud');
      expect(set.output).toContain('access_token_set=true');
      expect(set.output).not.toContain('EAAG-cli-secret');
      expect((await getProviderSettings(ctx, ws.id, 'whatsapp'))?.secrets.access_token).toBe('EAAG-cli-secret');

      const list = await nudge(['channel', 'list', '--workspace', ws.id], env);
      expect(list.code, list.output).toBe(0);
      expect(list.output).toMatch(/^whatsapp\twhatsapp-cloud\tunverified/m);
      expect(list.output).toMatch(/^sms\tsandbox\tsandbox/m);
      expect(list.output).not.toContain('EAAG-cli-secret');

      const bad = await nudge(['channel', 'set', 'sms', '--account-sid', 'nope', '--auth-token', 'x', '--workspace', ws.id], env);
      expect(bad.code).toBe(2);
      expect(bad.output).toContain('account_sid must be a Twilio Account SID');
      expect(bad.output).toContain('from or messaging_service_sid is required');

      const removed = await nudge(['channel', 'remove', 'whatsapp', '--workspace', ws.id], env);
      expect(removed.code, removed.output).toBe(0);
      expect(await getProviderSettings(ctx, ws.id, 'whatsapp')).toBeNull();
    } finally {
      await ctx.database.close();
    }
  });
});
