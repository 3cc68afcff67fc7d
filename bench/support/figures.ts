/** The drip's figures, the same for Nudge and for each peer, so one table compares them. */
export interface DripFigures {
  system: string;
  contacts: number;
  enrollmentsPerSecond: number;
  /** 3 × contacts ÷ the run's wall time (from the workers' start until the last message is recorded). */
  stepsPerSecond: number;
  runSeconds: number;
  timerLatenessP50Ms: number;
  timerLatenessP99Ms: number;
  /** Peak resident set size of the process that enrolled and ran the drip, in bytes. */
  peakRssBytes: number;
  /** Null when the run's own check passed; otherwise what was wrong. */
  failure: string | null;
  note?: string;
}

/**
 * The drip waits two delays per contact, so no system can finish it in less than their
 * sum: 3 × contacts steps in at least 2 × delay is the fastest any system can run it.
 */
export function dripCeiling(contacts: number, delayMs: number): number {
  return Math.round((3 * contacts) / ((2 * delayMs) / 1000));
}

/**
 * One line that puts the target "twice the faster peer" against the workload's ceiling:
 * how much of the ceiling twice the faster peer is, and how much Nudge ran at.
 */
export function ceilingNote(contacts: number, delayMs: number, nudgeSqlite: DripFigures | undefined, peers: readonly DripFigures[]): string | null {
  const ok = peers.filter((p) => p.failure === null);
  if (ok.length === 0) return null;
  const fastest = ok.reduce((a, b) => (b.stepsPerSecond > a.stepsPerSecond ? b : a));
  const ceiling = dripCeiling(contacts, delayMs);
  const share = (v: number) => `${Math.round((100 * v) / ceiling)} %`;
  const twice = 2 * fastest.stepsPerSecond;
  const nudge = nudgeSqlite && nudgeSqlite.failure === null ? `; Nudge on SQLite ran at ${nudgeSqlite.stepsPerSecond}, ${share(nudgeSqlite.stepsPerSecond)} of it` : '';
  return `Ceiling of this workload for any system: ${ceiling} steps/s (3 × ${contacts} steps, none finished before the ${(2 * delayMs) / 1000} s of delay). Twice the faster peer (${fastest.system}) is ${twice} steps/s, ${share(twice)} of the ceiling${nudge}.`;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export function seconds(ms: number): number {
  return Math.round(ms / 10) / 100;
}
