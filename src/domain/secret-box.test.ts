import { describe, expect, it } from 'vitest';
import { openJson, sealJson, SecretBoxError } from './secret-box.js';

const key = 'a-key-that-is-long-enough-for-nudge-0123456789';

describe('secret box', () => {
  it('round-trips a JSON object and never shows the plaintext', () => {
    const sealed = sealJson(key, { access_token: 'EAAG-very-secret' }, 'w1:whatsapp');
    expect(sealed).toMatch(/^v1\.[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(sealed).not.toContain('very-secret');
    expect(openJson(key, sealed, 'w1:whatsapp')).toEqual({ access_token: 'EAAG-very-secret' });
  });

  it('uses a fresh IV each time', () => {
    expect(sealJson(key, { a: '1' })).not.toBe(sealJson(key, { a: '1' }));
  });

  it('fails clearly with another key', () => {
    const sealed = sealJson(key, { a: '1' });
    expect(() => openJson(`${key}-other`, sealed)).toThrow(SecretBoxError);
    expect(() => openJson(`${key}-other`, sealed)).toThrow(/NUDGE_SECRET_KEY is not the key/);
  });

  it('refuses a blob moved to another workspace or channel', () => {
    const sealed = sealJson(key, { a: '1' }, 'w1:sms');
    expect(() => openJson(key, sealed, 'w2:sms')).toThrow(SecretBoxError);
  });

  it('refuses unknown formats and tampered data', () => {
    expect(() => openJson(key, 'plain text')).toThrow(/known format/);
    const sealed = sealJson(key, { a: '1' });
    const parts = sealed.split('.');
    parts[3] = Buffer.from('tampered').toString('base64url');
    expect(() => openJson(key, parts.join('.'))).toThrow(SecretBoxError);
  });
});
