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

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export function seconds(ms: number): number {
  return Math.round(ms / 10) / 100;
}
