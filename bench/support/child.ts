import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const marker = 'BENCH_RESULT ';

/**
 * Runs one scenario of bench/child.ts in a fresh Node process and answers its result,
 * so each system's peak RSS is its own and not what earlier scenarios left behind.
 */
export function runInChild<T>(scenario: string, args: unknown): Promise<T> {
  return runNodeScript<T>('child.js', [scenario, JSON.stringify(args)]);
}

/**
 * Runs a script of dist/bench (`child.js`, `load.js`) in a fresh Node process and
 * answers what it reported with reportToParent.
 */
export function runNodeScript<T>(script: string, args: string[]): Promise<T> {
  const entry = fileURLToPath(new URL(`../${script}`, import.meta.url));
  const scenario = script === 'child.js' ? (args[0] ?? script) : script;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [entry, ...args], { stdio: ['ignore', 'pipe', 'inherit'], env: process.env });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      out += chunk;
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      const line = out.split('\n').find((l) => l.startsWith(marker));
      if (code === 0 && line) resolve(JSON.parse(line.slice(marker.length)) as T);
      else reject(new Error(`bench scenario ${scenario} exited with ${signal ?? code}${out.trim() ? `: ${out.trim().slice(-2000)}` : ''}`));
    });
  });
}

/** Called by the child: prints the result where runInChild finds it (resolved once written, so exiting after it loses nothing). */
export function reportToParent(result: unknown): Promise<void> {
  return new Promise((resolve) => process.stdout.write(`${marker}${JSON.stringify(result)}\n`, () => resolve()));
}
