import { isPlainObject } from '../domain/json.js';

/**
 * Writes the emails of a sequence created with a `goal` (the create-sequence body's
 * "AI generation" option) by asking an OpenAI-compatible chat-completions endpoint
 * (`POST {baseUrl}/chat/completions`, Bearer key, JSON mode), over `fetch`: no SDK, so any
 * compatible server works — OpenAI, a gateway, or a local model server with no key.
 *
 * Outcomes, as values (never thrown):
 * - 200 with content that parses into at least one valid email → the emails, the model
 *   that answered and the token usage;
 * - 200 whose content cannot be parsed (prose, truncated JSON, a refusal) →
 *   `unparseable_response`, retryable: models are not deterministic, the caller retries a
 *   bounded number of times;
 * - 408, 409, 429, 5xx, network errors and timeouts → retryable, honouring `Retry-After`;
 * - other 4xx (bad key, unknown model, rejected request) and 429 `insufficient_quota` →
 *   permanent, with the endpoint's own message.
 *
 * @example
 * const outcome = await writeSequenceEmails(
 *   { baseUrl: 'https://api.openai.com/v1', apiKey: process.env.OPENAI_API_KEY ?? null, model: 'gpt-4o-mini' },
 *   { goal: 'Welcome new users and help them get started', emailCount: 5, sequenceName: 'Onboarding', trigger: 'contact_added', brand: { name: 'Acme' } },
 * );
 * if (outcome.ok) outcome.emails.forEach((email) => console.log(email.subject, email.delay));
 */

export interface AiSettings {
  /** Including any `/v1` path, e.g. `https://api.openai.com/v1` or `http://127.0.0.1:11434/v1`. */
  baseUrl: string;
  /** Null for local model servers that take no key: no Authorization header is sent. */
  apiKey: string | null;
  model: string;
  /** Default 60 s: writing ten emails takes a model tens of seconds. */
  timeoutMs?: number;
}

export interface WriteSequenceRequest {
  goal: string;
  emailCount: number;
  sequenceName: string;
  /** The sequence's trigger type: contact_added, tag_added, segment_entered, event_received, inactivity or frequency. */
  trigger: string;
  brand: { name: string; description?: string | null };
  eventName?: string | null;
}

export interface WrittenEmail {
  subject: string;
  previewText: string | null;
  html: string;
  /** Wait after the previous email; null for the first, which goes out when the trigger fires. */
  delay: { days?: number; hours?: number } | null;
}

export type WriteOutcome =
  | { ok: true; emails: WrittenEmail[]; model: string; usage: { promptTokens: number; completionTokens: number } | null }
  | { ok: false; retryable: boolean; code: string; message: string; retryAfterMs?: number };

const maxEmailCount = 10;
const maxSubjectLength = 200;
const maxHtmlBytes = 100 * 1024;
const maxDelayDays = 365;
const defaultTimeoutMs = 60_000;

const triggerDescriptions: Record<string, string> = {
  contact_added: 'a contact is added (for example, signs up)',
  tag_added: 'a tag is added to a contact',
  segment_entered: 'a contact enters a segment',
  event_received: 'the app reports an event for a contact',
  inactivity: 'a contact has been inactive for a while',
  frequency: 'a contact performs an event a number of times',
};

/**
 * The chat messages that ask for the emails. The answer format is spelled out in the system
 * message: JSON mode only guarantees *some* JSON object, and OpenAI rejects JSON mode unless
 * the messages mention JSON.
 */
export function buildSequencePrompt(request: WriteSequenceRequest): Array<{ role: 'system' | 'user'; content: string }> {
  const eventTags = request.trigger === 'event_received';
  const system = [
    'You write short, concrete marketing and lifecycle emails for a sequence sent by Nudge.',
    'Answer with one JSON object and nothing else, in this shape:',
    '{"emails":[{"subject":"...","previewText":"...","html":"...","delayDays":0}]}',
    'Rules:',
    `- Write exactly the number of emails asked for (at most ${maxEmailCount}), in sending order.`,
    '- delayDays is the number of days to wait after the previous email: 0 for the first email, then 1 to 7 for later ones, spaced to suit the goal.',
    '- subject: plain text, under 80 characters, no HTML. previewText: plain text, under 120 characters.',
    '- html: the body only, using just these tags: h1, h2, p, a, ul, li, strong, em, br. No html, head, body, style, script, images, tables or inline styles.',
    '- Keep each email short (under 150 words), specific to the goal and the brand, with one clear call to action.',
    '- Personalise with merge tags, always with a fallback after a bar: {{contact.first_name|there}}. Other contact fields: {{contact.last_name}}, {{contact.email}}.',
    eventTags
      ? `- The sequence starts from an event${request.eventName ? ` (${request.eventName})` : ''}: its properties are available as {{event.<property>}}, e.g. {{event.order_id|your order}}. Use them only where they clearly fit, with a fallback.`
      : '- Do not use {{event.…}} merge tags: this sequence is not started by an event.',
    '- Do not invent URLs, prices, discounts or facts the brief does not give; leave a link out rather than guess it.',
    '- Do not add an unsubscribe link, address or footer: Nudge adds one.',
  ].join('\n');
  const trigger = triggerDescriptions[request.trigger] ?? request.trigger;
  const user = [
    `Brand: ${request.brand.name}`,
    ...(request.brand.description ? [`About the brand: ${request.brand.description}`] : []),
    `Sequence: ${request.sequenceName}`,
    `Starts when: ${trigger}${request.eventName ? ` (event "${request.eventName}")` : ''}`,
    `Goal: ${request.goal}`,
    `Write exactly ${request.emailCount} emails as the JSON object described.`,
  ].join('\n');
  return [
    { role: 'system', content: system },
    { role: 'user', content: user },
  ];
}

/**
 * The one JSON object in a model's answer. JSON mode returns bare JSON, but servers without
 * it (and some models with it) wrap it in a ```json fence or a sentence of prose.
 */
function extractJsonObject(content: string): unknown {
  const candidates = [content.trim()];
  const fenced = /```[a-zA-Z]*\s*([\s\S]*?)```/.exec(content);
  if (fenced) candidates.push(fenced[1]!.trim());
  const first = content.indexOf('{');
  const last = content.lastIndexOf('}');
  if (first !== -1 && last > first) candidates.push(content.slice(first, last + 1));
  for (const candidate of candidates) {
    try {
      return JSON.parse(candidate) as unknown;
    } catch {
      // Try the next, narrower reading.
    }
  }
  return undefined;
}

/** Elements dropped with everything inside them: their content is code or document metadata, never email text. */
const droppedElements = new Set(['script', 'style', 'head', 'title', 'iframe', 'object', 'applet', 'noscript', 'template', 'svg', 'math', 'textarea', 'select', 'frameset']);
/** Tags dropped on their own (void, or wrappers whose text may stay). */
const droppedTags = new Set(['meta', 'link', 'base', 'embed', 'frame', 'input', 'form', 'button']);
const urlAttributes = new Set(['href', 'src', 'action', 'formaction', 'background', 'poster', 'xlink:href']);
const tagPattern = /<(\/?)([A-Za-z][A-Za-z0-9:-]*)((?:[^>"']|"[^"]*"|'[^']*')*)>/g;
const attributePattern = /([^\s"'>/=]+)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s"'>]+))?/g;

/** The attribute value as a browser would read its URL scheme: entities decoded, whitespace and control characters gone. */
function decodeForCheck(value: string): string {
  const decoded = value
    .replace(/&#x([0-9a-f]+);?/gi, (_, hex: string) => String.fromCodePoint(Number.parseInt(hex, 16) % 0x110000))
    .replace(/&#(\d+);?/g, (_, decimal: string) => String.fromCodePoint(Number(decimal) % 0x110000))
    .replace(/&colon;/gi, ':')
    .replace(/&(tab|newline);/gi, '');
  return Array.from(decoded)
    .filter((char) => char.codePointAt(0)! > 0x20)
    .join('')
    .toLowerCase();
}

function cleanAttributes(source: string): string {
  let kept = '';
  attributePattern.lastIndex = 0;
  for (let match = attributePattern.exec(source); match !== null; match = attributePattern.exec(source)) {
    const name = match[1]!.toLowerCase();
    const raw = match[2];
    if (name.startsWith('on')) continue;
    const value = raw === undefined ? '' : raw.replace(/^["']|["']$/g, '');
    const decoded = decodeForCheck(value);
    if (urlAttributes.has(name) && /^(javascript|vbscript|data):/.test(decoded) && !(name === 'src' && decoded.startsWith('data:image/'))) continue;
    if (name === 'style' && /expression\(|javascript:|url\(/.test(decoded)) continue;
    kept += raw === undefined ? ` ${match[1]!}` : ` ${match[1]!}=${raw.startsWith('"') || raw.startsWith("'") ? raw : `"${raw}"`}`;
  }
  return kept;
}

/**
 * Removes what could run or restyle the page from a model's HTML: script, style and similar
 * elements with their content, event-handler attributes and javascript: URLs. The model is
 * asked for a handful of plain tags, but its answer is untrusted text that is stored as an
 * email draft, shown in previews and sent. A tag scanner rather than a DOM parser, because
 * channels depend on nothing but the domain and Node; unknown tags are kept, since the
 * email renderer and the blocks converter already handle arbitrary markup.
 */
function sanitizeWrittenHtml(html: string): string {
  let output = '';
  let position = 0;
  const withoutComments = html.replace(/<!--[\s\S]*?(?:-->|$)|<!\[CDATA\[[\s\S]*?(?:\]\]>|$)|<![^>]*>/g, '');
  while (position < withoutComments.length) {
    tagPattern.lastIndex = position;
    const match = tagPattern.exec(withoutComments);
    if (!match) {
      output += withoutComments.slice(position);
      break;
    }
    output += withoutComments.slice(position, match.index);
    position = match.index + match[0].length;
    const closing = match[1] === '/';
    const name = match[2]!.toLowerCase();
    if (droppedElements.has(name)) {
      if (closing) continue;
      // Skip to the element's end tag; with none, the rest of the text is inside it (as a browser reads it).
      const end = new RegExp(`</${name}(?=[\\s/>])[^>]*>`, 'ig');
      end.lastIndex = position;
      const close = end.exec(withoutComments);
      position = close ? close.index + close[0].length : withoutComments.length;
      continue;
    }
    if (droppedTags.has(name)) continue;
    output += closing ? `</${name}>` : `<${name}${cleanAttributes(match[3]!)}${/\/\s*$/.test(match[3]!) ? ' /' : ''}>`;
  }
  return output;
}

function text(value: unknown): string | null {
  return typeof value === 'string' && value.trim() !== '' ? value.trim() : null;
}

function delayDaysOf(value: unknown): number | null {
  const days = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  return typeof days === 'number' && Number.isFinite(days) && days >= 0 && days <= maxDelayDays ? days : null;
}

/** Whole days stay days; a fraction of a day (0.5) becomes hours, the finest unit a step's delay takes here. */
function toDelay(days: number): { days?: number; hours?: number } {
  const whole = Math.floor(days);
  const hours = Math.round((days - whole) * 24);
  if (hours === 24) return { days: whole + 1 };
  if (hours === 0) return { days: whole };
  return whole === 0 ? { hours } : { days: whole, hours };
}

/**
 * Reads the model's answer into emails. Each email needs a subject (at most 200 characters)
 * and HTML (at most 100 KB after sanitising); one that lacks either is dropped rather than
 * failing the whole answer, since the rest are still a usable draft. `delayDays` outside
 * 0–365 or missing counts as 0 for the first email and 1 day for later ones. Extra emails
 * beyond `emailCount` are cut. Fails when the content is not JSON, has no `emails` array or
 * leaves no valid email.
 *
 * @example
 * parseWrittenEmails('{"emails":[{"subject":"Welcome","html":"<p>Hi {{contact.first_name|there}}</p>","delayDays":0}]}', 5)
 * // { ok: true, emails: [{ subject: 'Welcome', previewText: null, html: '<p>Hi {{contact.first_name|there}}</p>', delay: null }] }
 */
export function parseWrittenEmails(content: string, emailCount: number): { ok: true; emails: WrittenEmail[] } | { ok: false; message: string } {
  const parsed = extractJsonObject(content);
  if (parsed === undefined) return { ok: false, message: `The answer is not JSON: ${JSON.stringify(content.slice(0, 120))}` };
  if (!isPlainObject(parsed) || !Array.isArray(parsed.emails)) return { ok: false, message: 'The answer has no "emails" array' };
  const emails: WrittenEmail[] = [];
  const problems: string[] = [];
  const limit = Math.max(1, Math.floor(emailCount));
  for (const [index, item] of parsed.emails.entries()) {
    if (emails.length >= limit) break;
    if (!isPlainObject(item)) {
      problems.push(`emails[${index}] is not an object`);
      continue;
    }
    const subject = text(item.subject);
    if (subject === null || subject.length > maxSubjectLength) {
      problems.push(`emails[${index}] has ${subject === null ? 'no subject' : `a subject over ${maxSubjectLength} characters`}`);
      continue;
    }
    // Size checked before sanitising too: the tag scanner is not meant for megabytes of text.
    const source = typeof item.html === 'string' && Buffer.byteLength(item.html, 'utf8') <= maxHtmlBytes ? item.html : null;
    const html = source === null ? null : text(sanitizeWrittenHtml(source));
    if (html === null) {
      problems.push(`emails[${index}] has ${typeof item.html === 'string' && source === null ? 'html over 100 KB' : 'no html'}`);
      continue;
    }
    const first = emails.length === 0;
    const days = delayDaysOf(item.delayDays) ?? (first ? 0 : 1);
    emails.push({ subject, previewText: text(item.previewText), html, delay: first ? null : toDelay(days) });
  }
  if (emails.length === 0) {
    return { ok: false, message: `The answer has no usable email${problems.length > 0 ? `: ${problems.slice(0, 3).join('; ')}` : ' (the "emails" array is empty)'}` };
  }
  return { ok: true, emails };
}

/** Parses Retry-After (seconds or an HTTP date) into milliseconds. */
function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const seconds = value.trim();
  if (/^\d+(\.\d+)?$/.test(seconds)) return Math.round(Number(seconds) * 1000);
  const at = Date.parse(seconds);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** OpenAI's error body: `{ "error": { "message", "type", "param", "code" } }`; compatible servers mostly follow it. */
function errorOf(body: unknown): { message: string | null; code: string | null; type: string | null } {
  const error = isPlainObject(body) ? body.error : undefined;
  if (typeof error === 'string') return { message: error, code: null, type: null };
  if (!isPlainObject(error)) return { message: null, code: null, type: null };
  const nonEmpty = (value: unknown) => (typeof value === 'string' && value !== '' ? value : null);
  return { message: nonEmpty(error.message), code: nonEmpty(error.code), type: nonEmpty(error.type) };
}

function usageOf(body: Record<string, unknown>): { promptTokens: number; completionTokens: number } | null {
  const usage = body.usage;
  if (!isPlainObject(usage) || typeof usage.prompt_tokens !== 'number' || typeof usage.completion_tokens !== 'number') return null;
  return { promptTokens: usage.prompt_tokens, completionTokens: usage.completion_tokens };
}

/**
 * Asks the endpoint for the sequence's emails and reads them. Never throws for what an
 * endpoint can do (refuse, time out, answer nonsense): see the module comment for outcomes.
 */
export async function writeSequenceEmails(settings: AiSettings, request: WriteSequenceRequest): Promise<WriteOutcome> {
  if (!Number.isInteger(request.emailCount) || request.emailCount < 1 || request.emailCount > maxEmailCount) {
    return { ok: false, retryable: false, code: 'invalid_request', message: `emailCount must be a whole number from 1 to ${maxEmailCount}` };
  }
  if (request.goal.trim() === '') return { ok: false, retryable: false, code: 'invalid_request', message: 'The goal is empty' };

  const endpoint = `${settings.baseUrl.replace(/\/+$/, '')}/chat/completions`;
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
  if (settings.apiKey) headers.authorization = `Bearer ${settings.apiKey}`;
  let response: Response;
  let raw: string;
  try {
    response = await fetch(endpoint, {
      method: 'POST',
      headers,
      body: JSON.stringify({
        model: settings.model,
        messages: buildSequencePrompt(request),
        response_format: { type: 'json_object' },
        // Some variety between retries of an unparseable answer, without drifting off the format.
        temperature: 0.7,
      }),
      signal: AbortSignal.timeout(settings.timeoutMs ?? defaultTimeoutMs),
    });
    // Inside the try: the timeout also covers a body that stops arriving half-way.
    raw = await response.text();
  } catch (error) {
    const timedOut = error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError');
    return { ok: false, retryable: true, code: timedOut ? 'timeout' : 'network_error', message: `The AI endpoint ${timedOut ? 'did not answer in time' : 'could not be reached'}: ${error instanceof Error ? error.message : String(error)}` };
  }

  let body: unknown;
  try {
    body = JSON.parse(raw) as unknown;
  } catch {
    // A proxy's HTML error page: judged by the status code alone.
  }

  if (response.status !== 200) {
    const error = errorOf(body);
    const code = error.code ?? `http_${response.status}`;
    const message = `AI endpoint ${response.status}${error.type ? ` (${error.type})` : ''}: ${error.message ?? (raw.slice(0, 200) || response.statusText)}`;
    // OpenAI answers 429 both for "slow down" and for "out of credit"; waiting cures only the first.
    if (code === 'insufficient_quota') return { ok: false, retryable: false, code, message };
    if (response.status === 408 || response.status === 409 || response.status === 429 || response.status >= 500) {
      const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'));
      return { ok: false, retryable: true, code, message, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
    }
    return { ok: false, retryable: false, code, message };
  }

  const choice = isPlainObject(body) && Array.isArray(body.choices) ? (body.choices[0] as unknown) : undefined;
  const message = isPlainObject(choice) && isPlainObject(choice.message) ? choice.message : undefined;
  if (!isPlainObject(body) || !message) {
    return { ok: false, retryable: true, code: 'bad_response', message: `The AI endpoint answered 200 without a chat completion: ${raw.slice(0, 200)}` };
  }
  const finish = isPlainObject(choice) && typeof choice.finish_reason === 'string' ? choice.finish_reason : null;
  if (typeof message.content !== 'string') {
    const refusal = typeof message.refusal === 'string' ? `: ${message.refusal}` : '';
    return { ok: false, retryable: true, code: 'unparseable_response', message: `The model answered without text${refusal}` };
  }
  const parsed = parseWrittenEmails(message.content, request.emailCount);
  if (!parsed.ok) {
    const cut = finish === 'length' ? ' (the answer was cut off at the token limit)' : '';
    return { ok: false, retryable: true, code: 'unparseable_response', message: `${parsed.message}${cut}` };
  }
  return { ok: true, emails: parsed.emails, model: typeof body.model === 'string' ? body.model : settings.model, usage: usageOf(body) };
}
