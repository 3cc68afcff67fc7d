import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const entry = fileURLToPath(new URL('./nudge-cli.ts', import.meta.url));

export interface NudgeProcess {
  child: ChildProcess;
  output: string[];
  exited: Promise<number | null>;
}

/** Starts `nudge <args>` from source as a real child process. */
export function startNudge(args: string[], env: Record<string, string>): NudgeProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', entry, ...args], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  child.stdout?.on('data', (d: Buffer) => output.push(d.toString()));
  child.stderr?.on('data', (d: Buffer) => output.push(d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output, exited };
}

export async function kill9(process: NudgeProcess): Promise<void> {
  process.child.kill('SIGKILL');
  await process.exited;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
