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
 * Several processes on one file (`nudge api` beside `nudge worker`) each run one; SQLite
 * serialises checkpoints itself. Durability does not change: a commit is durable once in
 * the WAL (synchronous = NORMAL syncs the WAL at checkpoints), whoever checkpoints it.
 */
const workerSource = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file);
db.pragma('busy_timeout = 5000');
let stopping = false;
function pass() {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
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
}

export function startCheckpointer(file: string, driverPath: string, intervalMs = 250): Checkpointer {
  const worker = new Worker(workerSource, { eval: true, workerData: { file, driver: driverPath, intervalMs } });
  worker.unref();
  let stopped: Promise<void> | null = null;
  return {
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
