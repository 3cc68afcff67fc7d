import { describe, expect, it } from 'vitest';
import { normalizePhone } from './phone.js';

describe('normalizePhone', () => {
  it('reads a national number in the default country', () => {
    expect(normalizePhone('(415) 555-0123', 'US')).toBe('+14155550123');
    expect(normalizePhone('020 7946 0958', 'GB')).toBe('+442079460958');
    expect(normalizePhone('0044 20 7946 0958', 'US')).toBe('+442079460958');
  });

  it('reads the same digits as another number in another country', () => {
    expect(normalizePhone('0612345678', 'NL')).toBe('+31612345678');
    expect(normalizePhone('0612345678', 'FR')).toBe('+33612345678');
  });

  it('refuses what cannot be a phone number', () => {
    expect(normalizePhone('not a phone', 'US')).toBeNull();
    expect(normalizePhone('+1 415', 'US')).toBeNull();
    expect(normalizePhone('', 'US')).toBeNull();
  });
});
