import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Channel } from './definition.js';

/**
 * Signed per-contact unsubscribe links. The token names the workspace, the contact and
 * the channel, and carries an HMAC-SHA256 of them keyed with NUDGE_SECRET_KEY, so a
 * link cannot be forged or pointed at another contact, and needs no table: it works for
 * as long as the key is the same. The token never expires (RFC 8058 one-click links are
 * followed days after sending, and an unsubscribe must never fail for being late).
 *
 * Format: `base64url(channel byte + workspace UUID + contact UUID) "." base64url(hmac)`,
 * 88 characters: ids as 16 raw bytes each keep the link short (some clients wrap or cut
 * long URLs, and the router caps a path parameter at 100 characters).
 *
 * @example
 * const token = signUnsubscribeToken(key, { workspaceId, contactId, channel: 'email' });
 * verifyUnsubscribeToken(key, token) // { workspaceId, contactId, channel: 'email' }
 */
export interface UnsubscribeSubject {
  workspaceId: string;
  contactId: string;
  channel: Channel;
}

const channels: readonly Channel[] = ['whatsapp', 'sms', 'email'];
// A purpose prefix: the same key signs other things, and none of them may pass for this.
const purpose = 'nudge-unsubscribe-v1\u0000';

function mac(secretKey: string, payload: Buffer): Buffer {
  return createHmac('sha256', secretKey).update(purpose).update(payload).digest();
}

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function uuidBytes(id: string, what: string): Buffer {
  if (!uuidPattern.test(id)) throw new Error(`${what} must be a UUID to sign an unsubscribe link (got "${id}")`);
  return Buffer.from(id.replace(/-/g, ''), 'hex');
}

function uuidText(bytes: Buffer): string {
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export function signUnsubscribeToken(secretKey: string, subject: UnsubscribeSubject): string {
  if (!secretKey) throw new Error('signUnsubscribeToken needs the secret key');
  const payload = Buffer.concat([Buffer.from([channels.indexOf(subject.channel)]), uuidBytes(subject.workspaceId, 'workspaceId'), uuidBytes(subject.contactId, 'contactId')]);
  return `${payload.toString('base64url')}.${mac(secretKey, payload).toString('base64url')}`;
}

/** The subject of a genuine token, or null for anything malformed, tampered with or signed with another key. */
export function verifyUnsubscribeToken(secretKey: string, token: string): UnsubscribeSubject | null {
  if (!secretKey || typeof token !== 'string') return null;
  // 33 bytes of payload and 32 of MAC, base64url without padding: exactly these lengths.
  const match = /^([A-Za-z0-9_-]{44})\.([A-Za-z0-9_-]{43})$/.exec(token);
  if (!match) return null;
  const payload = Buffer.from(match[1]!, 'base64url');
  const given = Buffer.from(match[2]!, 'base64url');
  // Re-encoding must give the same text: rejects non-canonical encodings of one payload.
  if (payload.length !== 33 || payload.toString('base64url') !== match[1] || given.toString('base64url') !== match[2]) return null;
  const expected = mac(secretKey, payload);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
  const channel = channels[payload[0]!];
  if (!channel) return null;
  return { workspaceId: uuidText(payload.subarray(1, 17)), contactId: uuidText(payload.subarray(17, 33)), channel };
}

/**
 * The contact's email unsubscribe link: `<publicUrl>/unsubscribe/<token>`. The worker
 * passes it to the interpreter as `unsubscribeUrl`, which is the `{{unsubscribe_url}}`
 * merge tag and the target of the List-Unsubscribe headers.
 */
export function unsubscribeUrlFor(publicUrl: string, secretKey: string, workspaceId: string, contactId: string, channel: Channel = 'email'): string {
  return `${publicUrl.replace(/\/+$/, '')}/unsubscribe/${signUnsubscribeToken(secretKey, { workspaceId, contactId, channel })}`;
}
