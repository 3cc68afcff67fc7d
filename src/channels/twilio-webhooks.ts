import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { invalid } from '../domain/errors.js';

/**
 * Twilio's webhooks: the `X-Twilio-Signature` check and parsers for the inbound
 * message webhook and the message status callback. Pure: no I/O, no database.
 */

/** Form parameters as Twilio posts them: a repeated key becomes an array. */
export type TwilioParams = Record<string, string | string[]>;

/** Parses an `application/x-www-form-urlencoded` body (`+` is a space) keeping repeated keys. */
export function parseFormParams(body: string): TwilioParams {
  const params: TwilioParams = Object.create(null) as TwilioParams;
  for (const [key, value] of new URLSearchParams(body)) {
    const seen = params[key];
    if (seen === undefined) params[key] = value;
    else params[key] = Array.isArray(seen) ? [...seen, value] : [seen, value];
  }
  return params;
}

function sign(authToken: string, data: string): Buffer {
  return createHmac('sha1', authToken).update(data, 'utf8').digest();
}

/** The string Twilio signs: the URL, then each key (sorted) followed by each of its distinct values (sorted). */
export function twilioSigningString(url: string, params: TwilioParams): string {
  let data = url;
  for (const key of Object.keys(params).sort()) {
    const value = params[key]!;
    const values = Array.isArray(value) ? [...new Set(value)].sort() : [value];
    for (const v of values) data += key + v;
  }
  return data;
}

/** The expected `X-Twilio-Signature` for a URL and its form parameters (base64 HMAC-SHA1). */
export function computeTwilioSignature(authToken: string, url: string, params: TwilioParams): string {
  return sign(authToken, twilioSigningString(url, params)).toString('base64');
}

/**
 * The URL as given, without its port and with its scheme's default port. Twilio signs
 * the URL it called, and whether that carried `:443` depends on how the webhook was
 * configured; its own libraries accept both forms, so we do too. Done on the text, not
 * through `new URL()`, which would re-encode the query (`'` → `%27`) and change the
 * signed bytes.
 */
export function twilioUrlVariants(url: string): string[] {
  const match = /^([a-z][a-z0-9+.-]*):\/\/([^/?#]*)(.*)$/is.exec(url);
  if (!match) return [url];
  const [, scheme, authority, rest] = match as unknown as [string, string, string, string];
  const at = authority.lastIndexOf('@');
  const userinfo = at === -1 ? '' : authority.slice(0, at + 1);
  const hostPort = authority.slice(at + 1);
  let host = hostPort;
  let port: string | undefined;
  // An IPv6 literal keeps its colons inside brackets: only a colon after `]` starts a port.
  const colon = hostPort.lastIndexOf(':');
  if (colon !== -1 && colon > hostPort.lastIndexOf(']')) {
    host = hostPort.slice(0, colon);
    port = hostPort.slice(colon + 1);
  }
  const defaultPort = scheme.toLowerCase() === 'https' ? '443' : scheme.toLowerCase() === 'http' ? '80' : undefined;
  const withoutPort = `${scheme}://${userinfo}${host}${rest}`;
  const withPort = port ? url : defaultPort ? `${scheme}://${userinfo}${host}:${defaultPort}${rest}` : url;
  return [...new Set([url, withoutPort, withPort])];
}

function safeEqual(a: string, b: Buffer): boolean {
  const given = Buffer.from(a, 'base64');
  // A signature that is not valid base64 of the right length never matches.
  return given.length === b.length && given.toString('base64') === a && timingSafeEqual(given, b);
}

/**
 * Checks `X-Twilio-Signature` the way Twilio's own libraries do:
 * HMAC-SHA1 keyed with the account's auth token over the full URL (scheme, host, path
 * and query as Twilio requested it) followed by every POST parameter, keys sorted and
 * each key's distinct values sorted, base64-encoded; the URL is tried as given, without
 * its port and with its default port. For a JSON body Twilio puts `bodySHA256` (hex
 * SHA-256 of the raw body) in the query and signs the URL alone: then the raw body must
 * hash to it.
 *
 * @example
 * validateTwilioSignature('12345', 'https://mycompany.com/myapp.php?foo=1&bar=2',
 *   { CallSid: 'CA1234567890ABCDE', Caller: '+14158675309', Digits: '1234', From: '+14158675309', To: '+18005551212' },
 *   'RSOYDt4T1cUTdK1PDd93/VVr8B8=') // true
 */
export function validateTwilioSignature(authToken: string, url: string, params: TwilioParams, signature: string | undefined | null, rawBody?: string | Buffer): boolean {
  if (!authToken || !signature) return false;
  const bodyHash = /[?&]bodySHA256=([^&#]*)/.exec(url)?.[1];
  let signedParams = params;
  if (bodyHash !== undefined) {
    if (rawBody === undefined) return false;
    const actual = createHash('sha256').update(rawBody).digest('hex');
    const expected = decodeURIComponent(bodyHash).toLowerCase();
    if (actual.length !== expected.length || !timingSafeEqual(Buffer.from(actual), Buffer.from(expected))) return false;
    signedParams = {};
  }
  return twilioUrlVariants(url).some((candidate) => safeEqual(signature, sign(authToken, twilioSigningString(candidate, signedParams))));
}

function first(params: TwilioParams, key: string): string | undefined {
  const value = params[key];
  return Array.isArray(value) ? value[0] : value;
}

function required(params: TwilioParams, key: string): string {
  const value = first(params, key)?.trim();
  if (!value) throw invalid(key, 'is required');
  return value;
}

export interface TwilioInboundMessage {
  messageSid: string;
  accountSid: string;
  from: string;
  to: string;
  body: string;
  messagingServiceSid: string | null;
  numMedia: number;
  media: Array<{ url: string; contentType: string | null }>;
}

/** The inbound message webhook (`A message comes in`): From, To, Body, MessageSid, AccountSid, NumMedia, MediaUrl{n}. */
export function parseTwilioInbound(params: TwilioParams): TwilioInboundMessage {
  const messageSid = required(params, 'MessageSid');
  const accountSid = required(params, 'AccountSid');
  const from = required(params, 'From');
  const to = required(params, 'To');
  const numMediaText = first(params, 'NumMedia') ?? '0';
  if (!/^\d{1,2}$/.test(numMediaText)) throw invalid('NumMedia', 'must be a whole number');
  const numMedia = Number(numMediaText);
  const media: TwilioInboundMessage['media'] = [];
  for (let i = 0; i < numMedia; i++) {
    const url = first(params, `MediaUrl${i}`);
    if (url) media.push({ url, contentType: first(params, `MediaContentType${i}`) ?? null });
  }
  return { messageSid, accountSid, from, to, body: first(params, 'Body') ?? '', messagingServiceSid: first(params, 'MessagingServiceSid') ?? null, numMedia, media };
}

/** Twilio's message statuses (MessageStatus in callbacks). */
export const twilioMessageStatuses = [
  'queued', 'accepted', 'scheduled', 'sending', 'sent', 'delivered', 'undelivered', 'failed', 'read', 'canceled', 'receiving', 'received',
] as const;
export type TwilioMessageStatus = (typeof twilioMessageStatuses)[number];

export interface TwilioStatusCallback {
  messageSid: string;
  accountSid: string;
  status: TwilioMessageStatus;
  /** Nudge's status for it, or null when the callback tells nothing new (queued, sending…). */
  nudgeStatus: 'sent' | 'delivered' | 'read' | 'failed' | null;
  errorCode: string | null;
  from: string | null;
  to: string | null;
  /** Nudge's message id, from the callback URL Nudge gave Twilio with the message. */
  nudgeMessageId: string | null;
}

/** The status callback: MessageSid, MessageStatus (queued … delivered, undelivered, failed), ErrorCode. */
export function parseTwilioStatus(params: TwilioParams, callbackQuery: Record<string, unknown> = {}): TwilioStatusCallback {
  const messageSid = required(params, 'MessageSid');
  const accountSid = required(params, 'AccountSid');
  const raw = (first(params, 'MessageStatus') ?? first(params, 'SmsStatus') ?? '').trim().toLowerCase();
  if (!raw) throw invalid('MessageStatus', 'is required');
  if (!(twilioMessageStatuses as readonly string[]).includes(raw)) throw invalid('MessageStatus', `must be one of ${twilioMessageStatuses.join(', ')}`);
  const status = raw as TwilioMessageStatus;
  const nudgeStatus =
    status === 'sent' ? 'sent'
      : status === 'delivered' ? 'delivered'
        : status === 'read' ? 'read'
          : status === 'undelivered' || status === 'failed' || status === 'canceled' ? 'failed'
            : null;
  const errorCode = first(params, 'ErrorCode')?.trim() || null;
  return { messageSid, accountSid, status, nudgeStatus, errorCode, from: first(params, 'From') ?? null, to: first(params, 'To') ?? null, nudgeMessageId: nudgeIdOf(callbackQuery.nudge_message_id) };
}

/** The empty TwiML answer Twilio expects from a messaging webhook: no reply is sent. */
export const emptyTwiml = '<?xml version="1.0" encoding="UTF-8"?><Response/>';

function nudgeIdOf(value: unknown): string | null {
  const text = Array.isArray(value) ? value[0] : value;
  return typeof text === 'string' && /^[0-9a-f-]{36}$/i.test(text) ? text.toLowerCase() : null;
}
