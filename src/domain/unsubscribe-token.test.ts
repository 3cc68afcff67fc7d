import { describe, expect, it } from 'vitest';
import { signUnsubscribeToken, unsubscribeUrlFor, verifyUnsubscribeToken } from './unsubscribe-token.js';

const key = 'k'.repeat(40);
const subject = { workspaceId: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c', contactId: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a61', channel: 'email' as const };

describe('unsubscribe tokens', () => {
  it('round-trips the workspace, contact and channel', () => {
    const token = signUnsubscribeToken(key, subject);
    expect(token).toMatch(/^[A-Za-z0-9_-]{44}\.[A-Za-z0-9_-]{43}$/);
    expect(token.length).toBeLessThanOrEqual(100);
    expect(verifyUnsubscribeToken(key, token)).toEqual(subject);
  });

  it('refuses a token signed with another key', () => {
    expect(verifyUnsubscribeToken('x'.repeat(40), signUnsubscribeToken(key, subject))).toBeNull();
  });

  it('refuses a token pointed at another contact', () => {
    const token = signUnsubscribeToken(key, subject);
    const [payload, sig] = token.split('.') as [string, string];
    const bytes = Buffer.from(payload, 'base64url');
    bytes[32] = bytes[32]! ^ 1; // the contact id's last byte
    expect(verifyUnsubscribeToken(key, `${bytes.toString('base64url')}.${sig}`)).toBeNull();
    const sms = Buffer.from(payload, 'base64url');
    sms[0] = 1; // channel: sms instead of email
    expect(verifyUnsubscribeToken(key, `${sms.toString('base64url')}.${sig}`)).toBeNull();
  });

  it('refuses a changed signature and malformed tokens', () => {
    const token = signUnsubscribeToken(key, subject);
    const last = token.at(-1) === 'A' ? 'B' : 'A';
    expect(verifyUnsubscribeToken(key, token.slice(0, -1) + last)).toBeNull();
    for (const bad of ['', 'abc', '.', `${token}.x`, token.replace('.', ''), 'a.b']) expect(verifyUnsubscribeToken(key, bad)).toBeNull();
  });

  it('refuses to sign ids that are not UUIDs', () => {
    expect(() => signUnsubscribeToken(key, { ...subject, contactId: 'c1' })).toThrow(/contactId must be a UUID/);
  });

  it('builds the link under the public URL', () => {
    const url = unsubscribeUrlFor('https://nudge.example.com/', key, subject.workspaceId, subject.contactId);
    expect(url).toBe(`https://nudge.example.com/unsubscribe/${signUnsubscribeToken(key, subject)}`);
  });
});
