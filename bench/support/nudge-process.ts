import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The secret key every bench process shares, so tokens and secrets made in one work in another. */
export const benchSecretKey = 'bench-secret-key-0123456789abcdef0123';

/** Where a Nudge process keeps its data: a PostgreSQL URL, or a SQLite data folder. */
export interface NudgeDatabase {
  databaseUrl: string | null;
  dataDir: string;
}

export interface NudgeProcess {
  pid: number;
  port: number;
  baseUrl: string;
  /** Whether the process has exited (a crash shows here instead of as a wait that never ends). */
  exited(): boolean;
  /** SIGTERM, then waits for the process to exit (it finishes its batch and closes the database). */
  stop(): Promise<void>;
}

/** The `nudge` command of this build (or BENCH_NUDGE_BIN, to measure another build). */
export function nudgeBin(): string {
  if (process.env.BENCH_NUDGE_BIN) return process.env.BENCH_NUDGE_BIN;
  // bench/support under tsx, dist/bench/support when built (dist has no bin/): the nearer
  // first, so a source run never picks up a bin/nudge.js beside the checkout.
  for (const up of ['../../', '../../../']) {
    const candidate = fileURLToPath(new URL(`${up}bin/nudge.js`, import.meta.url));
    if (existsSync(candidate)) return candidate;
  }
  throw new Error('bin/nudge.js not found');
}

export function nudgeEnv(database: NudgeDatabase, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NUDGE_SECRET_KEY: benchSecretKey, LOG_LEVEL: 'warn', NUDGE_DATA_DIR: database.dataDir, ...extra };
  if (database.databaseUrl) env.DATABASE_URL = database.databaseUrl;
  else delete env.DATABASE_URL;
  return env;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/**
 * Starts `nudge api|start|worker` as its own process on the given database. For the
 * roles that serve HTTP, resolves once /health answers 200.
 */
export async function startNudge(role: 'api' | 'start' | 'worker', database: NudgeDatabase, extraEnv: Record<string, string> = {}): Promise<NudgeProcess> {
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, [nudgeBin(), role], {
    env: nudgeEnv(database, { PORT: String(port), HOST: '127.0.0.1', ...extraEnv }),
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let gone = false;
  void exited.then(() => (gone = true));
  const baseUrl = `http://127.0.0.1:${port}`;
  if (role !== 'worker') {
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (gone) throw new Error(`nudge ${role} exited before it answered /health`);
      try {
        const response = await fetch(`${baseUrl}/health`);
        if (response.ok) break;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`nudge ${role} did not answer /health within 30 s`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    pid: child.pid!,
    port,
    baseUrl,
    exited: () => gone,
    stop: async () => {
      if (gone) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
