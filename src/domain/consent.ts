import { invalidFields, type FieldErrors } from './errors.js';
import { isPlainObject } from './json.js';

/**
 * Consent keywords: an inbound message that is exactly one of these words (ignoring
 * case, surrounding spaces and trailing punctuation) opts the contact out of, or back
 * into, the channel it came on. The defaults are the carrier-standard English words
 * (CTIA, and what Twilio's Advanced Opt-Out honours); a workspace may replace either
 * list in its settings (`opt_out_keywords`, `opt_in_keywords`).
 *
 * Whole-message matching is deliberate: "please stop sending the wrong size" is a
 * conversation, not an opt-out, and a flow asking "reply YES" must still get its YES.
 */
export const defaultOptOutKeywords: readonly string[] = ['STOP', 'STOPALL', 'UNSUBSCRIBE', 'CANCEL', 'END', 'QUIT'];
export const defaultOptInKeywords: readonly string[] = ['START', 'UNSTOP', 'YES'];

export const defaultOptOutConfirmation = 'You are unsubscribed and will receive no more messages from us here. Reply START to subscribe again.';
export const defaultOptInConfirmation = 'You are subscribed again. Reply STOP to unsubscribe.';

export interface ConsentSettings {
  opt_out_keywords: string[];
  opt_in_keywords: string[];
  opt_out_confirmation: string;
  opt_in_confirmation: string;
}

export type ConsentKeyword = { kind: 'opt_out' | 'opt_in'; keyword: string };

function normalizeKeyword(text: string): string {
  return text.normalize('NFKC').trim().replace(/[.!?]+$/, '').trim().toUpperCase();
}

/** The consent settings stored in the workspace's settings JSON, with defaults for what is unset. */
export function consentSettingsOf(workspaceSettings: Record<string, unknown>): ConsentSettings {
  const list = (value: unknown, fallback: readonly string[]) =>
    Array.isArray(value) && value.every((v) => typeof v === 'string') ? (value as string[]) : [...fallback];
  const text = (value: unknown, fallback: string) => (typeof value === 'string' && value.trim() !== '' ? value : fallback);
  return {
    opt_out_keywords: list(workspaceSettings.opt_out_keywords, defaultOptOutKeywords),
    opt_in_keywords: list(workspaceSettings.opt_in_keywords, defaultOptInKeywords),
    opt_out_confirmation: text(workspaceSettings.opt_out_confirmation, defaultOptOutConfirmation),
    opt_in_confirmation: text(workspaceSettings.opt_in_confirmation, defaultOptInConfirmation),
  };
}

/** Which consent keyword the inbound text is, if any. Opt-out wins if a word is in both lists. */
export function matchConsentKeyword(text: string | null | undefined, settings: Pick<ConsentSettings, 'opt_out_keywords' | 'opt_in_keywords'>): ConsentKeyword | null {
  if (!text || text.length > 64) return null;
  const word = normalizeKeyword(text);
  if (word === '') return null;
  if (settings.opt_out_keywords.some((k) => normalizeKeyword(k) === word)) return { kind: 'opt_out', keyword: word };
  if (settings.opt_in_keywords.some((k) => normalizeKeyword(k) === word)) return { kind: 'opt_in', keyword: word };
  return null;
}

export interface ConsentSettingsInput {
  opt_out_keywords?: unknown;
  opt_in_keywords?: unknown;
  opt_out_confirmation?: unknown;
  opt_in_confirmation?: unknown;
}

/**
 * Validates a change to the consent settings and returns the full settings after it.
 * Keywords are single words (letters and digits, 1 to 32 characters), stored upper
 * case, at most 30 per list; a word may not be in both lists; `null` restores a default.
 */
export function applyConsentSettings(current: ConsentSettings, input: ConsentSettingsInput): ConsentSettings {
  if (!isPlainObject(input)) throw invalidFields({ body: ['body must be an object'] });
  const errors: FieldErrors = {};
  const next: ConsentSettings = { ...current };
  for (const field of ['opt_out_keywords', 'opt_in_keywords'] as const) {
    const value = input[field];
    if (value === undefined) continue;
    if (value === null) {
      next[field] = [...(field === 'opt_out_keywords' ? defaultOptOutKeywords : defaultOptInKeywords)];
      continue;
    }
    if (!Array.isArray(value) || value.length > 30) {
      errors[field] = [`${field} must be a list of at most 30 words`];
      continue;
    }
    const words: string[] = [];
    for (const item of value) {
      const word = typeof item === 'string' ? normalizeKeyword(item) : '';
      if (!/^[\p{L}\p{N}]{1,32}$/u.test(word)) {
        errors[field] = [`${field} must hold single words of 1 to 32 letters or digits (got ${JSON.stringify(item)})`];
        break;
      }
      if (!words.includes(word)) words.push(word);
    }
    next[field] = words;
  }
  for (const field of ['opt_out_confirmation', 'opt_in_confirmation'] as const) {
    const value = input[field];
    if (value === undefined) continue;
    if (value === null) {
      next[field] = field === 'opt_out_confirmation' ? defaultOptOutConfirmation : defaultOptInConfirmation;
      continue;
    }
    if (typeof value !== 'string' || value.trim() === '' || value.length > 1000) errors[field] = [`${field} must be a text of 1 to 1000 characters`];
    else next[field] = value.trim();
  }
  const both = next.opt_out_keywords.filter((k) => next.opt_in_keywords.includes(k));
  if (both.length > 0 && !errors.opt_in_keywords) errors.opt_in_keywords = [`opt_in_keywords cannot contain ${both.join(', ')}: it is an opt-out keyword`];
  if (Object.keys(errors).length > 0) throw invalidFields(errors);
  return next;
}
