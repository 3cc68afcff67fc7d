import { neverConnected, type ChannelAdapter, type OutboundMessage, type SendResult } from './channel.js';
import { countSmsSegments } from './sms-segments.js';

/**
 * SMS through Twilio's Messages API (`POST /2010-04-01/Accounts/{AccountSid}/Messages.json`,
 * form-encoded, HTTP basic auth with the account SID and auth token), over `fetch`: no SDK.
 *
 * Outcomes, as values (never thrown):
 * - 201 → accepted, with the message SID and `details: { segments, encoding }` counted
 *   from the body (what the dispatcher stores in messages.segments / messages.encoding);
 * - 429, 5xx, network errors and timeouts → retryable, honouring `Retry-After`;
 * - 401 or Twilio code 20003 → permanent, `authFailure: true` (the channel's credentials are wrong);
 * - other 4xx → permanent with Twilio's code (21211 invalid To, 21610 recipient unsubscribed,
 *   21408 region not enabled, 21614 not a mobile number…), e.g. `code: '21211'`.
 */
export interface TwilioChannelConfig {
  accountSid: string;
  authToken: string;
  /** Sender number (E.164), alphanumeric sender id or short code. One of from / messagingServiceSid is needed. */
  from?: string;
  messagingServiceSid?: string;
  /** Default https://api.twilio.com; tests point it at a local fake. */
  baseUrl?: string;
  /** Where Twilio posts status callbacks: NUDGE_PUBLIC_URL + /webhooks/twilio/status. */
  statusCallbackUrl?: string;
  timeoutMs?: number;
}

/** Twilio's error body: `{ code, message, more_info, status }`. */
interface TwilioError {
  code?: number;
  message?: string;
  more_info?: string;
  status?: number;
}

/** Twilio error codes that mean the request will never succeed as it is, with a short reason. */
const permanentReasons: Record<number, string> = {
  21211: 'invalid To number',
  21408: 'sending to this region is not enabled',
  21610: 'the recipient unsubscribed (replied STOP)',
  21612: 'this From/To pair cannot be used',
  21614: 'the To number is not a mobile number',
  21617: 'the message body is too long',
  21606: 'the From number cannot send SMS',
  21659: 'the From number is not a Twilio number of this account',
};

/** Parses Retry-After (seconds or an HTTP date) into milliseconds. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const text = value.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

export class TwilioChannel implements ChannelAdapter {
  readonly provider = 'twilio';
  private readonly endpoint: string;
  private readonly authorization: string;

  constructor(private readonly config: TwilioChannelConfig) {
    if (!config.accountSid || !config.authToken) throw new Error('TwilioChannel needs accountSid and authToken');
    if (!config.from && !config.messagingServiceSid) throw new Error('TwilioChannel needs a from number or a messagingServiceSid');
    const base = (config.baseUrl ?? 'https://api.twilio.com').replace(/\/+$/, '');
    this.endpoint = `${base}/2010-04-01/Accounts/${encodeURIComponent(config.accountSid)}/Messages.json`;
    this.authorization = `Basic ${Buffer.from(`${config.accountSid}:${config.authToken}`).toString('base64')}`;
  }

  async send(message: OutboundMessage): Promise<SendResult> {
    const content = message.content;
    if (content.kind !== 'text') {
      return { ok: false, retryable: false, code: 'unsupported_content', message: `SMS sends text only, not ${content.kind} content` };
    }
    if (content.text.trim() === '') return { ok: false, retryable: false, code: 'empty_body', message: 'The SMS body is empty' };
    const form = new URLSearchParams();
    form.set('To', message.to);
    form.set('Body', content.text);
    if (this.config.messagingServiceSid) form.set('MessagingServiceSid', this.config.messagingServiceSid);
    if (this.config.from) form.set('From', this.config.from);
    // The callback URL names Nudge's message id, so a status can be matched even when
    // the answer to this request was lost.
    if (this.config.statusCallbackUrl) form.set('StatusCallback', withMessageId(this.config.statusCallbackUrl, message.id));

    let response: Response;
    try {
      response = await fetch(this.endpoint, {
        method: 'POST',
        headers: { authorization: this.authorization, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: form.toString(),
        signal: AbortSignal.timeout(this.config.timeoutMs ?? 10_000),
      });
    } catch (error) {
      const timedOut = error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError');
      // Twilio may or may not have accepted a request that timed out: retrying can, rarely,
      // send twice. Twilio has no idempotency key for Messages; a lost SMS is the worse outcome.
      const detail = error instanceof Error ? `${error.message} ${String((error as { cause?: { code?: unknown } }).cause?.code ?? '')}` : String(error);
      return { ok: false, retryable: true, code: timedOut ? 'timeout' : 'network_error', message: `Twilio request failed: ${detail.trim()}`, ambiguous: timedOut || !neverConnected(detail) };
    }

    const text = await response.text().catch(() => '');
    let body: Record<string, unknown> = {};
    try {
      const parsed: unknown = JSON.parse(text);
      if (parsed && typeof parsed === 'object') body = parsed as Record<string, unknown>;
    } catch {
      // A proxy's HTML error page: judged by the status code alone.
    }

    if (response.status === 200 || response.status === 201) {
      const sid = typeof body.sid === 'string' ? body.sid : null;
      if (!sid) return { ok: false, retryable: true, code: 'bad_response', message: 'Twilio answered without a message sid' };
      const { segments, encoding } = countSmsSegments(content.text);
      return { ok: true, providerMessageId: sid, status: 'sent', details: { segments, encoding } };
    }

    const error = body as TwilioError;
    const code = typeof error.code === 'number' ? error.code : null;
    const detail = `Twilio ${response.status}${code !== null ? ` (${code})` : ''}: ${error.message ?? (text.slice(0, 200) || response.statusText)}`;
    if (response.status === 429 || response.status >= 500) {
      return { ok: false, retryable: true, code: code !== null ? String(code) : `http_${response.status}`, message: detail, retryAfterMs: parseRetryAfter(response.headers.get('retry-after')) };
    }
    if (response.status === 401 || code === 20003) {
      return { ok: false, retryable: false, code: code !== null ? String(code) : 'auth_failed', message: detail, authFailure: true };
    }
    const reason = code !== null ? permanentReasons[code] : undefined;
    return { ok: false, retryable: false, code: code !== null ? String(code) : `http_${response.status}`, message: reason ? `${detail} (${reason})` : detail };
  }
}

/**
 * Builds the adapter from a workspace's SMS settings (config `{ account_sid, from,
 * messaging_service_sid, base_url }`, secrets `{ auth_token }`); status callbacks go to
 * `<publicUrl>/webhooks/twilio/status`. Fits the channel registry's provider factory.
 *
 * @example
 * registry.registerProvider('twilio', twilioChannelFromSettings);
 */
export function twilioChannelFromSettings(config: Record<string, unknown>, secrets: Record<string, string>, env: { publicUrl: string; timeoutMs: number }): TwilioChannel {
  const text = (value: unknown) => (typeof value === 'string' && value !== '' ? value : undefined);
  return new TwilioChannel({
    accountSid: text(config.account_sid) ?? '',
    authToken: secrets.auth_token ?? '',
    from: text(config.from),
    messagingServiceSid: text(config.messaging_service_sid),
    baseUrl: text(config.base_url),
    statusCallbackUrl: `${env.publicUrl.replace(/\/+$/, '')}/webhooks/twilio/status`,
    timeoutMs: env.timeoutMs,
  });
}

function withMessageId(url: string, messageId: string): string {
  return `${url}${url.includes('?') ? '&' : '?'}nudge_message_id=${encodeURIComponent(messageId)}`;
}
