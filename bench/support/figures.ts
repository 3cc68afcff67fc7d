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
  const fastest = fastestPassed(peers);
  if (!fastest) return null;
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

export function median(values: readonly number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : Math.round((sorted[mid - 1]! + sorted[mid]!) / 2);
}

/**
 * One system's figures over several rounds: the median of each figure, so one round
 * slowed by a neighbour on a shared machine does not decide the comparison. A failed
 * check in any round is the summary's failure.
 */
export function medianFigures(runs: readonly DripFigures[]): DripFigures {
  const first = runs[0];
  if (!first) throw new Error('medianFigures needs at least one run');
  const of = (pick: (f: DripFigures) => number) => median(runs.map(pick));
  const failures = runs.map((r, i) => (r.failure === null ? null : `round ${i + 1}: ${r.failure}`)).filter((f): f is string => f !== null);
  return {
    system: first.system,
    contacts: first.contacts,
    enrollmentsPerSecond: of((f) => f.enrollmentsPerSecond),
    stepsPerSecond: of((f) => f.stepsPerSecond),
    runSeconds: Math.round(of((f) => f.runSeconds * 100)) / 100,
    timerLatenessP50Ms: of((f) => f.timerLatenessP50Ms),
    timerLatenessP99Ms: of((f) => f.timerLatenessP99Ms),
    peakRssBytes: of((f) => f.peakRssBytes),
    failure: failures.length > 0 ? failures.join('; ') : null,
    ...(first.note === undefined ? {} : { note: first.note }),
  };
}

/**
 * Round r runs the systems starting from the r-th (0-based), so none always runs first
 * (on a fresh database and a cool machine) or last.
 */
export function roundOrder<T>(systems: readonly T[], round: number): T[] {
  const n = systems.length;
  return Array.from({ length: n }, (_, i) => systems[(round + i) % n]!);
}

/** The system with the most steps/s among those that passed their check. */
function fastestPassed(systems: readonly DripFigures[]): DripFigures | undefined {
  return systems.filter((p) => p.failure === null).reduce<DripFigures | undefined>((a, b) => (a && a.stepsPerSecond >= b.stepsPerSecond ? a : b), undefined);
}

/** The ratio of one system's steps/s to the faster of the others that passed their check, or null without one. */
export function ratioToFastest(system: DripFigures | undefined, others: readonly DripFigures[]): number | null {
  const fastest = fastestPassed(others);
  if (!system || system.failure !== null || !fastest) return null;
  return system.stepsPerSecond / fastest.stepsPerSecond;
}
