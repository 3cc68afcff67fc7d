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
  const key = `${defaultCountry}\u0000${input}`;
  const known = recent.get(key);
  if (known !== undefined) return known;
  const result = parsePhone(input, defaultCountry);
  // Parsing was an eighth of an add-tag request's CPU; integrations send the same
  // numbers again and again (a tag, then an event, then a reply). Forgotten in bulk when
  // full, which is cheaper than keeping an order and loses little.
  if (recent.size >= recentLimit) recent.clear();
  recent.set(key, result);
  return result;
}

/** Answers of normalizePhone by country and input: the function is pure, so they never go stale. */
const recent = new Map<string, string | null>();
const recentLimit = 50_000;

function parsePhone(input: string, defaultCountry: string): string | null {
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
