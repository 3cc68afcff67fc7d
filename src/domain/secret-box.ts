import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

/**
 * Encrypts provider secrets (access tokens, auth tokens, SMTP passwords) at rest.
 *
 * AES-256-GCM with a key derived from NUDGE_SECRET_KEY by HKDF-SHA256, so the
 * operator's key is never used directly and the same key can later derive other
 * sub-keys (link signing) that cannot decrypt these. Each value gets a fresh 96-bit
 * IV; the GCM tag authenticates both the ciphertext and `context` (the workspace and
 * channel the secret belongs to), so a blob copied onto another row fails to open
 * instead of quietly lending one workspace's credentials to another.
 *
 * Format: `v1.<iv>.<tag>.<ciphertext>`, each part base64url. The version prefix lets a
 * later format (or a key rotation) coexist with rows written by this one.
 *
 * @example
 * const sealed = sealJson(key, { access_token: 'EAAG…' }, 'ws_1:whatsapp');
 * openJson(key, sealed, 'ws_1:whatsapp'); // { access_token: 'EAAG…' }
 */

const version = 'v1';
const salt = Buffer.from('nudge/secret-box', 'utf8');
const info = Buffer.from('provider-secrets/v1', 'utf8');

export class SecretBoxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SecretBoxError';
  }
}

function deriveKey(secretKey: string): Buffer {
  if (secretKey.length === 0) throw new SecretBoxError('NUDGE_SECRET_KEY is empty: it is needed to encrypt and decrypt provider secrets');
  return Buffer.from(hkdfSync('sha256', Buffer.from(secretKey, 'utf8'), salt, info, 32));
}

/** Encrypts a JSON object. `context` (e.g. `workspaceId:channel`) must be given again to decrypt. */
export function sealJson(secretKey: string, value: Record<string, unknown>, context = ''): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', deriveKey(secretKey), iv);
  cipher.setAAD(Buffer.from(context, 'utf8'));
  const ciphertext = Buffer.concat([cipher.update(JSON.stringify(value), 'utf8'), cipher.final()]);
  const tag = cipher.getAuthTag();
  return [version, iv.toString('base64url'), tag.toString('base64url'), ciphertext.toString('base64url')].join('.');
}

/**
 * Decrypts what `sealJson` produced. Throws SecretBoxError when the text is not in
 * the format, or when the key (or context) differs from the one it was sealed with.
 */
export function openJson(secretKey: string, sealed: string, context = ''): Record<string, unknown> {
  const parts = sealed.split('.');
  if (parts.length !== 4 || parts[0] !== version) {
    throw new SecretBoxError(`Stored secrets are not in a known format (expected ${version}.<iv>.<tag>.<ciphertext>)`);
  }
  const [, ivText, tagText, dataText] = parts as [string, string, string, string];
  const iv = Buffer.from(ivText, 'base64url');
  const tag = Buffer.from(tagText, 'base64url');
  if (iv.length !== 12 || tag.length !== 16) throw new SecretBoxError('Stored secrets are damaged (bad IV or tag length)');
  let plain: string;
  try {
    const decipher = createDecipheriv('aes-256-gcm', deriveKey(secretKey), iv);
    decipher.setAAD(Buffer.from(context, 'utf8'));
    decipher.setAuthTag(tag);
    plain = Buffer.concat([decipher.update(Buffer.from(dataText, 'base64url')), decipher.final()]).toString('utf8');
  } catch {
    throw new SecretBoxError(
      'Cannot decrypt the stored provider secrets: NUDGE_SECRET_KEY is not the key they were encrypted with ' +
        '(restore the original key, or set the provider credentials again)',
    );
  }
  const value: unknown = JSON.parse(plain);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new SecretBoxError('Stored secrets are not a JSON object');
  return value as Record<string, unknown>;
}
