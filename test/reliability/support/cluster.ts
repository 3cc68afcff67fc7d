import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sleep, waitFor } from './mode.js';

/**
 * Real Nudge processes for the reliability suites: `nudge api`, `nudge worker` and
 * `nudge start`, spawned from the compiled build (`bin/nudge.js`, as in production),
 * killed with SIGKILL and started again in the same slot (same role, same port), as a
 * process supervisor would. A process that exits without being killed is recorded:
 * the suites fail on it.
 */

const root = fileURLToPath(new URL('../../..', import.meta.url));
const cli = join(root, 'bin', 'nudge.js');
const probe = fileURLToPath(new URL('./memory-probe.js', import.meta.url));

export type Role = 'api' | 'worker' | 'start';

export interface MemorySample {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
}

export class Member {
  child!: ChildProcess;
  /** How many times this slot has been started. */
  generation = 0;
  ready = false;
  killedByUs = false;
  startedAt = 0;
  /** Milliseconds from spawn to ready, for every start of this slot. */
  readonly startupMs: number[] = [];
  readonly output: string[] = [];
  exited: Promise<number | null> = Promise.resolve(null);
  private pendingMemory: Array<(sample: MemorySample) => void> = [];

  constructor(
    readonly name: string,
    readonly role: Role,
    readonly port: number | null,
  ) {}

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get url(): string | null {
    return this.port === null ? null : `http://127.0.0.1:${this.port}`;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Memory after a full GC, from the probe loaded into the child (see memory-probe.js). */
  memory(timeoutMs = 10_000): Promise<MemorySample> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name} did not answer the memory probe`)), timeoutMs);
      this.pendingMemory.push((sample) => {
        clearTimeout(timer);
        resolve(sample);
      });
      this.child.send({ type: 'nudge-memory' });
    });
  }

  /** Resident set size from /proc, without disturbing the process. */
  rss(): number {
    const status = readFileSync(`/proc/${this.pid}/status`, 'utf8');
    const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    return kb * 1024;
  }

  markReady(): void {
    if (!this.ready) this.startupMs.push(Date.now() - this.startedAt);
    this.ready = true;
  }

  attach(child: ChildProcess): void {
    this.child = child;
    this.startedAt = Date.now();
    this.generation += 1;
    this.ready = false;
    this.killedByUs = false;
    const keep = (d: Buffer) => {
      for (const line of d.toString().split('\n')) {
        if (line === '') continue;
        this.output.push(`[${this.name}#${this.generation}] ${line}`);
        if (this.role === 'worker' && line.includes('Nudge worker running')) this.markReady();
      }
      if (this.output.length > 400) this.output.splice(0, this.output.length - 400);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    child.on('message', (message: { type?: string } & MemorySample) => {
      if (message?.type === 'nudge-memory') this.pendingMemory.shift()?.(message);
    });
    this.exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  }
}

export interface Kill {
  at: number;
  member: string;
  role: Role;
  reason: string;
}

export class Cluster {
  readonly members: Member[] = [];
  readonly kills: Kill[] = [];
  /** Exits nobody asked for: crashes. */
  readonly crashes: Array<{ member: string; code: number | null; signal: string | null; output: string }> = [];
  private stopping = false;

  constructor(
    private readonly env: Record<string, string>,
    private readonly options: { probe?: boolean } = {},
  ) {
    ensureBuild();
  }

  async add(role: Role, name = `${role}-${this.members.filter((m) => m.role === role).length + 1}`): Promise<Member> {
    const port = role === 'worker' ? null : await freePort();
    const member = new Member(name, role, port);
    this.members.push(member);
    this.spawn(member);
    return member;
  }

  /** Start-up times (spawn to ready) of every start so far, in ms. */
  startupFigures(): { starts: number; p50: number; max: number } {
    const all = this.members.flatMap((m) => m.startupMs).sort((a, b) => a - b);
    return { starts: all.length, p50: all[Math.floor(all.length / 2)] ?? 0, max: all.at(-1) ?? 0 };
  }

  apis(): Member[] {
    return this.members.filter((m) => m.role !== 'worker');
  }

  workers(): Member[] {
    return this.members.filter((m) => m.role !== 'api');
  }

  /** Base URLs of every process that serves HTTP, up or not (the load balancer's list). */
  urls(): string[] {
    return this.apis().map((m) => m.url!);
  }

  async waitReady(member: Member, timeoutMs = 60_000): Promise<void> {
    await waitFor(
      async () => {
        if (!member.alive) throw new Error(`${member.name} exited while starting:\n${member.output.join('\n')}`);
        if (member.role === 'worker') return member.ready || undefined;
        try {
          const res = await fetch(`${member.url}/health`, { signal: AbortSignal.timeout(2000) });
          if (res.status === 200) member.markReady();
        } catch {
          // Not listening yet.
        }
        return member.ready || undefined;
      },
      timeoutMs,
      () => `${member.name} is not ready:\n${member.output.slice(-30).join('\n')}`,
      50,
    );
  }

  async waitAllReady(timeoutMs = 60_000): Promise<void> {
    await Promise.all(this.members.map((m) => this.waitReady(m, timeoutMs)));
  }

  /** SIGKILL, then the same slot starts again at once. */
  async killAndRestart(member: Member, reason: string): Promise<void> {
    await this.kill(member, reason);
    this.spawn(member);
  }

  async kill(member: Member, reason: string): Promise<void> {
    if (!member.alive) return;
    member.killedByUs = true;
    member.ready = false;
    this.kills.push({ at: Date.now(), member: member.name, role: member.role, reason });
    member.child.kill('SIGKILL');
    await member.exited;
  }

  /** The member whose process holds the client end of a TCP connection from `port` (Linux /proc). */
  memberOwningLocalPort(port: number): Member | null {
    const inodes = new Set<string>();
    for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
      if (!existsSync(file)) continue;
      for (const line of readFileSync(file, 'utf8').split('\n').slice(1)) {
        const fields = line.trim().split(/\s+/);
        const local = fields[1];
        if (!local) continue;
        if (parseInt(local.slice(local.lastIndexOf(':') + 1), 16) === port) inodes.add(fields[9]!);
      }
    }
    if (inodes.size === 0) return null;
    for (const member of this.members) {
      if (!member.alive) continue;
      let fds: string[];
      try {
        fds = readdirSync(`/proc/${member.pid}/fd`);
      } catch {
        continue;
      }
      for (const fd of fds) {
        try {
          const target = readlinkSync(`/proc/${member.pid}/fd/${fd}`);
          const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
          if (inode && inodes.has(inode)) return member;
        } catch {
          // The fd closed meanwhile.
        }
      }
    }
    return null;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    for (const member of this.members) {
      if (!member.alive) continue;
      member.killedByUs = true;
      member.child.kill('SIGTERM');
    }
    const deadline = Date.now() + 10_000;
    for (const member of this.members) {
      while (member.alive && Date.now() < deadline) await sleep(50);
      if (member.alive) member.child.kill('SIGKILL');
      await member.exited;
    }
  }

  private spawn(member: Member): void {
    const args = [...(this.options.probe ? ['--expose-gc', '--import', probe] : []), cli, member.role];
    const child = spawn(process.execPath, args, {
      cwd: root,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', LOG_LEVEL: 'info', ...this.env, ...(member.port !== null ? { PORT: String(member.port), HOST: '127.0.0.1' } : {}) },
      stdio: ['ignore', 'pipe', 'pipe', ...(this.options.probe ? (['ipc'] as const) : [])],
    });
    member.attach(child);
    child.on('exit', (code, signal) => {
      if (member.child !== child || member.killedByUs || this.stopping) return;
      this.crashes.push({ member: member.name, code, signal, output: member.output.slice(-40).join('\n') });
    });
  }
}

export async function freePort(): Promise<number> {
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

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(path));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

let built = false;

/**
 * The children run the compiled CLI, as production does (and they restart in well under
 * a second, where running through tsx takes several). Builds when dist/ is missing or
 * older than a source file, so a run never tests stale code.
 */
export function ensureBuild(): void {
  if (built) return;
  const compiled = join(root, 'dist', 'src', 'cli', 'main.js');
  const stale = !existsSync(compiled) || statSync(compiled).mtimeMs < newestMtime(join(root, 'src'));
  if (stale) {
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'pipe' });
  }
  built = true;
}
