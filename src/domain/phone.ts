import { isSupportedCountry, parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js';

/**
 * Normalises a phone number to E.164. Numbers without a leading `+` (or `00`) are read
 * in the workspace's default country. Returns null when it cannot be a phone number.
 *
 * "Possible" (right length for the country) rather than "valid" (in an allocated range)
 * on purpose: fictional test ranges such as +1 555 … are what integrators send while
 * they build, and refusing them would break the reference examples.
 */
export function normalizePhone(input: string, defaultCountry: string): string | null {
  const trimmed = input.trim();
  if (trimmed.length === 0 || trimmed.length > 40) return null;
  if (!/^[+\d\s().\-/]+$/.test(trimmed)) return null;
  const withPlus = /^00[1-9]/.test(trimmed) ? `+${trimmed.slice(2)}` : trimmed;
  const country = isSupportedCountry(defaultCountry) ? (defaultCountry as CountryCode) : undefined;
  const parsed = parsePhoneNumberFromString(withPlus, country);
  if (!parsed || !parsed.isPossible()) return null;
  return parsed.number;
}

export function isCountryCode(value: string): boolean {
  return /^[A-Z]{2}$/.test(value) && isSupportedCountry(value);
}

export function normalizeEmail(input: string): string | null {
  const trimmed = input.trim().toLowerCase();
  if (trimmed.length > 254) return null;
  return /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(trimmed) ? trimmed : null;
}
