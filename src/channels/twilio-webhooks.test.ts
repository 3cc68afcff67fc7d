import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { AppError } from '../domain/errors.js';
import {
  computeTwilioSignature,
  parseFormParams,
  parseTwilioInbound,
  parseTwilioStatus,
  twilioUrlVariants,
  validateTwilioSignature,
  type TwilioParams,
} from './twilio-webhooks.js';

interface Vector {
  name: string;
  url: string;
  signedUrl?: string;
  params: TwilioParams;
  body?: string;
  signature: string;
  valid?: boolean;
}

const file = fileURLToPath(new URL('../../test/fixtures/reference/payloads/twilio/x-twilio-signature-vectors.json', import.meta.url));
const reference = JSON.parse(readFileSync(file, 'utf8')) as { authToken: string; vectors: Vector[] };

describe('validateTwilioSignature against the reference vectors', () => {
  it('has the vectors', () => {
    expect(reference.vectors.length).toBeGreaterThanOrEqual(13);
  });

  it.each(reference.vectors.map((v) => [v.name, v] as const))('%s', (_name, vector) => {
    const valid = vector.valid ?? true;
    expect(validateTwilioSignature(reference.authToken, vector.url, vector.params, vector.signature, vector.body)).toBe(valid);
    if (!valid) return;
    // Tampering with any part refuses it: the token, a parameter, the URL, the signature.
    expect(validateTwilioSignature('54321', vector.url, vector.params, vector.signature, vector.body)).toBe(false);
    // With a JSON body the parameters are not signed: the body is, through bodySHA256 (checked below).
    if (vector.body === undefined) expect(validateTwilioSignature(reference.authToken, vector.url, { ...vector.params, Extra: 'x' }, vector.signature)).toBe(false);
    expect(validateTwilioSignature(reference.authToken, vector.url.replace('myapp', 'yourapp'), vector.params, vector.signature, vector.body)).toBe(false);
    const flipped = (vector.signature[0] === 'A' ? 'B' : 'A') + vector.signature.slice(1);
    expect(validateTwilioSignature(reference.authToken, vector.url, vector.params, flipped, vector.body)).toBe(false);
    if (vector.body !== undefined) {
      expect(validateTwilioSignature(reference.authToken, vector.url, vector.params, vector.signature, `${vector.body} `)).toBe(false);
      expect(validateTwilioSignature(reference.authToken, vector.url, vector.params, vector.signature)).toBe(false);
    }
  });

  it('accepts a request signed over the URL with its default port when it arrives without', () => {
    const withPort = reference.vectors.find((v) => v.signedUrl?.includes(':443'))!;
    expect(withPort.url).not.toContain(':443');
    expect(computeTwilioSignature(reference.authToken, withPort.signedUrl!, withPort.params)).toBe(withPort.signature);
    expect(validateTwilioSignature(reference.authToken, withPort.url, withPort.params, withPort.signature)).toBe(true);
  });

  it('refuses a missing or empty signature and an empty token', () => {
    const v = reference.vectors[0]!;
    expect(validateTwilioSignature(reference.authToken, v.url, v.params, undefined)).toBe(false);
    expect(validateTwilioSignature(reference.authToken, v.url, v.params, '')).toBe(false);
    expect(validateTwilioSignature('', v.url, v.params, v.signature)).toBe(false);
  });
});

describe('twilioUrlVariants', () => {
  it('gives the URL as is, without its port and with the default port', () => {
    expect(twilioUrlVariants('https://a.example/x?y=1')).toEqual(['https://a.example/x?y=1', 'https://a.example:443/x?y=1']);
    expect(twilioUrlVariants('http://u:p@a.example:8080/x')).toEqual(['http://u:p@a.example:8080/x', 'http://u:p@a.example/x']);
    expect(twilioUrlVariants('https://[::1]:443/x')).toEqual(['https://[::1]:443/x', 'https://[::1]/x']);
  });
});

describe('Twilio webhook parsers', () => {
  const inbound =
    'ToCountry=US&ToState=CA&SmsMessageSid=SM1f0e&NumMedia=1&ToCity=&FromZip=94105&SmsSid=SM1f0e&FromState=CA&SmsStatus=received&FromCity=SAN+FRANCISCO' +
    '&Body=Yes+please+%F0%9F%91%8D&FromCountry=US&To=%2B14155552345&MessagingServiceSid=MGaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa&ToZip=&NumSegments=1&MessageSid=SM1f0e' +
    '&AccountSid=ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa&From=%2B14155550123&MediaUrl0=https%3A%2F%2Fapi.twilio.com%2Fmedia%2FME1&MediaContentType0=image%2Fjpeg&ApiVersion=2010-04-01';

  it('parses the inbound message webhook', () => {
    expect(parseTwilioInbound(parseFormParams(inbound))).toEqual({
      messageSid: 'SM1f0e',
      accountSid: 'ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
      from: '+14155550123',
      to: '+14155552345',
      body: 'Yes please 👍',
      messagingServiceSid: 'MGaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
      numMedia: 1,
      media: [{ url: 'https://api.twilio.com/media/ME1', contentType: 'image/jpeg' }],
    });
  });

  it('names the missing field of an inbound message', () => {
    const error = (() => {
      try {
        parseTwilioInbound(parseFormParams('AccountSid=AC1&From=%2B1&To=%2B2'));
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).errors).toEqual({ MessageSid: ['MessageSid is required'] });
  });

  it('keeps repeated form keys', () => {
    expect(parseFormParams('a=1&a=2&b=x+y')).toEqual({ a: ['1', '2'], b: 'x y' });
  });

  it('maps status callbacks to Nudge statuses', () => {
    const parse = (status: string, extra = '') => parseTwilioStatus(parseFormParams(`MessageSid=SM1&AccountSid=AC1&MessageStatus=${status}${extra}`));
    expect(parse('delivered')).toMatchObject({ status: 'delivered', nudgeStatus: 'delivered', errorCode: null });
    expect(parse('sent').nudgeStatus).toBe('sent');
    expect(parse('queued').nudgeStatus).toBeNull();
    expect(parse('undelivered', '&ErrorCode=30003')).toMatchObject({ nudgeStatus: 'failed', errorCode: '30003' });
    expect(parse('failed', '&ErrorCode=30007').nudgeStatus).toBe('failed');
    expect(() => parse('exploded')).toThrow(/MessageStatus must be one of/);
    // Nudge's message id comes back in the callback URL it gave Twilio.
    const params = parseFormParams('MessageSid=SM1&AccountSid=AC1&MessageStatus=sent');
    expect(parseTwilioStatus(params, { nudge_message_id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a70' }).nudgeMessageId).toBe('0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a70');
    expect(parseTwilioStatus(params, { nudge_message_id: 'x' }).nudgeMessageId).toBeNull();
    expect(parseTwilioStatus(params).nudgeMessageId).toBeNull();
  });
});
