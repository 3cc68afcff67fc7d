import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { dialects } from '../support/databases.js';

/**
 * The real `nudge` command, spawned as a user would run it: `node bin/nudge.js …` over
 * the compiled build, with its own data folder (or its own PostgreSQL database) and port.
 */

const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = join(root, 'bin', 'nudge.js');
const tokenPattern = /^nudge_[A-Za-z0-9_-]{43}$/;

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment of a child: nothing inherited that could point it at another database or port. */
function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (key === 'DATABASE_URL' || key === 'PORT' || key === 'HOST' || key === 'LOG_LEVEL' || key.startsWith('NUDGE_')) continue;
    env[key] = value;
  }
  return { ...env, ...extra };
}

function run(args: string[], env: Record<string, string>): Promise<Result> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], { cwd: root, env: childEnv(env), timeout: 30_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

class ServerProcess {
  stdout = '';
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly child: ChildProcess;

  constructor(
    role: string,
    env: Record<string, string>,
    readonly port: number,
  ) {
    this.child = spawn(process.execPath, [cli, role], { cwd: root, env: childEnv({ ...env, PORT: String(port) }), stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (chunk: Buffer) => (this.stdout += chunk.toString()));
    this.child.stderr!.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
    running.add(this);
    void this.exited.then(() => running.delete(this));
  }

  get base(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Resolves once /health answers 200; fails with the process output if it exits or takes too long. */
  async ready(timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let exited = false;
    void this.exited.then(() => (exited = true));
    while (Date.now() < deadline && !exited) {
      try {
        const res = await fetch(`${this.base}/health`);
        if (res.status === 200) return;
      } catch {
        // not listening yet
      }
      await sleep(100);
    }
    throw new Error(`nudge did not become ready (exited: ${exited})\nstdout:\n${this.stdout}\nstderr:\n${this.stderr}`);
  }

  /** Sends SIGTERM and returns the exit status and how long the process took to exit. */
  async terminate(): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }> {
    const started = Date.now();
    this.child.kill('SIGTERM');
    const result = await Promise.race([this.exited, sleep(10_000).then(() => ({ code: null, signal: null as NodeJS.Signals | null }))]);
    return { ...result, ms: Date.now() - started };
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

const running = new Set<ServerProcess>();

/** A place for one suite's data: a temp folder, and on PostgreSQL a scratch database. */
interface Scratch {
  env: Record<string, string>;
  insertMigrationRow(name: string): Promise<void>;
  drop(): Promise<void>;
}

let scratchCounter = 0;

async function createScratch(dialect: string): Promise<Scratch> {
  const dataDir = mkdtempSync(join(tmpdir(), 'nudge-cli-'));
  if (dialect === 'sqlite') {
    return {
      env: { NUDGE_DATA_DIR: dataDir },
      insertMigrationRow: async (name) => {
        const db = new BetterSqlite3(join(dataDir, 'nudge.sqlite'));
        db.prepare('insert into nudge_migrations (name, timestamp) values (?, ?)').run(name, new Date().toISOString());
        db.close();
      },
      drop: async () => rmSync(dataDir, { recursive: true, force: true }),
    };
  }
  // Named like the other suites' databases, so a run that is killed leaves nothing the next run does not sweep.
  const adminUrl = inject('pgAdminUrl');
  const name = `nudge_t_${process.pid}_cli_${scratchCounter++}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`drop database if exists "${name}" with (force)`);
  await admin.query(`create database "${name}"`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const databaseUrl = url.toString();
  return {
    env: { NUDGE_DATA_DIR: dataDir, DATABASE_URL: databaseUrl },
    insertMigrationRow: async (migration) => {
      const client = new pg.Client({ connectionString: databaseUrl });
      await client.connect();
      await client.query('insert into nudge_migrations (name, timestamp) values ($1, $2)', [migration, new Date().toISOString()]);
      await client.end();
    },
    drop: async () => {
      const dropper = new pg.Client({ connectionString: adminUrl });
      await dropper.connect();
      await dropper.query(`drop database if exists "${name}" with (force)`);
      await dropper.end();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

// One build per run: every suite below spawns the compiled CLI.
beforeAll(() => {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  try {
    execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'pipe' });
  } catch (error) {
    const output = (error as { stdout?: Buffer }).stdout?.toString() ?? '';
    throw new Error(`the build failed:\n${output}`);
  }
  expect(existsSync(join(root, 'dist', 'src', 'cli', 'main.js'))).toBe(true);
}, 120_000);

afterAll(() => {
  for (const server of running) server.kill();
});

describe('nudge without a command', () => {
  it('prints the usage for --help and exits 0', async () => {
    const res = await run(['--help'], {});
    expect(res.code).toBe(0);
    expect(res.stdout).toContain('Usage: nudge <command>');
    for (const command of ['start', 'api', 'worker', 'migrate', 'workspace create', 'token create', 'token list', 'token revoke']) {
      expect(res.stdout).toContain(command);
    }
  });

  it('refuses an unknown command with the usage on stderr', async () => {
    const res = await run(['launch'], {});
    expect(res.code).toBe(2);
    expect(res.stdout).toBe('');
    expect(res.stderr).toContain('unknown command "launch"');
    expect(res.stderr).toContain('Usage: nudge <command>');
  });
});

describe.each(dialects)('nudge CLI on %s', (dialect) => {
  let scratch: Scratch;
  let env: Record<string, string>;

  beforeAll(async () => {
    scratch = await createScratch(dialect);
    env = scratch.env;
  });
  afterAll(async () => {
    for (const server of running) server.kill();
    await scratch.drop();
  });

  let adminToken = '';

  it('on the first start creates a workspace and prints, once, a token and a curl that works', async () => {
    const server = new ServerProcess('start', env, await freePort());
    await server.ready();
    const curl = server.stdout.split('\n').find((line) => line.trim().startsWith('curl '));
    expect(curl, server.stdout).toBeDefined();
    const match = /curl -H "Authorization: Bearer (\S+)" (\S+)$/.exec(curl!.trim());
    expect(match, curl).not.toBeNull();
    const [, token, url] = match!;
    expect(token).toMatch(tokenPattern);
    expect(url).toBe(`http://localhost:${server.port}/api/v1/me`);
    expect(server.stdout.split(token!).length - 1).toBe(2); // the token line and the curl line

    // Exactly what the user would paste.
    const me = await fetch(url!, { headers: { authorization: `Bearer ${token}` } });
    expect(me.status).toBe(200);
    const body = (await me.json()) as { tenant: { name: string }; email: string; scopes: string[] };
    expect(body.tenant.name).toBe('Default workspace');
    expect(body.email).toBe('admin@localhost');
    expect(body.scopes).toEqual(['*']);
    adminToken = token!;

    const stopped = await server.terminate();
    expect(stopped.code).toBe(0);
    expect(stopped.ms).toBeLessThan(5000);
  });

  it('prints no token on a second start, and the first token still works', async () => {
    const server = new ServerProcess('start', env, await freePort());
    await server.ready();
    const me = await fetch(`${server.base}/api/v1/me`, { headers: { authorization: `Bearer ${adminToken}` } });
    expect(me.status).toBe(200);
    const stopped = await server.terminate();
    expect(stopped.code).toBe(0);
    expect(server.stdout).not.toMatch(/nudge_[A-Za-z0-9_-]{43}/);
    expect(server.stdout).not.toContain('curl');
  });

  it('creates, lists and revokes tokens while `nudge api` serves them', async () => {
    const server = new ServerProcess('api', env, await freePort());
    await server.ready();

    const workspace = await run(['workspace', 'create', 'Acme', 'Inc'], env);
    expect(workspace.code, workspace.stderr).toBe(0);
    expect(workspace.stdout).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}\n$/);
    const workspaceId = workspace.stdout.trim();

    const created = await run(['token', 'create', '--name', 'x', '--workspace', workspaceId, '--scopes', 'contacts:read'], env);
    expect(created.code, created.stderr).toBe(0);
    // Only the token: `TOKEN=$(nudge token create …)` must work.
    expect(created.stdout).toMatch(/^nudge_[A-Za-z0-9_-]{43}\n$/);
    const token = created.stdout.trim();

    const me = await fetch(`${server.base}/api/v1/me`, { headers: { authorization: `Bearer ${token}` } });
    expect(me.status).toBe(200);
    const body = (await me.json()) as { tenant: { id: string; name: string }; scopes: string[] };
    expect(body.tenant).toEqual({ id: workspaceId, name: 'Acme Inc' });
    expect(body.scopes).toEqual(['contacts:read']);

    // The use is recorded off the request's path: list until it shows.
    const used = Date.now();
    let list = await run(['token', 'list', '--workspace', 'Acme Inc'], env);
    while (!list.stdout.includes('last used') && Date.now() - used < 3000) list = await run(['token', 'list', '--workspace', 'Acme Inc'], env);
    expect(list.code, list.stderr).toBe(0);
    const line = list.stdout.split('\n').find((l) => l.split('\t')[2] === 'x');
    expect(line, list.stdout).toBeDefined();
    const [id, prefix, , scopes, state, lastUsed] = line!.split('\t');
    expect(token.startsWith(prefix!)).toBe(true);
    expect(scopes).toBe('contacts:read');
    expect(state).toBe('active');
    expect(lastUsed).toMatch(/^last used \d{4}-\d\d-\d\dT/);
    expect(Math.abs(Date.parse(lastUsed!.slice('last used '.length)) - used)).toBeLessThan(60_000);
    expect(list.stdout).not.toContain(token);
    expect(list.stdout.split('\n').filter(Boolean)).toHaveLength(1);

    const revoked = await run(['token', 'revoke', id!], env);
    expect(revoked.code, revoked.stderr).toBe(0);
    const after = await fetch(`${server.base}/api/v1/me`, { headers: { authorization: `Bearer ${token}` } });
    expect(after.status).toBe(401);
    expect(((await after.json()) as { code: string }).code).toBe('unauthorized');
    const listed = await run(['token', 'list'], env);
    expect(listed.stdout).toMatch(new RegExp(`^${id}\\t.*\\trevoked `, 'm'));

    expect((await server.terminate()).code).toBe(0);
  });

  it('refuses bad input with a message and a non-zero exit', async () => {
    const noName = await run(['token', 'create'], env);
    expect(noName.code).not.toBe(0);
    expect(noName.stderr).toContain('--name');
    const badScope = await run(['token', 'create', '--name', 'y', '--workspace', 'Acme Inc', '--scopes', 'contacts:eat'], env);
    expect(badScope.code).not.toBe(0);
    expect(badScope.stderr).toContain('contacts:eat');
    expect(badScope.stdout).toBe('');
    const unknown = await run(['token', 'revoke', 'nudge_nothing'], env);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain('nudge_nothing');
  });

  it('refuses a database migrated by a newer Nudge', async () => {
    expect((await run(['migrate'], env)).code).toBe(0);
    await scratch.insertMigrationRow('9999_future');
    for (const command of [['migrate'], ['token', 'list']]) {
      const res = await run(command, env);
      expect(res.code, command.join(' ')).not.toBe(0);
      expect(res.stderr).toContain('9999_future');
      expect(res.stderr).toMatch(/newer/);
    }
    const server = new ServerProcess('start', env, await freePort());
    const exited = await Promise.race([server.exited, sleep(15_000).then(() => null)]);
    expect(exited, 'start kept running on a newer schema').not.toBeNull();
    expect(exited!.code).not.toBe(0);
    expect(server.stderr).toContain('9999_future');
  });
});

describe('nudge on SQLite, from an empty folder', () => {
  let dataDir: string;
  beforeAll(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'nudge-cli-'));
  });
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('migrate creates the database and says so', async () => {
    const first = await run(['migrate'], { NUDGE_DATA_DIR: dataDir });
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toBe('database is up to date\n');
    expect(existsSync(join(dataDir, 'nudge.sqlite'))).toBe(true);
    const again = await run(['migrate'], { NUDGE_DATA_DIR: dataDir });
    expect(again.code).toBe(0);
  });

  it('workspace create prints only the id, even when it has to migrate first', async () => {
    const fresh = mkdtempSync(join(tmpdir(), 'nudge-cli-'));
    try {
      const res = await run(['workspace', 'create', 'Globex'], { NUDGE_DATA_DIR: fresh });
      expect(res.code, res.stderr).toBe(0);
      expect(res.stdout).toMatch(/^[0-9a-f-]{36}\n$/);
      const token = await run(['token', 'create', '--name', 'ci'], { NUDGE_DATA_DIR: fresh });
      expect(token.code, token.stderr).toBe(0);
      expect(token.stdout).toMatch(/^nudge_[A-Za-z0-9_-]{43}\n$/);
    } finally {
      rmSync(fresh, { recursive: true, force: true });
    }
  });

  it.each([
    ['PORT', 'abc', 'PORT=3000'],
    ['LOG_LEVEL', 'loud', 'LOG_LEVEL=info'],
    ['DATABASE_URL', 'mysql://root@127.0.0.1/nudge', 'DATABASE_URL=postgres://'],
  ])('stops at once on %s=%s, naming the variable and an example', async (name, value, example) => {
    for (const command of [['start'], ['migrate']]) {
      const res = await run(command, { NUDGE_DATA_DIR: dataDir, [name]: value });
      expect(res.code, `${command[0]} ${res.stderr}`).not.toBe(0);
      expect(res.stderr).toContain(name);
      expect(res.stderr).toContain(`for example ${example}`);
      expect(res.stderr).not.toMatch(/\n\s+at /); // a message, not a stack trace
    }
  });
});
