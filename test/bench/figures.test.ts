import { describe, expect, it } from 'vitest';
import { ceilingNote, dripCeiling, type DripFigures } from '../../bench/support/figures.js';

const figures = (system: string, stepsPerSecond: number, failure: string | null = null): DripFigures => ({
  system,
  contacts: 20_000,
  enrollmentsPerSecond: 1,
  stepsPerSecond,
  runSeconds: 1,
  timerLatenessP50Ms: 0,
  timerLatenessP99Ms: 0,
  peakRssBytes: 0,
  failure,
});

describe('the drip ceiling', () => {
  it('is three steps per contact over the two delays', () => {
    expect(dripCeiling(20_000, 1000)).toBe(30_000);
    expect(dripCeiling(100_000, 1000)).toBe(150_000);
    expect(dripCeiling(20_000, 500)).toBe(60_000);
  });

  it('sets twice the faster peer that passed its check against the ceiling', () => {
    const note = ceilingNote(20_000, 1000, figures('Nudge on SQLite', 21_000), [figures('A', 14_197), figures('B', 13_000), figures('C', 20_000, 'lost messages')]);
    expect(note).toContain('30000 steps/s');
    expect(note).toContain('Twice the faster peer (A) is 28394 steps/s, 95 % of the ceiling');
    expect(note).toContain('Nudge on SQLite ran at 21000, 70 % of it');
  });

  it('says nothing without a peer that passed', () => {
    expect(ceilingNote(20_000, 1000, figures('Nudge on SQLite', 21_000), [figures('A', 14_000, 'failed')])).toBeNull();
  });
});
