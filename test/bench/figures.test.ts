import { describe, expect, it } from 'vitest';
import { ceilingNote, dripCeiling, median, medianFigures, ratioToFastest, roundOrder, type DripFigures } from '../../bench/support/figures.js';

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

describe('figures over several rounds', () => {
  it('takes the middle value, and the mean of the two middle ones for an even count', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([10, 40, 20, 30])).toBe(25);
    expect(median([7])).toBe(7);
  });

  it('summarises a system by the median of each figure, so one slow round does not decide it', () => {
    const runs = [figures('A', 19_000), figures('A', 8_000), figures('A', 17_000)].map((f, i) => ({ ...f, timerLatenessP50Ms: [40, 900, 60][i]!, peakRssBytes: [3, 1, 2][i]! }));
    const summary = medianFigures(runs);
    expect(summary).toMatchObject({ system: 'A', stepsPerSecond: 17_000, timerLatenessP50Ms: 60, peakRssBytes: 2, failure: null });
  });

  it('carries a failed check of any round into the summary', () => {
    const summary = medianFigures([figures('A', 19_000), figures('A', 18_000, 'lost 3 messages')]);
    expect(summary.failure).toBe('round 2: lost 3 messages');
  });

  it('starts each round from the next system', () => {
    expect(roundOrder(['a', 'b', 'c'], 0)).toEqual(['a', 'b', 'c']);
    expect(roundOrder(['a', 'b', 'c'], 1)).toEqual(['b', 'c', 'a']);
    expect(roundOrder(['a', 'b', 'c'], 4)).toEqual(['b', 'c', 'a']);
  });

  it('divides by the faster peer that passed, and gives no ratio for a failed run', () => {
    expect(ratioToFastest(figures('N', 20_000), [figures('A', 10_000), figures('B', 8_000), figures('C', 40_000, 'failed')])).toBe(2);
    expect(ratioToFastest(figures('N', 20_000, 'failed'), [figures('A', 10_000)])).toBeNull();
    expect(ratioToFastest(figures('N', 20_000), [])).toBeNull();
  });
});
