/**
 * Merge tags: ONE renderer for every channel (WhatsApp and SMS text, email subject,
 * blocks and HTML, template variables, webhook URLs and bodies, contact updates).
 *
 * Syntax: `{{ path }}` with a dotted path (`{{event.alert.maxSpeed}}`, `{{items.0.sku}}`),
 * whitespace allowed inside the braces, and `{{path|fallback}}` where the fallback is
 * literal text used when the value is missing, null or "" (`{{event.duration.hours|a few}}`).
 * Anything between braces that is not a path (`{{#if x}}`, `{{ }}`) is left as written.
 *
 * @example
 * renderTemplate('Hi {{contact.first_name|there}}', { contact: { first_name: 'Ana' } }) // 'Hi Ana'
 */

export interface MergeScope {
  contact?: Record<string, unknown>;
  context?: Record<string, unknown>;
  event?: Record<string, unknown>;
  discount?: Record<string, unknown>;
  webhook?: Record<string, unknown>;
  reply?: Record<string, unknown>;
  session?: Record<string, unknown>;
  [root: string]: unknown;
}

export type MergeEscape = 'html' | 'json' | 'none';

export interface MergeTag {
  path: string;
  fallback?: string;
}

interface TagPart {
  path: string;
  segments: string[];
  fallback: string | undefined;
}

/** A template split once into literal text and tags, so rendering is a loop with no regex. */
export interface CompiledTemplate {
  parts: ReadonlyArray<string | TagPart>;
  tags: readonly MergeTag[];
}

/** A merge-tag path: identifier segments (digits allowed, for array items) joined by dots. */
const pathPattern = /^[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*$/;
// No `{` or `}` inside, so `{{{x}}}` and unbalanced braces stay literal around the inner tag.
const tagPattern = /\{\{([^{}]*)\}\}/g;

/**
 * Bare tags that users of similar products write, meaning the contact's field. The renderer
 * resolves them from the scope's root first (the interpreter puts them there) and falls back
 * to `contact.<field>`.
 */
export const bareAliases: Readonly<Record<string, string>> = {
  first_name: 'first_name',
  last_name: 'last_name',
  name: 'name',
  email: 'email',
  phone: 'phone',
  firstName: 'first_name',
  lastName: 'last_name',
};

const discountFields = new Set(['code', 'percentOff', 'amountOff', 'currency', 'expiresAt']);
const replyFields = new Set(['text', 'button_id']);
const sessionFields = new Set(['id', 'started_at']);
const webhookResultFields = new Set(['ok', 'status', 'body', 'error']);

// Bounded so a stream of distinct templates (say, per-contact bodies) cannot grow memory
// without limit: at most `maxEntries` templates and `maxChars` characters of source text.
const cache = new Map<string, CompiledTemplate>();
const maxEntries = 1000;
const maxChars = 8_000_000;
let cachedChars = 0;

function parseTemplate(text: string): CompiledTemplate {
  const parts: Array<string | TagPart> = [];
  const tags: MergeTag[] = [];
  let literal = '';
  let last = 0;
  tagPattern.lastIndex = 0;
  for (let match = tagPattern.exec(text); match !== null; match = tagPattern.exec(text)) {
    const inner = match[1]!;
    const bar = inner.indexOf('|');
    const path = (bar === -1 ? inner : inner.slice(0, bar)).trim();
    if (!pathPattern.test(path)) continue;
    const fallback = bar === -1 ? undefined : inner.slice(bar + 1).trim();
    literal += text.slice(last, match.index);
    if (literal !== '') parts.push(literal);
    literal = '';
    parts.push({ path, segments: path.split('.'), fallback });
    tags.push(fallback === undefined ? { path } : { path, fallback });
    last = match.index + match[0].length;
  }
  literal += text.slice(last);
  if (literal !== '') parts.push(literal);
  return { parts, tags };
}

/** Splits a template into literal text and tags; memoised in a bounded cache. */
export function compileTemplate(text: string): CompiledTemplate {
  const hit = cache.get(text);
  if (hit) return hit;
  const compiled = parseTemplate(text);
  if (text.length <= maxChars / 8) {
    while (cache.size >= maxEntries || (cache.size > 0 && cachedChars + text.length > maxChars)) {
      // Maps iterate in insertion order: the first key is the oldest entry.
      const oldest = cache.keys().next().value as string;
      cache.delete(oldest);
      cachedChars -= oldest.length;
    }
    cache.set(text, compiled);
    cachedChars += text.length;
  }
  return compiled;
}

/** Every well-formed tag in a text, in order (duplicates included). */
export function extractMergeTags(text: string): MergeTag[] {
  return compileTemplate(text).tags.map((t) => ({ ...t }));
}

function step(value: unknown, segment: string): unknown {
  if (value === null || value === undefined) return undefined;
  if (Array.isArray(value)) return /^\d+$/.test(segment) ? value[Number(segment)] : undefined;
  if (typeof value === 'object') return Object.hasOwn(value, segment) ? (value as Record<string, unknown>)[segment] : undefined;
  return undefined;
}

function walk(root: unknown, segments: readonly string[], from: number): unknown {
  let value = root;
  for (let i = from; i < segments.length && value !== undefined; i++) value = step(value, segments[i]!);
  return value;
}

/**
 * The value at a dotted path in the scope, or undefined. A bare alias (`first_name`,
 * `firstName`…) missing from the scope's root resolves to the contact's field.
 */
export function resolvePath(scope: MergeScope, path: string | readonly string[]): unknown {
  const segments = typeof path === 'string' ? path.split('.') : path;
  const first = segments[0] ?? '';
  const value = walk(scope, segments, 0);
  if (value === undefined && segments.length === 1 && Object.hasOwn(bareAliases, first) && !Object.hasOwn(scope, first)) {
    return step(scope.contact, bareAliases[first]!);
  }
  return value;
}

/** How a value reads in a message: numbers and booleans as text, objects and arrays as JSON. */
export function valueToText(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? '' : value.toISOString();
  try {
    return JSON.stringify(value) ?? '';
  } catch {
    return '';
  }
}

const htmlEntities: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(text: string): string {
  return /[&<>"']/.test(text) ? text.replace(/[&<>"']/g, (c) => htmlEntities[c]!) : text;
}

/** Safe between the quotes of a JSON string literal (and in a <script>: U+2028/9 escaped too). */
export function escapeJsonString(text: string): string {
  return JSON.stringify(text).slice(1, -1).replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

/**
 * Renders a template. Inserted values are escaped per `escape` (default `none`); the
 * template's own text and fallbacks are the author's and are never escaped. Missing
 * values with no fallback render as "".
 */
export function renderTemplate(text: string, scope: MergeScope, options?: { escape?: MergeEscape }): string {
  if (!text.includes('{{')) return text;
  const escape = options?.escape ?? 'none';
  const { parts } = compileTemplate(text);
  let out = '';
  for (const part of parts) {
    if (typeof part === 'string') {
      out += part;
      continue;
    }
    const value = valueToText(resolvePath(scope, part.segments));
    if (value === '') {
      out += part.fallback ?? '';
    } else if (escape === 'html') {
      out += escapeHtml(value);
    } else if (escape === 'json') {
      out += escapeJsonString(value);
    } else {
      out += value;
    }
  }
  return out;
}

export interface MergeTagCheckOptions {
  /** The names webhook results are saved under (`save_as`, or the node id); when given, `webhook.<name>` must be one. */
  webhookNames?: ReadonlySet<string>;
}

/** Why a path is not a known merge tag, or null when it is. */
export function mergeTagProblem(path: string, options: MergeTagCheckOptions = {}): string | null {
  if (!pathPattern.test(path)) return 'is not a dotted path';
  const segments = path.split('.');
  const [root, second, third] = segments;
  const depth = segments.length;
  switch (root) {
    case 'contact':
    case 'context':
    case 'event':
      return depth >= 2 ? null : `needs a field, such as {{${root}.${root === 'event' ? 'city' : 'first_name'}}}`;
    case 'discount':
      return depth === 2 && discountFields.has(second!) ? null : `discount tags are ${[...discountFields].map((f) => `discount.${f}`).join(', ')}`;
    case 'reply':
      return depth === 2 && replyFields.has(second!) ? null : 'reply tags are reply.text and reply.button_id';
    case 'session':
      return depth === 2 && sessionFields.has(second!) ? null : 'session tags are session.id and session.started_at';
    case 'workspace':
      return depth === 2 && second === 'name' ? null : 'the workspace tag is workspace.name';
    case 'unsubscribe_url':
      return depth === 1 ? null : 'unsubscribe_url has no fields';
    case 'webhook': {
      if (depth < 2) return 'needs a webhook name, such as {{webhook.<save_as>.status}}';
      if (options.webhookNames && !options.webhookNames.has(second!)) return `no webhook node saves its result as "${second}"`;
      if (depth === 2) return null;
      if (!webhookResultFields.has(third!)) return 'webhook results have ok, status, body and error';
      return depth === 3 || third === 'body' ? null : `webhook.${second}.${third} has no fields`;
    }
    default:
      if (depth === 1 && Object.hasOwn(bareAliases, root!)) return null;
      return 'is not a known merge tag';
  }
}

/**
 * Known roots: contact.*, context.*, event.*, discount.{code,percentOff,amountOff,currency,expiresAt},
 * webhook.<name>.*, reply.{text,button_id}, session.{id,started_at}, unsubscribe_url, workspace.name,
 * and the bare aliases first_name, last_name, name, email, phone, firstName, lastName.
 */
export function isKnownMergeTag(path: string, options: MergeTagCheckOptions = {}): boolean {
  return mergeTagProblem(path, options) === null;
}
