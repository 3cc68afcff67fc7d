import { durationMs, type Duration } from './definition.js';

/**
 * Wall-clock arithmetic in IANA time zones with nothing but Intl: the zone's UTC offset at
 * an instant is read from `Intl.DateTimeFormat`, and a local time is turned into an
 * instant by trying the offsets in force a day before and a day after it (no zone changes
 * its offset twice within two days). DST follows Temporal's `compatible` mode: a time that
 * occurs twice (autumn) means the first one (or the second, if the first has passed); a time
 * skipped by the clock (spring) means as far past the jump (02:30 on a 02:00→03:00 night is 03:30).
 */

const timePattern = /^([01]\d|2[0-3]):([0-5]\d)$/;
const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(timeZone);
  if (!formatter) {
    // Throws RangeError for an unknown zone.
    formatter = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    // Zones come from contacts and definitions, a bounded set in practice; the cap guards against abuse.
    if (formatters.size >= 1000) formatters.clear();
    formatters.set(timeZone, formatter);
  }
  return formatter;
}

/** True for a time zone Intl knows (`Europe/Paris`, `UTC`, `America/Argentina/Buenos_Aires`). */
export function isValidTimeZone(timeZone: string): boolean {
  if (typeof timeZone !== 'string' || timeZone.length === 0 || timeZone.length > 100) return false;
  try {
    formatterFor(timeZone);
    return true;
  } catch (error) {
    if (error instanceof RangeError) return false;
    throw error;
  }
}

/** True for a 24-hour `HH:MM` time (`00:00` to `23:59`). */
export function isTimeOfDay(time: string): boolean {
  return typeof time === 'string' && timePattern.test(time);
}

interface WallClock {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

// `format` is several times faster than `formatToParts`; en-US with h23 reads "6/15/2025, 17:06:40".
const formatted = /^(\d{1,2})\/(\d{1,2})\/(\d{1,6}),? (\d{1,2}):(\d{2}):(\d{2})$/;

function wallClock(ms: number, timeZone: string): WallClock {
  const formatter = formatterFor(timeZone);
  const match = formatted.exec(formatter.format(ms));
  if (match) {
    return { year: Number(match[3]), month: Number(match[1]), day: Number(match[2]), hour: Number(match[4]), minute: Number(match[5]), second: Number(match[6]) };
  }
  // Another ICU might print it differently: the parts are slower but certain.
  const fields: Record<string, string> = {};
  for (const part of formatter.formatToParts(ms)) fields[part.type] = part.value;
  return {
    year: Number(fields.year),
    month: Number(fields.month),
    day: Number(fields.day),
    hour: Number(fields.hour),
    minute: Number(fields.minute),
    second: Number(fields.second),
  };
}

function wallClockAsUtc(w: WallClock): number {
  return Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second);
}

/** The zone's offset from UTC at an instant, in ms (Paris in summer: +7,200,000). */
export function timeZoneOffsetMs(ms: number, timeZone: string): number {
  const whole = Math.floor(ms / 1000) * 1000;
  return wallClockAsUtc(wallClock(whole, timeZone)) - whole;
}

/**
 * The instants a local wall-clock time (given as if it were UTC) happens in the zone, earliest
 * first: one usually, two on a fall-back night, and for a time the spring-forward jump skips,
 * the instant as far past the jump.
 */
function localToInstants(localAsUtc: number, timeZone: string): number[] {
  const day = 86_400_000;
  const before = localAsUtc - timeZoneOffsetMs(localAsUtc - day, timeZone);
  const after = localAsUtc - timeZoneOffsetMs(localAsUtc + day, timeZone);
  const valid = [...new Set([before, after])].filter((t) => t + timeZoneOffsetMs(t, timeZone) === localAsUtc).sort((a, b) => a - b);
  // Skipped by a spring-forward jump: applying the earlier offset lands as far past the jump.
  return valid.length > 0 ? valid : [before];
}

/**
 * The next instant, at or after `nowMs + 1 s`, when the wall clock in `timeZone` reads
 * `time` (HH:MM, 24 h). Throws RangeError for a malformed time or an unknown zone.
 *
 * @example
 * nextTimeOfDay(Date.parse('2025-03-29T12:00:00Z'), '09:00', 'Europe/Paris') // 2025-03-30T07:00:00Z (CEST began that night)
 */
export function nextTimeOfDay(nowMs: number, time: string, timeZone: string): number {
  const match = timePattern.exec(time);
  if (!match) throw new RangeError(`time must be HH:MM (24-hour), got "${time}"`);
  if (!isValidTimeZone(timeZone)) throw new RangeError(`unknown time zone "${timeZone}"`);
  const hour = Number(match[1]);
  const minute = Number(match[2]);
  const earliest = nowMs + 1000;
  const today = wallClock(earliest, timeZone);
  const offsetNow = wallClockAsUtc(today) - Math.floor(earliest / 1000) * 1000;
  // Today's occurrence may be past; tomorrow's always qualifies, unless a zone skipped a whole day (Samoa, 2011).
  for (let days = 0; days <= 3; days++) {
    const local = Date.UTC(today.year, today.month - 1, today.day + days, hour, minute, 0);
    // Fast path, nearly always taken: no offset change between now and the candidate. Zones
    // never change offset twice within two days, so a candidate that keeps today's offset is
    // the only reading of that local time at or after now.
    const guess = local - offsetNow;
    // Long past: any other reading of it differs by one offset change (at most 2 h in any zone today).
    if (guess + 6 * 3_600_000 < earliest) continue;
    if (guess >= earliest && timeZoneOffsetMs(guess, timeZone) === offsetNow) return guess;
    for (const candidate of localToInstants(local, timeZone)) {
      if (candidate >= earliest) return candidate;
    }
  }
  throw new RangeError(`no ${time} found in ${timeZone} after ${new Date(nowMs).toISOString()}`);
}

/** `nowMs` plus a duration (a day is 24 hours, whatever the zone). */
export function addDuration(nowMs: number, duration: Duration | undefined): number {
  return nowMs + durationMs(duration);
}
