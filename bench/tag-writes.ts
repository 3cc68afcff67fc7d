/**
 * The add-tag service path on SQLite under a steady stream of writes, and the size the
 * WAL reaches meanwhile (see src/store/sqlite-checkpointer.ts).
 *
 * BENCH_TAGGED contacts (default 10,000) and as many more are enrolled in a sequence
 * whose stop condition is the tag `customer`; then each of the first BENCH_TAGGED is
 * tagged, one `addTag` call after another (each stops a session), as the API does per
 * request. Prints µs per call with its percentiles, and the -wal file's largest size.
 * BENCH_WAL_RESTART_MB sets the WAL size past which it starts over (default 256; a
 * huge value shows the WAL left to grow).
 *
 *   npm run build && node dist/bench/tag-writes.js
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { addTag } from '../src/engine/contact-service.js';
import { triggerDefinition } from '../src/engine/enrollment-service.js';
import { LocalWaker } from '../src/engine/waker.js';
import { openDatabase } from '../src/store/database.js';
import { migrateToLatest } from '../src/store/migrate.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { benchContext } from './engine-bench.js';
import { stoppableSequence } from './stop-bench.js';

const tagged = Number(process.env.BENCH_TAGGED ?? 10_000);
const restartMb = Number(process.env.BENCH_WAL_RESTART_MB ?? 256);

const dir = mkdtempSync(join(tmpdir(), 'nudge-bench-'));
const database = openDatabase({ databaseUrl: null, dataDir: dir, backgroundCheckpoints: true, walRestartBytes: restartMb * 1024 * 1024 });
const wal = join(dir, 'nudge.sqlite-wal');
let largest = 0;
const sampler = setInterval(() => {
  try {
    largest = Math.max(largest, statSync(wal).size);
  } catch {
    // No WAL yet.
  }
}, 50);
try {
  await migrateToLatest(database.db);
  const ctx = benchContext(database, new LocalWaker());
  const { workspaceId, sequence } = await stoppableSequence(ctx);
  const phone = (i: number) => `+1415${String(5_000_000 + i).padStart(7, '0')}`;
  for (let i = 0; i < 2 * tagged; i += 1) {
    await triggerDefinition(ctx, ctx.versions, workspaceId, 'sequence', { definitionId: sequence.id, phone: phone(i), context: { first_name: `Contact ${i}` } });
  }
  const latencies: number[] = [];
  const started = performance.now();
  for (let i = 0; i < tagged; i += 1) {
    const at = performance.now();
    await addTag(ctx, workspaceId, { phone: phone(i), tag: 'customer' });
    latencies.push(performance.now() - at);
  }
  const perCall = ((performance.now() - started) * 1000) / tagged;
  latencies.sort((a, b) => a - b);
  const at = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((latencies.length * p) / 100))]!.toFixed(2);
  const stopped = database.sqlite!.prepare(`select count(*) as n from sessions where status = 'stopped'`).get() as { n: number };
  if (stopped.n !== tagged) throw new Error(`expected ${tagged} stopped sessions, found ${stopped.n}`);
  console.log(
    `addTag: ${perCall.toFixed(1)} µs per call; p50 ${at(50)} ms, p99 ${at(99)} ms, p99.9 ${at(99.9)} ms, max ${latencies[latencies.length - 1]!.toFixed(1)} ms; ` +
      `largest WAL ${(largest / 1e6).toFixed(0)} MB (restart past ${restartMb} MB); database ${(statSync(join(dir, 'nudge.sqlite')).size / 1e6).toFixed(0)} MB; ${stopped.n} sessions stopped`,
  );
} finally {
  clearInterval(sampler);
  await database.close();
  rmSync(dir, { recursive: true, force: true });
}
