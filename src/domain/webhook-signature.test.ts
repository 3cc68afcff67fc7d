import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SecretBoxError } from './secret-box.js';
import { generateWebhookSecret, openWebhookSecret, sealWebhookSecret, signWebhook, verifyWebhookSignature } from './webhook-signature.js';

describe('webhook signatures', () => {
  const body = '{"id":"0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a92","type":"webhook.test"}';

  it('signs "<t>.<raw body>" with HMAC-SHA256 of the secret, as documented', () => {
    const secret = generateWebhookSecret();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    const expected = createHmac('sha256', secret).update(`1767225600.${body}`).digest('hex');
    expect(signWebhook(secret, 1767225600, body)).toBe(`t=1767225600,v1=${expected}`);
  });

  it('carries one v1 per secret during a rotation, and verifies with either', () => {
    const [a, b] = [generateWebhookSecret(), generateWebhookSecret()];
    const header = signWebhook([b, a], 1000, body);
    expect(header.split(',')).toHaveLength(3);
    expect(verifyWebhookSignature(a, header, body, 1000)).toBe(true);
    expect(verifyWebhookSignature(b, header, Buffer.from(body), 1000)).toBe(true);
    expect(verifyWebhookSignature(generateWebhookSecret(), header, body, 1000)).toBe(false);
  });

  it('refuses a changed body, an old timestamp, and malformed headers without throwing', () => {
    const secret = generateWebhookSecret();
    const header = signWebhook(secret, 1000, body);
    expect(verifyWebhookSignature(secret, header, `${body} `, 1000)).toBe(false);
    expect(verifyWebhookSignature(secret, header, body, 1000 + 301)).toBe(false);
    for (const bad of ['', 'garbage', 't=1000', `t=1000,t=1001,${header.split(',')[1]}`, `t=abc,${header.split(',')[1]}`, 'v1=zz', null, undefined]) {
      expect(verifyWebhookSignature(secret, bad, body, 1000)).toBe(false);
    }
  });

  it('seals secrets to their subscription', () => {
    const key = 'k'.repeat(40);
    const sealed = sealWebhookSecret(key, 'ws1', 'sub1', 'whsec_abc');
    expect(sealed).not.toContain('whsec_abc');
    expect(openWebhookSecret(key, 'ws1', 'sub1', sealed)).toBe('whsec_abc');
    expect(() => openWebhookSecret(key, 'ws1', 'sub2', sealed)).toThrow(SecretBoxError);
    expect(() => openWebhookSecret('x'.repeat(40), 'ws1', 'sub1', sealed)).toThrow(SecretBoxError);
  });
});

describe('the README\'s verification sample', () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const code = /```js\n([\s\S]*?)```/.exec(readme.split('**Verifying the signature.**')[1] ?? '')?.[1] ?? '';
  const isFromNudge = new Function('createHmac', 'timingSafeEqual', `${code.replace(/^import .*$/m, '')}\nreturn isFromNudge;`)(createHmac, timingSafeEqual) as (
    secret: string,
    header: string,
    rawBody: Buffer,
  ) => boolean;

  it('accepts what Nudge signs, with either secret during a rotation, and refuses a changed body or an old timestamp', () => {
    const [secret, next] = [generateWebhookSecret(), generateWebhookSecret()];
    const raw = Buffer.from('{"id":"e1","type":"message.received","data":{"text":"olá"}}');
    const now = Math.floor(Date.now() / 1000);
    expect(isFromNudge(secret, signWebhook(secret, now, raw), raw)).toBe(true);
    expect(isFromNudge(secret, signWebhook([next, secret], now, raw), raw)).toBe(true);
    expect(isFromNudge(next, signWebhook([next, secret], now, raw), raw)).toBe(true);
    expect(isFromNudge(secret, signWebhook(secret, now, raw), Buffer.from(`${raw.toString()} `))).toBe(false);
    expect(isFromNudge(secret, signWebhook(secret, now - 3600, raw), raw)).toBe(false);
    expect(isFromNudge(generateWebhookSecret(), signWebhook(secret, now, raw), raw)).toBe(false);
  });
});
