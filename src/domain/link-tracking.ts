import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Click tracking for email links. Each http(s) link of a sent email is rewritten to
 * `<publicUrl>/t/<token>`, where the token carries the message id and the original URL
 * and an HMAC-SHA256 of both keyed with NUDGE_SECRET_KEY. The redirect therefore needs
 * no table, and cannot be turned into an open redirect: a URL nobody signed, or a token
 * changed by one character, is refused.
 *
 * Format: `base64url(message UUID as 16 bytes + URL as UTF-8) "." base64url(hmac)`.
 *
 * @example
 * const html = trackLinks('<a href="https://shop.example.com/?a=1&amp;b=2">Shop</a>', messageId, 'https://nudge.example.com', key);
 * // '<a href="https://nudge.example.com/t/AZOh…">Shop</a>'
 * readTrackingToken(html.match(/\/t\/([^"]+)/)![1]!, key) // { messageId, url: 'https://shop.example.com/?a=1&b=2' }
 */

// A purpose prefix: the same key signs unsubscribe links and sessions, and none may pass for another.
const purpose = 'nudge-link-v1\u0000';

/** Longer URLs are left untracked: some mail clients cut or wrap very long links. */
export const maxTrackedUrlLength = 2000;

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function mac(secret: string, payload: Buffer): Buffer {
  return createHmac('sha256', secret).update(purpose).update(payload).digest();
}

function uuidText(bytes: Buffer): string {
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** An absolute http(s) URL, as the URL parser reads it; null for anything else. */
function httpUrl(value: string): URL | null {
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url : null;
  } catch {
    return null;
  }
}

/** The token for one link of one message. */
export function signTrackingToken(messageId: string, url: string, secret: string): string {
  if (!secret) throw new Error('signTrackingToken needs the secret key');
  if (!uuidPattern.test(messageId)) throw new Error(`messageId must be a UUID to sign a tracked link (got "${messageId}")`);
  const payload = Buffer.concat([Buffer.from(messageId.replace(/-/g, ''), 'hex'), Buffer.from(url, 'utf8')]);
  return `${payload.toString('base64url')}.${mac(secret, payload).toString('base64url')}`;
}

/** The message and URL of a genuine token; null for anything malformed, tampered with or signed with another key. */
export function readTrackingToken(token: string, secret: string): { messageId: string; url: string } | null {
  if (!secret || typeof token !== 'string' || token.length > 4 * maxTrackedUrlLength) return null;
  const match = /^([A-Za-z0-9_-]{23,})\.([A-Za-z0-9_-]{43})$/.exec(token);
  if (!match) return null;
  const payload = Buffer.from(match[1]!, 'base64url');
  const given = Buffer.from(match[2]!, 'base64url');
  // Re-encoding must give the same text: one payload has exactly one token.
  if (payload.length <= 16 || payload.toString('base64url') !== match[1] || given.toString('base64url') !== match[2]) return null;
  const expected = mac(secret, payload);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
  const url = payload.subarray(16).toString('utf8');
  // Signed by us, but checked again: the redirect must only ever lead to http(s).
  if (httpUrl(url) === null) return null;
  return { messageId: uuidText(payload.subarray(0, 16)), url };
}

/** The tracked form of a link. */
export function trackedUrl(baseUrl: string, messageId: string, url: string, secret: string): string {
  return `${baseUrl.replace(/\/+$/, '')}/t/${signTrackingToken(messageId, url, secret)}`;
}

const namedEntities: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0' };

/** Decodes the character references an attribute value may hold (`&amp;`, `&#38;`, `&#x26;`). */
function decodeAttribute(value: string): string {
  return value.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (whole, ref: string) => {
    if (ref[0] === '#') {
      const code = ref[1] === 'x' || ref[1] === 'X' ? Number.parseInt(ref.slice(2), 16) : Number.parseInt(ref.slice(1), 10);
      return Number.isFinite(code) && code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
    }
    return namedEntities[ref.toLowerCase()] ?? whole;
  });
}

/** Whether a link is left as it is: not http(s), an unsubscribe link, or one already tracked. */
function skipLink(url: URL, trackedPrefix: string, raw: string): boolean {
  if (raw.startsWith(trackedPrefix)) return true;
  // Unsubscribe links must keep working exactly as signed, and a click on them is not engagement.
  return url.pathname.includes('/unsubscribe/');
}

/**
 * Rewrites every http(s) `href` of `<a>` and `<area>` tags in email HTML to its tracked
 * form. Left as they are: `mailto:`, `tel:`, anchors (`#top`), relative links,
 * unsubscribe links (a path containing `/unsubscribe/`), links already tracked and
 * URLs longer than 2,000 characters. Everything else in the HTML is kept byte for byte.
 *
 * The tags are found with a pattern, not a parser: an `>` inside an attribute value
 * before `href` (`title="a>b"`) hides that link, which then simply goes untracked.
 */
export function trackLinks(html: string, messageId: string, baseUrl: string, secret: string): string {
  const trackedPrefix = `${baseUrl.replace(/\/+$/, '')}/t/`;
  return html.replace(/<(a|area)\b[^>]*>/gi, (tag) =>
    tag.replace(/(\shref\s*=\s*)("([^"]*)"|'([^']*)'|([^\s"'>`=]+))/i, (whole, prefix: string, _quoted: string, dq?: string, sq?: string, bare?: string) => {
      const raw = decodeAttribute((dq ?? sq ?? bare ?? '').trim());
      const url = httpUrl(raw);
      if (url === null || raw.length > maxTrackedUrlLength || skipLink(url, trackedPrefix, raw)) return whole;
      // The token is base64url and a dot: nothing in it needs escaping inside the quotes.
      return `${prefix}"${trackedUrl(baseUrl, messageId, raw, secret)}"`;
    }),
  );
}

/**
 * The content of an outbound message with its email links tracked: for `kind: 'email'`
 * content with `html`, that HTML rewritten by trackLinks; anything else unchanged. The
 * worker calls this with the message's id before it stores and sends the message.
 */
export function trackEmailContent<T extends object>(content: T, messageId: string, baseUrl: string, secret: string): T {
  const email = content as { kind?: unknown; html?: unknown };
  if (email.kind !== 'email' || typeof email.html !== 'string' || email.html === '') return content;
  return { ...content, html: trackLinks(email.html, messageId, baseUrl, secret) };
}
