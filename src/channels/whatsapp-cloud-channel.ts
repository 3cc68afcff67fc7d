import { messageReference, neverConnected, type ChannelAdapter, type OutboundMessage, type RenderedContent, type SendResult } from './channel.js';

/**
 * WhatsApp Business Cloud API (Meta Graph API) over `fetch`. One instance per phone
 * number, built from plain settings: it never reads the database, so the registry
 * that owns the settings decides when to rebuild it.
 *
 * Wire format and limits: `shared/reference/meta-business-messaging-api_v23.0.yaml`
 * (`POST /{Version}/{Phone-Number-ID}/messages`); the tests compare every body with
 * the request examples copied next to it.
 */
export interface WhatsAppCloudConfig {
  phoneNumberId: string;
  accessToken: string;
  /** Graph API version, default `v23.0`. */
  graphVersion?: string;
  /** Default `https://graph.facebook.com`; tests point it at a local fake. */
  baseUrl?: string;
  /** Per request, default 10 s. A timeout is retryable. */
  timeoutMs?: number;
}

export const defaultGraphVersion = 'v23.0';
export const defaultGraphBaseUrl = 'https://graph.facebook.com';

/** Meta's published limits for the message kinds Nudge sends. */
export const whatsappLimits = {
  textBody: 4096,
  interactiveBody: 1024,
  headerText: 60,
  footerText: 60,
  replyButtons: 3,
  buttonId: 256,
  buttonTitle: 20,
  listButton: 20,
  listSections: 10,
  listRows: 10,
  rowId: 200,
  rowTitle: 24,
  rowDescription: 72,
  sectionTitle: 24,
  templateName: 512,
  templateParameter: 1024,
  quickReplyPayload: 128,
} as const;

export interface ContentProblem {
  /** The content field, dotted: `buttons.1.title`, `sections.0.rows.3.description`. */
  field: string;
  problem: string;
}

const length = (s: string) => [...s].length;

/**
 * What Meta would refuse in this content, before it leaves: every problem with the
 * field it concerns, so a request or a definition is answered with a 422 naming it.
 * An empty array means the content is within Meta's limits.
 *
 * @example
 * validateWhatsAppContent({ kind: 'buttons', text: 'Ok?', buttons: [{ id: 'y', title: 'A title longer than twenty' }] });
 * // → [{ field: 'buttons.0.title', problem: 'must be at most 20 characters (got 26)' }]
 */
export function validateWhatsAppContent(content: RenderedContent): ContentProblem[] {
  const problems: ContentProblem[] = [];
  const add = (field: string, problem: string) => problems.push({ field, problem });
  const text = (field: string, value: string | undefined, max: number, required: boolean) => {
    if (value === undefined || value === '') {
      if (required) add(field, 'is required');
      return;
    }
    if (value.trim() === '') add(field, 'must not be blank');
    else if (length(value) > max) add(field, `must be at most ${max} characters (got ${length(value)})`);
  };
  switch (content.kind) {
    case 'text':
      text('text', content.text, whatsappLimits.textBody, true);
      break;
    case 'template': {
      text('name', content.name, whatsappLimits.templateName, true);
      text('language', content.language, 20, true);
      const c = content.components;
      c.header?.forEach((v, i) => text(`components.header.${i}`, v, whatsappLimits.templateParameter, true));
      c.body?.forEach((v, i) => text(`components.body.${i}`, v, whatsappLimits.templateParameter, true));
      c.buttons?.forEach((b, i) => {
        if (!Number.isInteger(b.index) || b.index < 0 || b.index > 9) add(`components.buttons.${i}.index`, 'must be a button position from 0 to 9');
        text(`components.buttons.${i}.parameter`, b.parameter, b.sub_type === 'quick_reply' ? whatsappLimits.quickReplyPayload : 2000, true);
      });
      break;
    }
    case 'buttons': {
      text('text', content.text, whatsappLimits.interactiveBody, true);
      text('header', content.header, whatsappLimits.headerText, false);
      text('footer', content.footer, whatsappLimits.footerText, false);
      if (content.buttons.length === 0) add('buttons', 'must have at least one button');
      if (content.buttons.length > whatsappLimits.replyButtons) add('buttons', `must have at most ${whatsappLimits.replyButtons} reply buttons (got ${content.buttons.length})`);
      const ids = new Set<string>();
      const titles = new Set<string>();
      content.buttons.forEach((b, i) => {
        text(`buttons.${i}.id`, b.id, whatsappLimits.buttonId, true);
        text(`buttons.${i}.title`, b.title, whatsappLimits.buttonTitle, true);
        if (ids.has(b.id)) add(`buttons.${i}.id`, `repeats the id "${b.id}"; button ids must be unique`);
        if (titles.has(b.title)) add(`buttons.${i}.title`, `repeats the title "${b.title}"; button titles must be unique`);
        ids.add(b.id);
        titles.add(b.title);
      });
      break;
    }
    case 'list': {
      text('text', content.text, whatsappLimits.interactiveBody, true);
      text('header', content.header, whatsappLimits.headerText, false);
      text('footer', content.footer, whatsappLimits.footerText, false);
      text('button', content.button, whatsappLimits.listButton, true);
      if (content.sections.length === 0) add('sections', 'must have at least one section');
      if (content.sections.length > whatsappLimits.listSections) add('sections', `must have at most ${whatsappLimits.listSections} sections (got ${content.sections.length})`);
      const rows = content.sections.reduce((n, s) => n + s.rows.length, 0);
      if (rows > whatsappLimits.listRows) add('sections', `must have at most ${whatsappLimits.listRows} rows in all (got ${rows})`);
      const ids = new Set<string>();
      content.sections.forEach((section, s) => {
        text(`sections.${s}.title`, section.title, whatsappLimits.sectionTitle, content.sections.length > 1);
        if (section.rows.length === 0) add(`sections.${s}.rows`, 'must have at least one row');
        section.rows.forEach((row, r) => {
          const field = `sections.${s}.rows.${r}`;
          text(`${field}.id`, row.id, whatsappLimits.rowId, true);
          text(`${field}.title`, row.title, whatsappLimits.rowTitle, true);
          text(`${field}.description`, row.description, whatsappLimits.rowDescription, false);
          if (ids.has(row.id)) add(`${field}.id`, `repeats the id "${row.id}"; row ids must be unique`);
          ids.add(row.id);
        });
      });
      break;
    }
    case 'email':
      add('kind', 'email content cannot be sent over WhatsApp');
      break;
  }
  return problems;
}

/** Meta's `to`: the E.164 number without its `+`. */
function waId(to: string): string {
  return to.replace(/^\+/, '');
}

/**
 * The JSON body Meta's `/messages` endpoint takes for this content, exactly in its
 * wire format. Pure; assumes the content passed `validateWhatsAppContent`.
 *
 * @example
 * buildWhatsAppBody({ kind: 'text', text: 'Hi' }, '+14155550123');
 * // → { messaging_product: 'whatsapp', recipient_type: 'individual', to: '14155550123', type: 'text', text: { preview_url: false, body: 'Hi' } }
 */
export function buildWhatsAppBody(content: RenderedContent, to: string, reference?: string): Record<string, unknown> {
  // Meta echoes biz_opaque_callback_data in the message's status webhooks: it carries
  // Nudge's message id, so a send whose answer was lost can still be matched.
  const base = { messaging_product: 'whatsapp', recipient_type: 'individual', to: waId(to), ...(reference ? { biz_opaque_callback_data: reference } : {}) };
  switch (content.kind) {
    case 'text':
      // Link previews only when there is a link: Meta fetches the page otherwise for nothing.
      return { ...base, type: 'text', text: { preview_url: /https?:\/\/\S/.test(content.text), body: content.text } };
    case 'template': {
      const components: Array<Record<string, unknown>> = [];
      const c = content.components;
      if (c.header && c.header.length > 0) components.push({ type: 'header', parameters: c.header.map((text) => ({ type: 'text', text })) });
      if (c.body && c.body.length > 0) components.push({ type: 'body', parameters: c.body.map((text) => ({ type: 'text', text })) });
      for (const b of c.buttons ?? []) {
        components.push({
          type: 'button',
          sub_type: b.sub_type,
          // Meta wants the button's position as a string.
          index: String(b.index),
          parameters: [b.sub_type === 'quick_reply' ? { type: 'payload', payload: b.parameter } : { type: 'text', text: b.parameter }],
        });
      }
      return {
        ...base,
        type: 'template',
        template: { name: content.name, language: { code: content.language }, ...(components.length > 0 ? { components } : {}) },
      };
    }
    case 'buttons':
      return {
        ...base,
        type: 'interactive',
        interactive: {
          type: 'button',
          ...(content.header ? { header: { type: 'text', text: content.header } } : {}),
          body: { text: content.text },
          ...(content.footer ? { footer: { text: content.footer } } : {}),
          action: { buttons: content.buttons.map((b) => ({ type: 'reply', reply: { id: b.id, title: b.title } })) },
        },
      };
    case 'list':
      return {
        ...base,
        type: 'interactive',
        interactive: {
          type: 'list',
          ...(content.header ? { header: { type: 'text', text: content.header } } : {}),
          body: { text: content.text },
          ...(content.footer ? { footer: { text: content.footer } } : {}),
          action: {
            button: content.button,
            sections: content.sections.map((s) => ({
              ...(s.title ? { title: s.title } : {}),
              rows: s.rows.map((r) => ({ id: r.id, title: r.title, ...(r.description ? { description: r.description } : {}) })),
            })),
          },
        },
      };
    case 'email':
      throw new Error('email content cannot be sent over WhatsApp');
  }
}

/** Meta's error body: `{ error: { message, type, code, error_subcode, error_data: { details }, fbtrace_id } }`. */
export interface GraphError {
  message?: string;
  type?: string;
  code?: number;
  error_subcode?: number;
  error_data?: { details?: string };
  fbtrace_id?: string;
}

/** Error codes worth a retry: throughput, pair rate, spam rate, transient and unknown errors. */
const retryableCodes = new Set([1, 2, 4, 17, 341, 80007, 130429, 131000, 131016, 131048, 131056, 133004]);
/** The recipient cannot receive this: not a WhatsApp user, not a valid number, or our own number. */
const recipientCodes = new Set([131026, 131030, 131021, 131045]);

/**
 * Maps a failed Graph API answer to a send result. Meta's error code decides before
 * the HTTP status: 131056 (pair rate limit) arrives as a 400 but is retryable. Auth
 * failures carry `authFailure` so the caller can show them in the channel status.
 */
export function mapGraphError(status: number, error: GraphError | undefined, retryAfterMs?: number): Extract<SendResult, { ok: false }> {
  const code = typeof error?.code === 'number' ? error.code : undefined;
  const detail = error?.error_data?.details;
  const metaMessage = [error?.message, detail].filter((s): s is string => typeof s === 'string' && s !== '').join(': ') || `HTTP ${status}`;
  const retryable = (message: string, codeText: string) => ({ ok: false as const, retryable: true, code: codeText, message, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) });
  const permanent = (message: string, codeText: string, extra: { authFailure?: boolean } = {}) => ({ ok: false as const, retryable: false, code: codeText, message, ...extra });

  if (code !== undefined) {
    const c = String(code);
    if (code === 130429) return retryable(`WhatsApp throughput limit reached (130429): ${metaMessage}`, c);
    if (code === 131056) return retryable(`Too many messages to this recipient in a short time (131056): ${metaMessage}`, c);
    if (retryableCodes.has(code)) return retryable(`WhatsApp temporary error (${code}): ${metaMessage}`, c);
    if (code === 131047) return permanent(`Outside the 24-hour customer service window: only templates may be sent (131047): ${metaMessage}`, c);
    if (recipientCodes.has(code)) return permanent(`The recipient cannot receive WhatsApp messages (${code}): ${metaMessage}`, c);
    if (code >= 132000 && code <= 132069) return permanent(`Template error (${code}): ${metaMessage}`, c);
    if (code === 190 || code === 10 || (code >= 200 && code <= 299) || status === 401 || status === 403) {
      return permanent(`WhatsApp refused the access token or its permissions (${code}): ${metaMessage}; update the WhatsApp settings`, c, { authFailure: true });
    }
    if (code === 100) return permanent(`Invalid parameter (100): ${metaMessage}`, c);
    if (status === 429 || status >= 500) return retryable(`WhatsApp error (${code}, HTTP ${status}): ${metaMessage}`, c);
    return permanent(`WhatsApp refused the message (${code}): ${metaMessage}`, c);
  }
  if (status === 401 || status === 403) return permanent(`WhatsApp refused the access token (HTTP ${status}): ${metaMessage}`, `http_${status}`, { authFailure: true });
  if (status === 429 || status >= 500) return retryable(`WhatsApp is unavailable (HTTP ${status}): ${metaMessage}`, `http_${status}`);
  return permanent(`WhatsApp refused the message (HTTP ${status}): ${metaMessage}`, `http_${status}`);
}

/** `Retry-After` as seconds or an HTTP date, in milliseconds from `now`. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** A Graph API call: the parsed JSON (or null), the status, and `Retry-After`; network failures as values. */
export type GraphResponse = { ok: true; status: number; body: unknown; retryAfterMs?: number } | { ok: false; timeout: boolean; message: string };

export async function callGraph(url: string, init: { method: string; accessToken: string; body?: unknown; timeoutMs?: number }): Promise<GraphResponse> {
  try {
    const response = await fetch(url, {
      method: init.method,
      headers: { authorization: `Bearer ${init.accessToken}`, ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}), accept: 'application/json' },
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
      signal: AbortSignal.timeout(init.timeoutMs ?? 10_000),
    });
    const text = await response.text();
    let body: unknown = null;
    try {
      body = text === '' ? null : JSON.parse(text);
    } catch {
      body = null;
    }
    const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'));
    return { ok: true, status: response.status, body, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
  } catch (error) {
    const e = error as Error;
    const timeout = e.name === 'TimeoutError' || e.name === 'AbortError';
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    return { ok: false, timeout, message: timeout ? 'timed out' : (cause?.code ?? cause?.message ?? e.message) };
  }
}

export function graphErrorOf(body: unknown): GraphError | undefined {
  if (body && typeof body === 'object' && 'error' in body) {
    const error = (body as { error: unknown }).error;
    if (error && typeof error === 'object') return error as GraphError;
  }
  return undefined;
}

export class WhatsAppCloudChannel implements ChannelAdapter {
  readonly provider = 'whatsapp-cloud';
  private readonly url: string;

  constructor(private readonly config: WhatsAppCloudConfig) {
    const base = (config.baseUrl ?? defaultGraphBaseUrl).replace(/\/+$/, '');
    this.url = `${base}/${config.graphVersion ?? defaultGraphVersion}/${encodeURIComponent(config.phoneNumberId)}/messages`;
  }

  async send(message: OutboundMessage): Promise<SendResult> {
    const problems = validateWhatsAppContent(message.content);
    if (problems.length > 0) {
      return { ok: false, retryable: false, code: 'invalid_content', message: problems.map((p) => `${p.field} ${p.problem}`).join('; ') };
    }
    if (!/^\+?\d{6,15}$/.test(message.to)) {
      return { ok: false, retryable: false, code: 'invalid_recipient', message: `"${message.to}" is not a phone number WhatsApp can reach` };
    }
    const response = await callGraph(this.url, {
      method: 'POST',
      accessToken: this.config.accessToken,
      body: buildWhatsAppBody(message.content, message.to, messageReference(message.id)),
      timeoutMs: this.config.timeoutMs,
    });
    if (!response.ok) {
      // Meta may have accepted a request that timed out or lost its connection, and it
      // offers no idempotency key on /messages: the result is marked ambiguous, so the
      // engine waits for a status webhook naming this message before sending again.
      return {
        ok: false,
        retryable: true,
        code: response.timeout ? 'timeout' : 'network_error',
        message: `WhatsApp could not be reached: ${response.message}`,
        ambiguous: response.timeout || !neverConnected(response.message),
      };
    }
    if (response.status >= 200 && response.status < 300) {
      const id = (response.body as { messages?: Array<{ id?: unknown }> } | null)?.messages?.[0]?.id;
      if (typeof id === 'string' && id !== '') return { ok: true, providerMessageId: id, status: 'sent' };
      // Accepted but unidentifiable: retrying could send twice, so it is not retried.
      return { ok: false, retryable: false, code: 'invalid_response', message: `WhatsApp answered ${response.status} without a message id` };
    }
    return mapGraphError(response.status, graphErrorOf(response.body), response.retryAfterMs);
  }
}

/**
 * Builds the adapter from a workspace's stored WhatsApp settings (config
 * `{ phone_number_id, graph_version, base_url }`, secrets `{ access_token }`); the
 * shape of the registry's provider factories:
 * `registry.registerProvider('whatsapp-cloud', whatsAppCloudFromSettings)`.
 */
export function whatsAppCloudFromSettings(config: Record<string, unknown>, secrets: Record<string, string>, env: { timeoutMs?: number } = {}): WhatsAppCloudChannel {
  const phoneNumberId = config.phone_number_id;
  const accessToken = secrets.access_token;
  if (typeof phoneNumberId !== 'string' || phoneNumberId === '') throw new Error('WhatsApp settings lack phone_number_id');
  if (typeof accessToken !== 'string' || accessToken === '') throw new Error('WhatsApp settings lack access_token');
  return new WhatsAppCloudChannel({
    phoneNumberId,
    accessToken,
    ...(typeof config.graph_version === 'string' ? { graphVersion: config.graph_version } : {}),
    ...(typeof config.base_url === 'string' ? { baseUrl: config.base_url } : {}),
    ...(env.timeoutMs !== undefined ? { timeoutMs: env.timeoutMs } : {}),
  });
}
