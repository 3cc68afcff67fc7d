import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OutboundMessage } from '../../src/channels/channel.js';
import { parseRetryAfter, TwilioChannel, twilioChannelFromSettings } from '../../src/channels/twilio-channel.js';
import { startFakeTwilio, twilioError, type FakeTwilio } from '../support/fake-twilio.js';

const accountSid = `AC${'a'.repeat(32)}`;
const authToken = 'twilio-auth-token-0123456789abcdef';

const sms = (text: string, to = '+14155550123'): OutboundMessage => ({
  id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a70',
  workspaceId: 'ws',
  channel: 'sms',
  to,
  content: { kind: 'text', text },
});

describe('TwilioChannel against a local fake of the Messages API', () => {
  let twilio: FakeTwilio;
  let channel: TwilioChannel;
  beforeAll(async () => {
    twilio = await startFakeTwilio(accountSid, authToken);
    channel = new TwilioChannel({ accountSid, authToken, from: '+14155552345', baseUrl: twilio.baseUrl, statusCallbackUrl: 'https://nudge.example.com/webhooks/twilio/status' });
  });
  afterAll(async () => twilio.close());

  it('posts the form with basic auth and returns the sid, segments and encoding', async () => {
    const result = await channel.send(sms('Your order shipped. Track it: https://example.com/t/1'));
    expect(result).toEqual({ ok: true, providerMessageId: twilio.sent.at(-1)!.sid, status: 'sent', details: { segments: 1, encoding: 'GSM-7' } });
    const request = twilio.requests.at(-1)!;
    expect(request.method).toBe('POST');
    expect(request.path).toBe(`/2010-04-01/Accounts/${accountSid}/Messages.json`);
    expect(request.authorization).toBe(`Basic ${Buffer.from(`${accountSid}:${authToken}`).toString('base64')}`);
    expect(request.contentType).toMatch(/^application\/x-www-form-urlencoded/);
    // Field names as in CreateMessageRequest of twilio_api_v2010.yaml.
    expect(request.form).toEqual({
      To: '+14155550123',
      Body: 'Your order shipped. Track it: https://example.com/t/1',
      From: '+14155552345',
      StatusCallback: 'https://nudge.example.com/webhooks/twilio/status?nudge_message_id=0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a70',
    });
  });

  it('counts UCS-2 segments for emoji and long bodies', async () => {
    expect(await channel.send(sms('Hello! 👍'))).toMatchObject({ ok: true, details: { segments: 1, encoding: 'UCS-2' } });
    expect(await channel.send(sms('Привет! '.repeat(10)))).toMatchObject({ ok: true, details: { segments: 2, encoding: 'UCS-2' } });
    expect(await channel.send(sms('x'.repeat(161)))).toMatchObject({ ok: true, details: { segments: 2, encoding: 'GSM-7' } });
    expect(twilio.sent.at(-2)!.body).toBe('Привет! '.repeat(10));
  });

  it('sends through a messaging service when one is configured', async () => {
    const service = new TwilioChannel({ accountSid, authToken, messagingServiceSid: `MG${'b'.repeat(32)}`, baseUrl: twilio.baseUrl });
    expect((await service.send(sms('Hi'))).ok).toBe(true);
    expect(twilio.requests.at(-1)!.form).toEqual({ To: '+14155550123', Body: 'Hi', MessagingServiceSid: `MG${'b'.repeat(32)}` });
  });

  it('builds itself from workspace settings with the status callback under the public URL', async () => {
    const fromSettings = twilioChannelFromSettings({ account_sid: accountSid, from: '+14155552345', base_url: twilio.baseUrl }, { auth_token: authToken }, { publicUrl: 'https://nudge.example.com/', timeoutMs: 5000 });
    expect((await fromSettings.send(sms('Hi'))).ok).toBe(true);
    expect(twilio.requests.at(-1)!.form.StatusCallback).toBe('https://nudge.example.com/webhooks/twilio/status?nudge_message_id=0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a70');
  });

  it('maps an invalid To number (21211) to a permanent failure with the code', async () => {
    const result = await channel.send(sms('Hi', '+1234'));
    expect(result).toMatchObject({ ok: false, retryable: false, code: '21211' });
    expect(result.ok === false && result.message).toContain('invalid To number');
  });

  it.each([
    [21610, 'Attempt to send to unsubscribed recipient', 'unsubscribed'],
    [21408, 'Permission to send an SMS has not been enabled for the region indicated by the To number', 'region'],
    [21614, "'To' number is not a valid mobile number", 'not a mobile number'],
  ])('maps Twilio error %i to a permanent failure', async (code, message, reason) => {
    twilio.script.push(twilioError(400, code, message));
    const result = await channel.send(sms('Hi'));
    expect(result).toMatchObject({ ok: false, retryable: false, code: String(code) });
    expect(result.ok === false && result.message).toContain(reason);
    expect(result.ok === false && result.authFailure).toBeFalsy();
  });

  it('marks a wrong auth token as a permanent auth failure', async () => {
    const wrong = new TwilioChannel({ accountSid, authToken: 'wrong', from: '+14155552345', baseUrl: twilio.baseUrl });
    expect(await wrong.send(sms('Hi'))).toMatchObject({ ok: false, retryable: false, code: '20003', authFailure: true });
  });

  it('retries 429 honouring Retry-After', async () => {
    twilio.script.push({ ...twilioError(429, 20429, 'Too Many Requests'), headers: { 'retry-after': '7' } });
    expect(await channel.send(sms('Hi'))).toMatchObject({ ok: false, retryable: true, code: '20429', retryAfterMs: 7000 });
  });

  it('retries 5xx, with or without a JSON body', async () => {
    twilio.script.push(twilioError(503, 20503, 'Service unavailable'));
    expect(await channel.send(sms('Hi'))).toMatchObject({ ok: false, retryable: true, code: '20503' });
    twilio.script.push({ status: 502, body: '<html>Bad gateway</html>' });
    expect(await channel.send(sms('Hi'))).toMatchObject({ ok: false, retryable: true, code: 'http_502' });
  });

  it('retries a timeout', async () => {
    const slow = new TwilioChannel({ accountSid, authToken, from: '+14155552345', baseUrl: twilio.baseUrl, timeoutMs: 200 });
    twilio.script.push({ status: 0, hang: true });
    expect(await slow.send(sms('Hi'))).toMatchObject({ ok: false, retryable: true, code: 'timeout' });
  });

  it('retries when Twilio cannot be reached', async () => {
    const port = await new Promise<number>((resolve) => {
      const probe = createServer();
      probe.listen(0, '127.0.0.1', () => {
        const { port: free } = probe.address() as { port: number };
        probe.close(() => resolve(free));
      });
    });
    const unreachable = new TwilioChannel({ accountSid, authToken, from: '+14155552345', baseUrl: `http://127.0.0.1:${port}` });
    // Nothing reached Twilio: sending again cannot duplicate.
    expect(await unreachable.send(sms('Hi'))).toMatchObject({ ok: false, retryable: true, code: 'network_error', ambiguous: false });
  });

  it('refuses content SMS cannot carry without calling Twilio', async () => {
    const before = twilio.requests.length;
    const result = await channel.send({ ...sms(''), content: { kind: 'email', subject: 's', html: '<p>x</p>', text: 'x' } });
    expect(result).toMatchObject({ ok: false, retryable: false, code: 'unsupported_content' });
    expect(twilio.requests.length).toBe(before);
  });
});

describe('parseRetryAfter', () => {
  it('reads seconds and HTTP dates', () => {
    expect(parseRetryAfter('3')).toBe(3000);
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:10 GMT', Date.UTC(2026, 0, 1, 0, 0, 0))).toBe(10_000);
    expect(parseRetryAfter(null)).toBeUndefined();
    expect(parseRetryAfter('soon')).toBeUndefined();
  });
});
