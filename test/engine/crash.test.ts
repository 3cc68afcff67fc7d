import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { createWorkspace } from '../../src/engine/auth-service.js';
import { createDefinition, publishDefinition } from '../../src/engine/definition-service.js';
import { triggerDefinition } from '../../src/engine/enrollment-service.js';
import { createTestContext, type TestContext } from '../support/app.js';
import { dialects } from '../support/databases.js';
import { kill9, sleep, startNudge, type NudgeProcess } from '../support/processes.js';

/**
 * Crash safety, proven with real processes: a few thousand contacts run a three-step
 * sequence while workers are killed with SIGKILL at random instants and restarted.
 * Afterwards every contact has received every step exactly once.
 */
const contacts = Number(process.env.NUDGE_CRASH_CONTACTS ?? 2000);
const kills = Number(process.env.NUDGE_CRASH_KILLS ?? 6);

// The sandbox is run through the dispatcher (as a remote provider would be: claim, lease,
// send, record) on both engines, and inline on SQLite as well.
const cases = dialects.flatMap((dialect) => (dialect === 'sqlite' ? [[dialect, 'dispatch'], [dialect, 'inline']] : [[dialect, 'dispatch']]) as Array<[typeof dialect, string]>);

describe.each(cases)('kill -9 during a run on %s, sandbox delivery %s', (dialect, delivery) => {
  let ctx: TestContext;
  let workspaceId: string;
  let sequenceId: string;
  const processes: NudgeProcess[] = [];

  beforeAll(async () => {
    ctx = await createTestContext(dialect);
    workspaceId = (await createWorkspace(ctx, 'Crash')).id;
    const created = await createDefinition(ctx, workspaceId, 'sequence', {
      name: 'Three steps',
      steps: [
        { type: 'sms', text: 'One for {{context.n}}' },
        { type: 'sms', delay: { seconds: 1 }, text: 'Two for {{context.n}}' },
        { type: 'sms', delay: { seconds: 1 }, text: 'Three for {{context.n}}' },
      ],
    });
    sequenceId = created.id;
    await publishDefinition(ctx, workspaceId, 'sequence', sequenceId);
  });

  afterAll(async () => {
    for (const p of processes) if (p.child.exitCode === null) await kill9(p);
    await ctx.database.close();
  });

  it('loses and duplicates nothing', async () => {
    const env: Record<string, string> = {
      NUDGE_DATA_DIR: ctx.database.dataDir,
      NUDGE_DISPATCH_LEASE_MS: '1500',
      NUDGE_SANDBOX_DELIVERY: delivery,
      NUDGE_WORKER_BATCH_SIZE: '200',
      NUDGE_POLL_INTERVAL_MS: '100',
      NUDGE_SECRET_KEY: 'crash-test-secret-key-0123456789abcdef',
      ...(ctx.database.databaseUrl ? { DATABASE_URL: ctx.database.databaseUrl } : {}),
    };
    // Enroll while the workers run, so kills land during enrollment, advancing and dispatch alike.
    const spawnWorker = () => {
      const p = startNudge(['worker'], env);
      processes.push(p);
      return p;
    };
    let victim = spawnWorker();
    // On PostgreSQL a second worker runs throughout: two workers cooperate, one of them is killed.
    if (dialect === 'postgres') spawnWorker();

    const enrolling = (async () => {
      for (let i = 0; i < contacts; i += 50) {
        await Promise.all(
          Array.from({ length: Math.min(50, contacts - i) }, (_, j) =>
            triggerDefinition(ctx, ctx.versions, workspaceId, 'sequence', {
              definitionId: sequenceId,
              phone: `+1415555${String(i + j).padStart(4, '0')}`,
              context: { n: i + j },
            }),
          ),
        );
      }
    })();

    for (let k = 0; k < kills; k += 1) {
      await sleep(300 + Math.floor(Math.random() * 1200));
      await kill9(victim);
      victim = spawnWorker();
    }
    await enrolling;

    const deadline = Date.now() + 90_000;
    const db = ctx.database.db;
    for (;;) {
      const open = await db.selectFrom('sessions').select((eb) => eb.fn.countAll<number>().as('n')).where('definition_id', '=', sequenceId).where('active', '=', 1).executeTakeFirstOrThrow();
      const pending = await db.selectFrom('messages').select((eb) => eb.fn.countAll<number>().as('n')).where('status', 'in', ['queued', 'sending']).executeTakeFirstOrThrow();
      if (Number(open.n) === 0 && Number(pending.n) === 0) break;
      if (Date.now() > deadline) throw new Error(`run did not finish: ${open.n} sessions open, ${pending.n} messages pending\n${victim.output.join('')}`);
      await sleep(250);
    }

    const sessions = await db.selectFrom('sessions').select(['id', 'status']).where('definition_id', '=', sequenceId).execute();
    expect(sessions).toHaveLength(contacts);
    expect(sessions.every((s) => s.status === 'completed')).toBe(true);

    const perSession = await sql<{ session_id: string; n: number | string; delivered: number | string; texts: number | string }>`
      select session_id, count(*) as n, sum(case when status = 'delivered' then 1 else 0 end) as delivered, count(distinct node_id) as texts
      from messages where definition_id = ${sequenceId} group by session_id`.execute(db);
    expect(perSession.rows).toHaveLength(contacts);
    const wrong = perSession.rows.filter((r) => Number(r.n) !== 3 || Number(r.delivered) !== 3 || Number(r.texts) !== 3);
    expect(wrong).toEqual([]);

    // Each message carries its own contact's value: nothing was rendered for the wrong session.
    const sample = await db.selectFrom('messages').innerJoin('sessions', 'sessions.id', 'messages.session_id').select(['messages.content', 'sessions.context']).where('messages.definition_id', '=', sequenceId).limit(200).execute();
    for (const row of sample) expect(JSON.parse(row.content).text).toMatch(new RegExp(`for ${JSON.parse(row.context).n}$`));
  }, 180_000);
});
