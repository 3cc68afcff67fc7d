import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWorkspace } from '../../src/engine/auth-service.js';
import { createDefinition, publishDefinition } from '../../src/engine/definition-service.js';
import { triggerDefinition } from '../../src/engine/enrollment-service.js';
import { WakeRelay } from '../../src/engine/waker.js';
import { createTestContext, type TestContext } from '../support/app.js';
import { dialects } from '../support/databases.js';
import { kill9, sleep, startNudge, type NudgeProcess } from '../support/processes.js';

/**
 * On PostgreSQL an enrollment made by one process wakes the workers of another at once
 * through NOTIFY: the worker here polls only once a minute, so only the wake-up can
 * explain a message sent within seconds.
 */
describe.each(dialects.filter((d) => d === 'postgres'))('wake-ups across processes on %s', (dialect) => {
  let ctx: TestContext;
  let worker: NudgeProcess | null = null;
  beforeAll(async () => {
    const base = await createTestContext(dialect);
    ctx = { ...base, wake: new WakeRelay(null, base.database, base.log) };
  });
  afterAll(async () => {
    if (worker) await kill9(worker);
    await ctx.database.close();
  });

  it('starts an enrollment made elsewhere at once, long before the next poll', async () => {
    const workspaceId = (await createWorkspace(ctx, 'Wake')).id;
    const sequence = await createDefinition(ctx, workspaceId, 'sequence', { name: 'Now', steps: [{ type: 'sms', text: 'right away' }] });
    await publishDefinition(ctx, workspaceId, 'sequence', sequence.id);
    worker = startNudge(['worker'], {
      DATABASE_URL: ctx.database.databaseUrl!,
      NUDGE_POLL_INTERVAL_MS: '60000',
      NUDGE_SECRET_KEY: 'wake-test-secret-key-0123456789abcdef',
      LOG_LEVEL: 'info',
    });
    const ready = Date.now() + 20_000;
    while (!worker.output.join('').includes('Nudge worker running')) {
      if (Date.now() > ready) throw new Error(`worker did not start:\n${worker.output.join('')}`);
      await sleep(100);
    }
    // Let the worker finish its first look for work and go to sleep for its long poll.
    await sleep(1000);
    const started = Date.now();
    const outcome = await triggerDefinition(ctx, ctx.versions, workspaceId, 'sequence', { definitionId: sequence.id, phone: '+14155550701' });
    for (;;) {
      const message = await ctx.database.db.selectFrom('messages').select(['status']).where('session_id', '=', outcome.sessionId).executeTakeFirst();
      if (message?.status === 'delivered') break;
      // Well under the 60 s poll, so only a wake-up can explain it, with room for a loaded machine.
      if (Date.now() - started > 15_000) throw new Error('the worker was not woken: nothing sent within 15 s');
      await sleep(50);
    }
    expect(Date.now() - started).toBeLessThan(15_000);
  }, 40_000);
});
