import type { FieldErrors } from './errors.js';

/**
 * WhatsApp message templates: their parts, Meta's rules for creating them, and the
 * placeholders a send must fill. Pure.
 *
 * Placeholders are positional, as Meta's are: `{{1}}`, `{{2}}`… in the body and at
 * most one `{{1}}` in the header and at the end of a URL button, each numbered on its
 * own. A send names them in one `variables` object: the body's by number (`"1"`), the
 * header's as `"header_1"`, a URL button's suffix as `"button_<index>"`.
 */
export type TemplateCategory = 'UTILITY' | 'MARKETING' | 'AUTHENTICATION';
export type TemplateStatus = 'APPROVED' | 'PENDING' | 'REJECTED';
export const templateCategories: readonly TemplateCategory[] = ['UTILITY', 'MARKETING', 'AUTHENTICATION'];
export const templateStatuses: readonly TemplateStatus[] = ['APPROVED', 'PENDING', 'REJECTED'];

export type TemplateButton =
  | { type: 'QUICK_REPLY'; text: string }
  | { type: 'URL'; text: string; url: string; example?: string }
  | { type: 'PHONE_NUMBER'; text: string; phone_number: string };

/** What the `components` column holds. */
export interface TemplateComponents {
  /** Text header; at most one placeholder. */
  header?: string;
  body: string;
  footer?: string;
  buttons?: TemplateButton[];
  /** Sample values Meta's review needs for the placeholders, by variable key. */
  examples?: Record<string, string>;
}

export interface TemplateInput extends TemplateComponents {
  name: string;
  language: string;
  category: string;
}

export interface Placeholder {
  /** The key in `variables`: "1", "header_1", "button_0". */
  key: string;
  /** Where it sits, for pickers: `Body {{1}}`. */
  label: string;
  part: 'header' | 'body' | 'button';
  /** Its number inside its part (the button index for URL buttons). */
  position: number;
}

/** Meta's limits for template creation. */
export const templateLimits = {
  name: 512,
  header: 60,
  body: 1024,
  footer: 60,
  buttons: 10,
  urlButtons: 2,
  phoneButtons: 1,
  buttonText: 25,
  url: 2000,
  phone: 20,
  example: 200,
} as const;

const namePattern = /^[a-z0-9_]+$/;
const languagePattern = /^[a-z]{2,3}(_[A-Z]{2}|_[A-Za-z]{4})?$/;
const placeholderPattern = /\{\{\s*([^{}]*?)\s*\}\}/g;

/** The placeholder numbers in a text, in order of appearance (`{{name}}` yields NaN). */
function numbersIn(text: string): Array<{ raw: string; n: number }> {
  return [...text.matchAll(placeholderPattern)].map((m) => ({ raw: m[1]!, n: /^\d+$/.test(m[1]!) ? Number(m[1]) : Number.NaN }));
}

/** `{{1}}`, `{{2}}`…: numeric, starting at 1, with no gaps (a number may repeat). */
function checkSequential(text: string, field: string, errors: FieldErrors, max?: number): number {
  const found = numbersIn(text);
  const bad = found.find((p) => Number.isNaN(p.n));
  if (bad) {
    (errors[field] ??= []).push(`${field} has the placeholder {{${bad.raw}}}; WhatsApp placeholders are numbers: {{1}}, {{2}}, …`);
    return 0;
  }
  const distinct = [...new Set(found.map((p) => p.n))].sort((a, b) => a - b);
  if (distinct.some((n, i) => n !== i + 1)) {
    (errors[field] ??= []).push(`${field} placeholders must be numbered from {{1}} without gaps (found ${distinct.map((n) => `{{${n}}}`).join(', ')})`);
  }
  if (max !== undefined && distinct.length > max) (errors[field] ??= []).push(`${field} may have at most ${max} placeholder${max === 1 ? '' : 's'}`);
  return distinct.length;
}

function checkText(value: unknown, field: string, max: number, errors: FieldErrors, required: boolean): value is string {
  if (value === undefined || value === null || value === '') {
    if (required) (errors[field] ??= []).push(`${field} is required`);
    return false;
  }
  if (typeof value !== 'string') {
    (errors[field] ??= []).push(`${field} must be a string`);
    return false;
  }
  if (value.trim() === '') {
    (errors[field] ??= []).push(`${field} must not be blank`);
    return false;
  }
  if ([...value].length > max) (errors[field] ??= []).push(`${field} must be at most ${max} characters (got ${[...value].length})`);
  return true;
}

/**
 * Meta's rules for a new template, every problem named by its field: name (lowercase
 * letters, digits and `_`), language code, category, sequential placeholders in header
 * and body, no placeholder in the footer, and buttons (QUICK_REPLY, URL with at most a
 * trailing `{{1}}`, PHONE_NUMBER) within Meta's counts and lengths.
 *
 * @example
 * validateTemplateInput({ name: 'order_update', language: 'en_US', category: 'UTILITY', body: 'Hi {{1}}, order {{3}}' });
 * // → { body: ['body placeholders must be numbered from {{1}} without gaps (found {{1}}, {{3}})'] }
 */
export function validateTemplateInput(input: TemplateInput): FieldErrors {
  const errors: FieldErrors = {};
  if (checkText(input.name, 'name', templateLimits.name, errors, true) && !namePattern.test(input.name)) {
    (errors.name ??= []).push('name must use only lowercase letters, digits and underscores, e.g. order_update');
  }
  if (checkText(input.language, 'language', 20, errors, true) && !languagePattern.test(input.language)) {
    (errors.language ??= []).push('language must be a WhatsApp language code such as en, en_US or pt_BR');
  }
  if (!templateCategories.includes(input.category as TemplateCategory)) {
    (errors.category ??= []).push(`category must be one of ${templateCategories.join(', ')}`);
  }
  if (checkText(input.header, 'header', templateLimits.header, errors, false)) checkSequential(input.header, 'header', errors, 1);
  if (checkText(input.body, 'body', templateLimits.body, errors, true)) checkSequential(input.body, 'body', errors);
  if (checkText(input.footer, 'footer', templateLimits.footer, errors, false) && numbersIn(input.footer).length > 0) {
    (errors.footer ??= []).push('footer must not contain placeholders');
  }
  const buttons = input.buttons ?? [];
  if (buttons.length > templateLimits.buttons) (errors.buttons ??= []).push(`buttons must be at most ${templateLimits.buttons}`);
  let urls = 0;
  let phones = 0;
  buttons.forEach((button, i) => {
    const field = `buttons.${i}`;
    checkText(button.text, `${field}.text`, templateLimits.buttonText, errors, true);
    if (button.type === 'URL') {
      urls += 1;
      if (checkText(button.url, `${field}.url`, templateLimits.url, errors, true)) {
        if (!/^https?:\/\/\S+$/.test(button.url)) (errors[`${field}.url`] ??= []).push(`${field}.url must be an http(s) URL`);
        const found = numbersIn(button.url);
        if (found.length > 1 || (found.length === 1 && (found[0]!.n !== 1 || !/\{\{\s*1\s*\}\}$/.test(button.url)))) {
          (errors[`${field}.url`] ??= []).push(`${field}.url may have one placeholder, {{1}}, at its end only`);
        }
      }
    } else if (button.type === 'PHONE_NUMBER') {
      phones += 1;
      if (checkText(button.phone_number, `${field}.phone_number`, templateLimits.phone, errors, true) && !/^\+\d{6,15}$/.test(button.phone_number)) {
        (errors[`${field}.phone_number`] ??= []).push(`${field}.phone_number must be in E.164 form, e.g. +14155550123`);
      }
    } else if (button.type !== 'QUICK_REPLY') {
      (errors[`${field}.type`] ??= []).push(`${field}.type must be one of QUICK_REPLY, URL, PHONE_NUMBER`);
    }
  });
  if (urls > templateLimits.urlButtons) (errors.buttons ??= []).push(`buttons may include at most ${templateLimits.urlButtons} URL buttons`);
  if (phones > templateLimits.phoneButtons) (errors.buttons ??= []).push(`buttons may include at most ${templateLimits.phoneButtons} PHONE_NUMBER button`);
  // Meta requires quick replies grouped together, not interleaved with call-to-action buttons.
  const kinds = buttons.map((b) => (b.type === 'QUICK_REPLY' ? 'q' : 'c')).join('');
  if (/q+c+q|c+q+c/.test(kinds)) (errors.buttons ??= []).push('buttons must keep QUICK_REPLY buttons together, before or after the URL and PHONE_NUMBER buttons');
  for (const [key, value] of Object.entries(input.examples ?? {})) checkText(value, `examples.${key}`, templateLimits.example, errors, false);
  return errors;
}

/** The placeholders a send must fill, header first, then body, then URL buttons. */
export function placeholdersOf(components: TemplateComponents): Placeholder[] {
  const out: Placeholder[] = [];
  const distinct = (text: string) => [...new Set(numbersIn(text).map((p) => p.n).filter((n) => !Number.isNaN(n)))].sort((a, b) => a - b);
  if (components.header) for (const n of distinct(components.header)) out.push({ key: `header_${n}`, label: `Header {{${n}}}`, part: 'header', position: n });
  for (const n of distinct(components.body)) out.push({ key: String(n), label: `Body {{${n}}}`, part: 'body', position: n });
  (components.buttons ?? []).forEach((button, index) => {
    if (button.type === 'URL' && numbersIn(button.url).length > 0) {
      out.push({ key: `button_${index}`, label: `URL button "${button.text}" {{1}}`, part: 'button', position: index });
    }
  });
  return out;
}

export interface FilledTemplate {
  header?: string[];
  body?: string[];
  buttons?: Array<{ index: number; sub_type: 'url'; parameter: string }>;
}

/**
 * The parameter values for a send, or the placeholders left unfilled. A variable
 * counts as given when it is a non-empty string (Meta refuses empty parameters).
 */
export function fillTemplate(components: TemplateComponents, variables: Record<string, string>): { ok: true; values: FilledTemplate } | { ok: false; expected: string[]; missing: string[] } {
  const placeholders = placeholdersOf(components);
  const given = (key: string) => {
    const v = variables[key];
    return typeof v === 'string' && v.trim() !== '' ? v : undefined;
  };
  const missing = placeholders.filter((p) => given(p.key) === undefined).map((p) => p.key);
  if (missing.length > 0) return { ok: false, expected: placeholders.map((p) => p.key), missing };
  const values: FilledTemplate = {};
  const header = placeholders.filter((p) => p.part === 'header').map((p) => given(p.key)!);
  const body = placeholders.filter((p) => p.part === 'body').map((p) => given(p.key)!);
  const buttons = placeholders.filter((p) => p.part === 'button').map((p) => ({ index: p.position, sub_type: 'url' as const, parameter: given(p.key)! }));
  if (header.length > 0) values.header = header;
  if (body.length > 0) values.body = body;
  if (buttons.length > 0) values.buttons = buttons;
  return { ok: true, values };
}

/** Meta's template events mapped onto Nudge's three statuses (null: no change). */
export function statusOfMetaEvent(event: string): TemplateStatus | null {
  switch (event.toUpperCase()) {
    case 'APPROVED':
    case 'REINSTATED':
    case 'FLAGGED': // Still sendable while flagged; Meta pauses it if quality keeps falling.
      return 'APPROVED';
    case 'PENDING':
    case 'IN_APPEAL':
      return 'PENDING';
    case 'REJECTED':
    case 'DISABLED':
    case 'PAUSED':
    case 'PENDING_DELETION':
    case 'DELETED':
      return 'REJECTED';
    default:
      return null;
  }
}

/** The text a template renders to with these values, for history and previews. */
export function previewTemplate(components: TemplateComponents, variables: Record<string, string>): string {
  const fill = (text: string, prefix: string) => text.replace(placeholderPattern, (whole, raw: string) => variables[`${prefix}${raw}`] ?? whole);
  return [components.header ? fill(components.header, 'header_') : null, fill(components.body, ''), components.footer ?? null].filter((p) => p !== null).join('\n');
}
