import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { openJson, sealJson, SecretBoxError } from './secret-box.js';

/**
 * The signature Nudge puts on every outbound webhook, in the `Nudge-Signature` header:
 *
 *     Nudge-Signature: t=1767225600,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd
 *
 * `t` is the Unix time in seconds when the request was signed; `v1` is the lowercase hex
 * HMAC-SHA256 of `"<t>.<raw body>"`, keyed with the subscription's secret exactly as the
 * API showed it (the UTF-8 bytes of `whsec_…`, prefix included). While a rotated secret's
 * grace period runs, the header carries one `v1` per valid secret; a receiver accepts the
 * request when any of them matches its secret.
 *
 * Receivers should: sign the raw request bytes, not a re-serialised parse of them;
 * compare in constant time; refuse timestamps far from their clock (replays); and
 * de-duplicate on the payload's `id` (or the `Nudge-Delivery` header): a delivery whose
 * response was lost, or whose worker died mid-request, is sent again.
 *
 * @example
 * // Express, with the body kept raw:
 * app.post('/hooks/nudge', express.raw({ type: 'application/json' }), (req, res) => {
 *   const ok = verifyWebhookSignature(process.env.NUDGE_WEBHOOK_SECRET!, req.get('nudge-signature') ?? '', req.body, Math.floor(Date.now() / 1000));
 *   if (!ok) return res.status(400).end();
 *   const event = JSON.parse(req.body.toString('utf8'));
 *   // … handle event.type once per event.id …
 *   res.status(204).end();
 * });
 */

/** The prefix of every signing secret, so a leaked one is recognisable in logs and scanners. */
export const webhookSecretPrefix = 'whsec_';

/** A new signing secret: `whsec_` and 32 random bytes in base64url. */
export function generateWebhookSecret(): string {
  return `${webhookSecretPrefix}${randomBytes(32).toString('base64url')}`;
}

function hmacHex(secret: string, timestampSeconds: number, rawBody: string | Uint8Array): string {
  const mac = createHmac('sha256', Buffer.from(secret, 'utf8'));
  mac.update(`${timestampSeconds}.`, 'utf8');
  mac.update(typeof rawBody === 'string' ? Buffer.from(rawBody, 'utf8') : rawBody);
  return mac.digest('hex');
}

/**
 * The `Nudge-Signature` header value for a body sent at `timestampSeconds`. With several
 * secrets (during a rotation's grace period) it carries one `v1` per secret, the first
 * secret's first.
 *
 * @example
 * signWebhook('whsec_abc', 1767225600, '{"id":"evt_1"}'); // 't=1767225600,v1=…'
 */
export function signWebhook(secret: string | readonly string[], timestampSeconds: number, rawBody: string | Uint8Array): string {
  if (!Number.isSafeInteger(timestampSeconds) || timestampSeconds < 0) throw new RangeError('timestampSeconds must be a whole number of seconds');
  const secrets = typeof secret === 'string' ? [secret] : secret;
  if (secrets.length === 0) throw new RangeError('at least one secret is needed to sign');
  return [`t=${timestampSeconds}`, ...secrets.map((s) => `v1=${hmacHex(s, timestampSeconds, rawBody)}`)].join(',');
}

/**
 * Whether `header` (the `Nudge-Signature` value) signs `rawBody` with `secret`, at a
 * time within `toleranceSeconds` of `nowSeconds`. Any number of `v1` entries may be
 * present (during a rotation); unknown schemes are ignored; a header with no or several
 * `t` values, or a malformed one, is refused. Never throws on bad input.
 *
 * @example
 * verifyWebhookSignature(secret, request.headers['nudge-signature'], rawBodyBuffer, Math.floor(Date.now() / 1000)); // true or false
 */
export function verifyWebhookSignature(
  secret: string,
  header: string | null | undefined,
  rawBody: string | Uint8Array,
  nowSeconds: number,
  toleranceSeconds = 300,
): boolean {
  if (typeof header !== 'string' || header.length === 0 || header.length > 4096 || secret.length === 0) return false;
  let timestamp: number | null = null;
  let timestamps = 0;
  const candidates: string[] = [];
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === 't') {
      timestamps += 1;
      timestamp = /^\d{1,15}$/.test(value) ? Number(value) : null;
    } else if (key === 'v1' && /^[0-9a-f]{64}$/i.test(value)) {
      candidates.push(value.toLowerCase());
    }
  }
  if (timestamps !== 1 || timestamp === null || candidates.length === 0) return false;
  if (!Number.isFinite(nowSeconds) || Math.abs(nowSeconds - timestamp) > toleranceSeconds) return false;
  const expected = Buffer.from(hmacHex(secret, timestamp, rawBody), 'hex');
  let matched = false;
  // Every candidate is compared (no early exit), each in constant time.
  for (const candidate of candidates) {
    if (timingSafeEqual(expected, Buffer.from(candidate, 'hex'))) matched = true;
  }
  return matched;
}

/**
 * Signing secrets are stored sealed with NUDGE_SECRET_KEY (see secret-box.ts), bound
 * to their workspace and subscription: a sealed secret copied onto another row does
 * not open.
 */
function secretContext(workspaceId: string, subscriptionId: string): string {
  return `${workspaceId}:webhook:${subscriptionId}`;
}

export function sealWebhookSecret(secretKey: string, workspaceId: string, subscriptionId: string, secret: string): string {
  return sealJson(secretKey, { secret }, secretContext(workspaceId, subscriptionId));
}

/** The signing secret; throws SecretBoxError when NUDGE_SECRET_KEY is not the key it was sealed with. */
export function openWebhookSecret(secretKey: string, workspaceId: string, subscriptionId: string, sealed: string): string {
  const value = openJson(secretKey, sealed, secretContext(workspaceId, subscriptionId)).secret;
  if (typeof value !== 'string' || value === '') throw new SecretBoxError('The stored webhook secret is damaged');
  return value;
}
