import { Worker } from 'node:worker_threads';

/**
 * WAL checkpoints on a thread of their own.
 *
 * In WAL mode every commit appends to the -wal file, and a checkpoint copies those
 * pages back into the database file and syncs it. SQLite runs the checkpoint inside
 * the commit that crosses `wal_autocheckpoint`, so one commit in a few hundred waited
 * for a full copy and an fsync: on the scheduler's thread, that stalled every batch
 * behind it (the drip measured 13.5k → 15.8k steps/s with checkpoints out of the way).
 * Here the writing connection never checkpoints (`wal_autocheckpoint = 0`); a second
 * connection on a worker thread runs PASSIVE checkpoints, which never block writers
 * and readers, so the copy and the sync overlap the scheduler's work on the other core.
 *
 * A PASSIVE checkpoint alone never lets the WAL start over under steady writes. SQLite
 * rewinds the -wal file only when a write transaction begins after every frame in it
 * has been copied back, and a checkpoint running beside a busy writer ends a few
 * commits behind. The file then grew without end: 1.6 GB after 30,000 API writes to a
 * 30 MB database, and commits slowed as it grew (`node dist/bench/tag-writes.js`:
 * 283 to 401 µs per add-tag against 249 to 259 µs with the WAL kept small). A RESTART checkpoint from
 * this thread does not help: it must take the write lock, and the writer takes it back
 * within microseconds of each commit while this thread's busy handler sleeps, so it
 * starves. So when a pass leaves more than `walRestartBytes` in the WAL, the thread
 * raises a flag shared with the writing connection, and that connection, right after
 * its next commit, runs the RESTART itself (`restartIfAsked`): it copies the frames the
 * passive pass had not reached, syncs the database file, and its next commit writes
 * the WAL from the start. RESTART rather than TRUNCATE: the file keeps its blocks,
 * which the commits after it overwrite instead of extending the file again
 * (`journal_size_limit`, set on the writing connection, trims what a burst left beyond
 * the limit).
 *
 * Several processes on one file (`nudge api` beside `nudge worker`) each run one; SQLite
 * serialises checkpoints itself. Durability does not change: a commit is durable once in
 * the WAL (synchronous = NORMAL syncs the WAL at checkpoints), whoever checkpoints it.
 */
const workerSource = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file);
db.pragma('busy_timeout = 5000');
const pageSize = db.pragma('page_size', { simple: true });
const restartWanted = new Int32Array(workerData.restartWanted);
let stopping = false;
function pass() {
  try {
    const [result] = db.pragma('wal_checkpoint(PASSIVE)');
    if (result && result.log * pageSize > workerData.walRestartBytes) Atomics.store(restartWanted, 0, 1);
  } catch (error) {
    // A busy or locked database is checkpointed on the next pass.
  }
}
const timer = setInterval(pass, workerData.intervalMs);
parentPort.on('message', (message) => {
  if (message !== 'stop' || stopping) return;
  stopping = true;
  clearInterval(timer);
  try { db.pragma('wal_checkpoint(TRUNCATE)'); } catch (error) { /* the next start checkpoints */ }
  db.close();
  parentPort.postMessage('stopped');
});
`;

export interface Checkpointer {
  stop(): Promise<void>;
  /** For the writing connection, after a commit: runs the RESTART checkpoint the thread asked for, if it did. */
  restartIfAsked(connection: { pragma(source: string, options?: { simple: boolean }): unknown }): void;
}

export interface CheckpointerOptions {
  /** Milliseconds between passes. */
  intervalMs?: number;
  /** The WAL size (bytes, counted in frames of one page) past which a passive pass is followed by a RESTART. */
  walRestartBytes?: number;
}

export function startCheckpointer(file: string, driverPath: string, options: CheckpointerOptions = {}): Checkpointer {
  const restartWanted = new Int32Array(new SharedArrayBuffer(4));
  const workerData = { file, driver: driverPath, intervalMs: options.intervalMs ?? 250, walRestartBytes: options.walRestartBytes ?? 256 * 1024 * 1024, restartWanted: restartWanted.buffer };
  const worker = new Worker(workerSource, { eval: true, workerData });
  worker.unref();
  let stopped: Promise<void> | null = null;
  return {
    restartIfAsked(connection) {
      if (Atomics.exchange(restartWanted, 0, 0) === 0) return;
      // A RESTART waits for readers of the WAL, such as another process's long query: at
      // most 50 ms here, on the thread that serves requests, after which it checkpoints
      // what it can without waiting and the thread asks again after its next pass.
      const busyTimeout = connection.pragma('busy_timeout', { simple: true });
      connection.pragma('busy_timeout = 50');
      try {
        connection.pragma('wal_checkpoint(RESTART)');
      } catch {
        // Locked in some other way: the same, on the next pass.
      } finally {
        connection.pragma(`busy_timeout = ${Number(busyTimeout)}`);
      }
    },
    stop() {
      stopped ??= new Promise<void>((resolve) => {
        const done = () => resolve();
        worker.once('exit', done);
        worker.once('message', () => void worker.terminate().then(done, done));
        worker.postMessage('stop');
        // A thread that cannot answer (it should) is ended anyway.
        setTimeout(() => void worker.terminate().then(done, done), 5000).unref();
      });
      return stopped;
    },
  };
}
