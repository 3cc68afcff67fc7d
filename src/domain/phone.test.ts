import { describe, expect, it } from 'vitest';
import { normalizePhone } from './phone.js';

describe('normalizePhone', () => {
  it('reads a national number in the default country, and gives the same answer when asked again', () => {
    expect(normalizePhone('(415) 555-0123', 'US')).toBe('+14155550123');
    expect(normalizePhone('(415) 555-0123', 'US')).toBe('+14155550123');
    expect(normalizePhone('020 7946 0958', 'GB')).toBe('+442079460958');
  });

  it('keeps answers apart by country: the same digits are another number elsewhere', () => {
    expect(normalizePhone('0612345678', 'NL')).toBe('+31612345678');
    expect(normalizePhone('0612345678', 'FR')).toBe('+33612345678');
    expect(normalizePhone('0612345678', 'NL')).toBe('+31612345678');
  });

  it('refuses what cannot be a phone number, every time', () => {
    for (let round = 0; round < 2; round += 1) {
      expect(normalizePhone('not a phone', 'US')).toBeNull();
      expect(normalizePhone('+1 415', 'US')).toBeNull();
      expect(normalizePhone('', 'US')).toBeNull();
    }
  });

  it('stays correct past the number of answers it keeps', () => {
    for (let i = 0; i < 60_000; i += 1) {
      const digits = String(5_000_000 + i).padStart(7, '0');
      expect(normalizePhone(`415${digits}`, 'US')).toBe(`+1415${digits}`);
    }
    expect(normalizePhone('0612345678', 'FR')).toBe('+33612345678');
  });
});
