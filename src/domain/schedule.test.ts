import { describe, expect, it } from 'vitest';
import { addDuration, isTimeOfDay, isValidTimeZone, nextTimeOfDay, timeZoneOffsetMs } from './schedule.js';

const at = (iso: string) => Date.parse(iso);
const iso = (ms: number) => new Date(ms).toISOString();

describe('nextTimeOfDay', () => {
  it('returns later today when the time has not yet come', () => {
    expect(iso(nextTimeOfDay(at('2025-06-10T05:00:00Z'), '09:00', 'Europe/Paris'))).toBe('2025-06-10T07:00:00.000Z');
  });

  it('returns tomorrow when the time has passed', () => {
    expect(iso(nextTimeOfDay(at('2025-06-10T08:00:00Z'), '09:00', 'Europe/Paris'))).toBe('2025-06-11T07:00:00.000Z');
  });

  it('moves to the next day when now is exactly the time (the next occurrence is at least 1 s away)', () => {
    expect(iso(nextTimeOfDay(at('2025-06-10T07:00:00Z'), '09:00', 'Europe/Paris'))).toBe('2025-06-11T07:00:00.000Z');
    expect(iso(nextTimeOfDay(at('2025-06-10T06:59:58Z'), '09:00', 'Europe/Paris'))).toBe('2025-06-10T07:00:00.000Z');
  });

  it('uses the summer offset on the first day of CEST in Paris (30 March 2025)', () => {
    // Saturday noon UTC, winter time (+1); Sunday 09:00 is already summer time (+2).
    expect(iso(nextTimeOfDay(at('2025-03-29T12:00:00Z'), '09:00', 'Europe/Paris'))).toBe('2025-03-30T07:00:00.000Z');
  });

  it('shifts a time skipped by the spring-forward jump to as far past the jump (Paris 02:30 → 03:30 CEST)', () => {
    expect(iso(nextTimeOfDay(at('2025-03-29T12:00:00Z'), '02:30', 'Europe/Paris'))).toBe('2025-03-30T01:30:00.000Z');
  });

  it('uses the winter offset on the first day of CET in Paris (26 October 2025)', () => {
    expect(iso(nextTimeOfDay(at('2025-10-25T12:00:00Z'), '09:00', 'Europe/Paris'))).toBe('2025-10-26T08:00:00.000Z');
  });

  it('takes the first of the two 02:30s on the fall-back night in Paris', () => {
    expect(iso(nextTimeOfDay(at('2025-10-25T12:00:00Z'), '02:30', 'Europe/Paris'))).toBe('2025-10-26T00:30:00.000Z');
  });

  it('follows New York into EDT on 9 March 2025', () => {
    expect(iso(nextTimeOfDay(at('2025-03-08T20:00:00Z'), '09:00', 'America/New_York'))).toBe('2025-03-09T13:00:00.000Z');
    expect(iso(nextTimeOfDay(at('2025-03-08T20:00:00Z'), '02:15', 'America/New_York'))).toBe('2025-03-09T07:15:00.000Z');
  });

  it('follows New York back into EST on 2 November 2025', () => {
    expect(iso(nextTimeOfDay(at('2025-11-01T20:00:00Z'), '09:00', 'America/New_York'))).toBe('2025-11-02T14:00:00.000Z');
    expect(iso(nextTimeOfDay(at('2025-11-01T20:00:00Z'), '01:30', 'America/New_York'))).toBe('2025-11-02T05:30:00.000Z');
  });

  it('finds the second 01:30 when the first has just passed on the fall-back night', () => {
    // 05:30Z is 01:30 EDT; one minute later the clock reads 01:31 EDT and will read 01:30 EST at 06:30Z.
    expect(iso(nextTimeOfDay(at('2025-11-02T05:31:00Z'), '01:30', 'America/New_York'))).toBe('2025-11-02T06:30:00.000Z');
  });

  it('handles zones east of UTC across the date line and UTC itself', () => {
    expect(iso(nextTimeOfDay(at('2025-06-10T23:00:00Z'), '08:00', 'Pacific/Auckland'))).toBe('2025-06-11T20:00:00.000Z');
    expect(iso(nextTimeOfDay(at('2025-06-10T23:00:00Z'), '23:30', 'UTC'))).toBe('2025-06-10T23:30:00.000Z');
  });

  it('refuses a malformed time and an unknown zone', () => {
    expect(() => nextTimeOfDay(0, '9:00', 'UTC')).toThrow(RangeError);
    expect(() => nextTimeOfDay(0, '24:00', 'UTC')).toThrow(RangeError);
    expect(() => nextTimeOfDay(0, '09:00', 'Mars/Olympus_Mons')).toThrow(/unknown time zone/);
  });
});

describe('nextTimeOfDay against a minute-by-minute search', () => {
  const formatters = new Map<string, Intl.DateTimeFormat>();
  const minuteReads = (ms: number, zone: string) => {
    if (!formatters.has(zone)) formatters.set(zone, new Intl.DateTimeFormat('en-GB', { timeZone: zone, hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' }));
    return formatters.get(zone)!.format(ms);
  };

  it('finds the first minute reading the time, for random instants around DST changes in six zones', () => {
    // Times no zone below skips (spring gaps have their own tests); 01:30 repeats on New York's fall-back night.
    const times = ['00:00', '01:30', '03:30', '04:15', '09:00', '23:59'];
    const zones = ['Europe/Paris', 'America/New_York', 'Australia/Sydney', 'Pacific/Auckland', 'Asia/Kolkata', 'UTC'];
    const transitions = ['2025-03-09', '2025-03-30', '2025-04-06', '2025-09-28', '2025-10-05', '2025-10-26', '2025-11-02'].map(at);
    let seed = 42;
    const random = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
    for (let i = 0; i < 300; i++) {
      const zone = zones[i % zones.length]!;
      const time = times[Math.floor(random() * times.length)]!;
      const now = transitions[Math.floor(random() * transitions.length)]! + Math.floor((random() - 0.5) * 3 * 86_400_000);
      const got = nextTimeOfDay(now, time, zone);
      let expected = Math.ceil((now + 1000) / 60_000) * 60_000;
      while (minuteReads(expected, zone) !== `${time}:00`) expected += 60_000;
      expect(iso(got), `${time} in ${zone} after ${iso(now)}`).toBe(iso(expected));
    }
  });
});

describe('time zones and durations', () => {
  it('reads a zone offset in summer and winter', () => {
    expect(timeZoneOffsetMs(at('2025-07-01T00:00:00Z'), 'Europe/Paris')).toBe(2 * 3_600_000);
    expect(timeZoneOffsetMs(at('2025-01-01T00:00:00Z'), 'America/New_York')).toBe(-5 * 3_600_000);
  });

  it('tells valid zones and times from invalid ones', () => {
    expect(isValidTimeZone('Europe/Paris')).toBe(true);
    expect(isValidTimeZone('Nowhere/City')).toBe(false);
    expect(isValidTimeZone('')).toBe(false);
    expect(isTimeOfDay('23:59')).toBe(true);
    expect(isTimeOfDay('7:00')).toBe(false);
  });

  it('adds a duration in fixed units', () => {
    expect(addDuration(1000, { days: 1, hours: 2, minutes: 3, seconds: 4 })).toBe(1000 + 93_784_000);
    expect(addDuration(1000, undefined)).toBe(1000);
  });
});
