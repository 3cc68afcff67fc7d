import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * How much of each reliability suite to run. `NUDGE_RELIABILITY=short` is the CI
 * mode (the whole suite in a few minutes); anything else is the full run that
 * RELIABILITY.md reports. A single figure can be overridden for a local experiment,
 * e.g. `NUDGE_RELIABILITY_CRASH_KILLS=60`.
 */
export type ReliabilityMode = 'short' | 'full';

export const mode: ReliabilityMode = process.env.NUDGE_RELIABILITY === 'short' ? 'short' : 'full';

/** The figure for this mode, or `NUDGE_RELIABILITY_<NAME>` when that is set to a number. */
export function figure(name: string, short: number, full: number): number {
  const override = process.env[`NUDGE_RELIABILITY_${name.toUpperCase()}`];
  if (override !== undefined && override.trim() !== '') {
    const value = Number(override);
    if (!Number.isFinite(value) || value < 0) throw new Error(`NUDGE_RELIABILITY_${name.toUpperCase()} must be a number (got "${override}")`);
    return value;
  }
  return mode === 'short' ? short : full;
}

const outDir = process.env.NUDGE_RELIABILITY_OUT ?? join(tmpdir(), 'nudge-reliability');

/**
 * Prints what a suite measured and keeps it as JSON under NUDGE_RELIABILITY_OUT
 * (default `$TMPDIR/nudge-reliability`), where RELIABILITY.md's figures come from.
 */
export function report(name: string, figures: Record<string, unknown>): void {
  const entry = { suite: name, mode, at: new Date().toISOString(), ...figures };
  process.stdout.write(`[reliability] ${name}: ${JSON.stringify(figures)}\n`);
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, `${name.replace(/[^\w.-]+/g, '-')}.json`), `${JSON.stringify(entry, null, 2)}\n`);
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it returns a value other than false/undefined, or throws with `describe()` after `timeoutMs`. */
export async function waitFor<T>(check: () => Promise<T | false | undefined>, timeoutMs: number, describe: () => string | Promise<string>, everyMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== false && value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${await describe()}`);
    await sleep(everyMs);
  }
}
