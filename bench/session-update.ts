/**
 * The cost of the scheduler's session update on SQLite at scale, with and without
 * `active` in the SET list (see saveSessions in src/store/session-repository.ts).
 *
 * A table of BENCH_SESSIONS sessions (default 1,000,000) of contacts created over a year,
 * then rounds that update the same BENCH_UPDATED random sessions (default 50,000) in
 * transactions of 500, alternating the two statements, the way due sessions are spread
 * over the table in a real installation. Prints µs per update for each round.
 *
 *   npm run build && node dist/bench/session-update.js
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newId } from '../src/domain/ids.js';
import { openDatabase } from '../src/store/database.js';
import { migrateToLatest } from '../src/store/migrate.js';

const sessions = Number(process.env.BENCH_SESSIONS ?? 1_000_000);
const updated = Number(process.env.BENCH_UPDATED ?? 50_000);
const rounds = 4;

const dataDir = mkdtempSync(join(tmpdir(), 'nudge-bench-update-'));
const database = openDatabase({ databaseUrl: null, dataDir });
try {
  await migrateToLatest(database.db);
  const raw = database.sqlite!;
  const now = Date.now();
  const definitionId = newId();
  const workspaceId = newId();
  const ids: string[] = [];
  const insert = raw.prepare(
    `insert into sessions (id, workspace_id, definition_id, version_id, kind, contact_id, status, active, current_node, wake_at, state, steps_run, created_at, updated_at)
     values (?, ?, ?, 'v', 'sequence', ?, 'running', 1, 'step-1', ?, '{"visits":{"step-1":1}}', 1, ?, ?)`,
  );
  raw.transaction(() => {
    for (let i = 0; i < sessions; i++) {
      const id = newId(now - sessions + i);
      ids.push(id);
      insert.run(id, workspaceId, definitionId, newId(now - Math.floor(Math.random() * 365 * 86_400_000)), now + 86_400_000 + i, now, now);
    }
  })();
  const picked = Array.from({ length: updated }, () => ids[Math.floor(Math.random() * ids.length)]!);
  const withActive = raw.prepare('update sessions set status = ?, active = ?, current_node = ?, wake_at = ?, state = ?, end_reason = ?, steps_run = ?, updated_at = ?, ended_at = ? where id = ?');
  const withoutActive = raw.prepare('update sessions set status = ?, current_node = ?, wake_at = ?, state = ?, end_reason = ?, steps_run = ?, updated_at = ?, ended_at = ? where id = ? and active = 1');
  const time = (run: (id: string, i: number) => void): number => {
    const start = process.hrtime.bigint();
    for (let k = 0; k < picked.length; k += 500) {
      raw.transaction(() => {
        for (let i = k; i < Math.min(k + 500, picked.length); i++) run(picked[i]!, i);
      })();
    }
    return Number(process.hrtime.bigint() - start) / picked.length / 1000;
  };
  console.log(`${sessions} sessions, ${updated} random ones updated per round, transactions of 500`);
  for (let round = 1; round <= rounds; round++) {
    const a = time((id, i) => withActive.run('running', 1, 'step-2', now + 2 * 86_400_000 + i, '{"visits":{"step-1":1,"step-2":1}}', null, 2, now + round, null, id));
    const b = time((id, i) => withoutActive.run('running', 'step-3', now + 3 * 86_400_000 + i, '{"visits":{"step-1":1,"step-2":1,"step-3":1}}', null, 3, now + round, null, id));
    console.log(`round ${round}: with active ${a.toFixed(2)} µs per update, without ${b.toFixed(2)} µs`);
  }
} finally {
  await database.close();
  rmSync(dataDir, { recursive: true, force: true });
}
