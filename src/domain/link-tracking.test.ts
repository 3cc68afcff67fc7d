import { describe, expect, it } from 'vitest';
import { maxTrackedUrlLength, readTrackingToken, signTrackingToken, trackEmailContent, trackLinks, trackedUrl } from './link-tracking.js';

const key = 'k'.repeat(40);
const messageId = '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a81';
const base = 'https://nudge.example.com';

/** The tokens of every tracked link in the HTML, read back. */
function tracked(html: string): Array<{ messageId: string; url: string } | null> {
  return [...html.matchAll(/href="https:\/\/nudge\.example\.com\/t\/([^"]+)"/gi)].map((m) => readTrackingToken(m[1]!, key));
}

describe('tracking tokens', () => {
  it('round-trips the message id and the URL', () => {
    const url = 'https://shop.example.com/p/42?ref=mail&utm_source=nudge#top';
    const token = signTrackingToken(messageId, url, key);
    expect(token).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
    expect(readTrackingToken(token, key)).toEqual({ messageId, url });
  });

  it('refuses a token signed with another key, a changed payload or signature, and malformed tokens', () => {
    const token = signTrackingToken(messageId, 'https://shop.example.com/', key);
    expect(readTrackingToken(token, 'x'.repeat(40))).toBeNull();
    const [payload, signature] = token.split('.') as [string, string];
    const bytes = Buffer.from(payload, 'base64url');
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 1; // the URL's last character
    expect(readTrackingToken(`${bytes.toString('base64url')}.${signature}`, key)).toBeNull();
    const other = signature.at(-2) === 'A' ? 'B' : 'A';
    expect(readTrackingToken(`${payload}.${signature.slice(0, -2)}${other}${signature.at(-1)}`, key)).toBeNull();
    for (const bad of ['', 'abc', '.', `${token}.x`, token.replace('.', ''), 'a.b', `${payload}=.${signature}`]) expect(readTrackingToken(bad, key)).toBeNull();
    expect(readTrackingToken(token, '')).toBeNull();
  });

  it('never reads back a URL that is not http(s), even when signed with the key', () => {
    for (const url of ['javascript:alert(1)', 'data:text/html,hi', '//evil.example.com', 'ftp://files.example.com']) {
      expect(readTrackingToken(signTrackingToken(messageId, url, key), key), url).toBeNull();
    }
  });

  it('refuses to sign without a key or for an id that is not a UUID', () => {
    expect(() => signTrackingToken(messageId, 'https://a.example.com', '')).toThrow(/secret key/);
    expect(() => signTrackingToken('m1', 'https://a.example.com', key)).toThrow(/UUID/);
  });

  it('builds the tracked URL under the public URL, with or without a trailing slash', () => {
    expect(trackedUrl(`${base}/`, messageId, 'https://a.example.com', key)).toBe(`${base}/t/${signTrackingToken(messageId, 'https://a.example.com', key)}`);
  });
});

describe('trackLinks', () => {
  it('rewrites every http(s) link, decoding character references, and keeps the rest byte for byte', () => {
    const html =
      '<p>Hi</p><a class="btn" href="https://shop.example.com/?a=1&amp;b=2">Shop</a> ' +
      "<A HREF='http://blog.example.com/post'>Blog</A> <a target=_blank href=https://x.example.com/&#x26;y>X</a>" +
      '<map><area shape="rect" href="https://map.example.com/"></map>';
    const out = trackLinks(html, messageId, base, key);
    expect(tracked(out)).toEqual([
      { messageId, url: 'https://shop.example.com/?a=1&b=2' },
      { messageId, url: 'http://blog.example.com/post' },
      { messageId, url: 'https://x.example.com/&y' },
      { messageId, url: 'https://map.example.com/' },
    ]);
    expect(out.startsWith('<p>Hi</p><a class="btn" href="https://nudge.example.com/t/')).toBe(true);
    expect(out).toContain('>Shop</a> ');
    expect(out).toContain('<map><area shape="rect" href="');
  });

  it('leaves mailto, tel, anchors, relative, unsubscribe, already tracked and overlong links alone', () => {
    const long = `https://a.example.com/${'x'.repeat(maxTrackedUrlLength)}`;
    const already = trackedUrl(base, messageId, 'https://a.example.com', key);
    const html = [
      '<a href="mailto:ana@example.com">Mail</a>',
      '<a href="tel:+14155550123">Call</a>',
      '<a href="#top">Top</a>',
      '<a href="/relative">Rel</a>',
      `<a href="${base}/unsubscribe/abc.def">Unsubscribe</a>`,
      `<a href="${already}">Tracked</a>`,
      `<a href="${long}">Long</a>`,
      '<a name="anchor">No href</a>',
      '<link href="https://fonts.example.com/css" rel="stylesheet">',
    ].join('');
    expect(trackLinks(html, messageId, base, key)).toBe(html);
  });

  it('tracks only email content with HTML', () => {
    const email = { kind: 'email', subject: 'S', html: '<a href="https://a.example.com">A</a>', text: 'A: https://a.example.com' };
    const out = trackEmailContent(email, messageId, base, key);
    expect(tracked(out.html)).toEqual([{ messageId, url: 'https://a.example.com' }]);
    // The text part keeps the plain URL: there is no markup to hide a tracked link behind.
    expect(out.text).toBe(email.text);
    expect(email.html).toBe('<a href="https://a.example.com">A</a>');
    const sms = { kind: 'text', text: 'https://a.example.com' };
    expect(trackEmailContent(sms, messageId, base, key)).toBe(sms);
  });
});
