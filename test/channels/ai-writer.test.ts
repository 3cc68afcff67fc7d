import { createServer } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildSequencePrompt, parseWrittenEmails, writeSequenceEmails, type AiSettings, type WriteSequenceRequest } from '../../src/channels/ai-writer.js';
import { aiError, completion, sampleEmails, startFakeAi, type FakeAi } from '../support/fake-ai.js';

const apiKey = 'sk-test-0123456789abcdefghijklmnop';

const onboarding: WriteSequenceRequest = {
  goal: 'Welcome new users and help them get started with the product',
  emailCount: 5,
  sequenceName: 'Onboarding Sequence',
  trigger: 'contact_added',
  brand: { name: 'Acme Notes', description: 'A note-taking app for small teams' },
};

const email = (fields: Record<string, unknown>) => ({ subject: 'Hello', html: '<p>Hi</p>', ...fields });

async function freePort(): Promise<number> {
  return new Promise<number>((resolve) => {
    const probe = createServer();
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

describe('writeSequenceEmails against a local fake of the chat completions API', () => {
  let ai: FakeAi;
  let settings: AiSettings;
  beforeAll(async () => {
    ai = await startFakeAi({ apiKey });
    settings = { baseUrl: ai.baseUrl, apiKey, model: 'gpt-4o-mini' };
  });
  afterEach(() => {
    ai.reply = null;
    ai.script.length = 0;
  });
  afterAll(async () => ai.close());

  it('returns emailCount emails with delays after the first, and posts model, messages, JSON mode and the bearer key', async () => {
    const outcome = await writeSequenceEmails(settings, onboarding);
    expect(outcome).toMatchObject({ ok: true, model: 'gpt-4o-mini' });
    if (!outcome.ok) throw new Error(outcome.message);
    expect(outcome.emails).toHaveLength(5);
    expect(outcome.emails.map((e) => e.delay)).toEqual([null, { days: 1 }, { days: 2 }, { days: 2 }, { days: 2 }]);
    expect(outcome.emails[0]).toEqual({
      subject: 'Email 1 for {{contact.first_name|there}}',
      previewText: 'Preview 1',
      html: '<h1>Step 1</h1><p>Hi {{contact.first_name|there}}, here is step 1.</p>',
      delay: null,
    });
    expect(outcome.usage).toEqual({ promptTokens: expect.any(Number), completionTokens: expect.any(Number) });
    expect(outcome.usage!.promptTokens).toBeGreaterThan(0);

    const request = ai.requests.at(-1)!;
    expect(request.method).toBe('POST');
    expect(request.path).toBe('/v1/chat/completions');
    expect(request.authorization).toBe(`Bearer ${apiKey}`);
    expect(request.contentType).toMatch(/^application\/json/);
    expect(request.body).toMatchObject({ model: 'gpt-4o-mini', response_format: { type: 'json_object' }, temperature: expect.any(Number) });
    expect(request.body!.messages).toEqual(buildSequencePrompt(onboarding));
  });

  it('asks for the count it was given and reads back that many', async () => {
    const outcome = await writeSequenceEmails(settings, { ...onboarding, emailCount: 10 });
    expect(outcome.ok && outcome.emails.length).toBe(10);
    const outcomeOfOne = await writeSequenceEmails(settings, { ...onboarding, emailCount: 1 });
    expect(outcomeOfOne.ok && outcomeOfOne.emails).toHaveLength(1);
  });

  it('cuts extra emails the model adds beyond emailCount', async () => {
    ai.reply = () => sampleEmails(7);
    const outcome = await writeSequenceEmails(settings, { ...onboarding, emailCount: 3 });
    expect(outcome.ok && outcome.emails.map((e) => e.subject)).toEqual(['Email 1 for {{contact.first_name|there}}', 'Email 2 for {{contact.first_name|there}}', 'Email 3 for {{contact.first_name|there}}']);
  });

  it('reads JSON wrapped in a ```json fence with prose around it', async () => {
    ai.reply = () => `Here is your sequence:\n\n\`\`\`json\n${sampleEmails(2)}\n\`\`\`\nLet me know if you want changes.`;
    const outcome = await writeSequenceEmails(settings, { ...onboarding, emailCount: 2 });
    expect(outcome).toMatchObject({ ok: true });
    expect(outcome.ok && outcome.emails.map((e) => e.delay)).toEqual([null, { days: 1 }]);
  });

  it('returns a retryable unparseable_response when the content is not the JSON asked for', async () => {
    ai.reply = () => 'I am sorry, I cannot help with that.';
    expect(await writeSequenceEmails(settings, onboarding)).toMatchObject({ ok: false, retryable: true, code: 'unparseable_response', message: expect.stringContaining('not JSON') });
    ai.reply = () => JSON.stringify({ sequence: [] });
    expect(await writeSequenceEmails(settings, onboarding)).toMatchObject({ ok: false, retryable: true, code: 'unparseable_response', message: expect.stringContaining('"emails"') });
  });

  it('says the answer was cut off when the model hit its token limit', async () => {
    ai.script.push(completion(sampleEmails(5).slice(0, 300), { finishReason: 'length' }));
    const outcome = await writeSequenceEmails(settings, onboarding);
    expect(outcome).toMatchObject({ ok: false, retryable: true, code: 'unparseable_response' });
    expect(!outcome.ok && outcome.message).toContain('cut off');
  });

  it('returns a retryable unparseable_response for a refusal with no content', async () => {
    ai.script.push(completion(null, { refusal: "I'm sorry, I can't assist with that request." }));
    const outcome = await writeSequenceEmails(settings, onboarding);
    expect(outcome).toMatchObject({ ok: false, retryable: true, code: 'unparseable_response' });
    expect(!outcome.ok && outcome.message).toContain("can't assist");
  });

  it('reports the model the endpoint says answered', async () => {
    ai.script.push(completion(sampleEmails(5), { model: 'gpt-4o-mini-2024-07-18' }));
    expect(await writeSequenceEmails(settings, onboarding)).toMatchObject({ ok: true, model: 'gpt-4o-mini-2024-07-18' });
  });

  it('fails permanently on a wrong key with the endpoint message', async () => {
    const outcome = await writeSequenceEmails({ ...settings, apiKey: 'sk-wrong-key-9999' }, onboarding);
    expect(outcome).toMatchObject({ ok: false, retryable: false, code: 'invalid_api_key' });
    expect(!outcome.ok && outcome.message).toContain('Incorrect API key provided');
    expect(ai.requests.at(-1)!.authorization).toBe('Bearer sk-wrong-key-9999');
  });

  it('fails permanently when no key is sent to an endpoint that needs one', async () => {
    const outcome = await writeSequenceEmails({ ...settings, apiKey: null }, onboarding);
    expect(outcome).toMatchObject({ ok: false, retryable: false, code: 'http_401' });
    expect(!outcome.ok && outcome.message).toContain("didn't provide an API key");
    expect(ai.requests.at(-1)!.authorization).toBeUndefined();
  });

  it.each([
    [400, aiError(400, "Invalid value for 'temperature'.", 'invalid_request_error', 'invalid_value', 'temperature'), 'invalid_value'],
    [403, aiError(403, 'Project does not have access to model gpt-4o-mini', 'invalid_request_error', 'model_not_found'), 'model_not_found'],
    [404, aiError(404, 'The model `gpt-9` does not exist or you do not have access to it.', 'invalid_request_error', 'model_not_found'), 'model_not_found'],
  ])('fails permanently on %i with the endpoint message', async (_status, scripted, code) => {
    ai.script.push(scripted);
    const outcome = await writeSequenceEmails(settings, onboarding);
    expect(outcome).toMatchObject({ ok: false, retryable: false, code });
    expect(!outcome.ok && outcome.message).toContain((scripted.body as { error: { message: string } }).error.message);
  });

  it('retries 429 honouring Retry-After', async () => {
    ai.script.push({ ...aiError(429, 'Rate limit reached for gpt-4o-mini on requests per min (RPM): Limit 3, Used 3, Requested 1.', 'requests', 'rate_limit_exceeded'), headers: { 'retry-after': '3' } });
    expect(await writeSequenceEmails(settings, onboarding)).toEqual({
      ok: false,
      retryable: true,
      code: 'rate_limit_exceeded',
      message: expect.stringContaining('Rate limit reached'),
      retryAfterMs: 3000,
    });
  });

  it('does not retry a 429 that means the account is out of credit', async () => {
    ai.script.push(aiError(429, 'You exceeded your current quota, please check your plan and billing details.', 'insufficient_quota', 'insufficient_quota'));
    expect(await writeSequenceEmails(settings, onboarding)).toMatchObject({ ok: false, retryable: false, code: 'insufficient_quota' });
  });

  it('retries 5xx, with or without a JSON body', async () => {
    ai.script.push(aiError(500, 'The server had an error while processing your request. Sorry about that!', 'server_error'));
    expect(await writeSequenceEmails(settings, onboarding)).toMatchObject({ ok: false, retryable: true, code: 'http_500', message: expect.stringContaining('(server_error)') });
    ai.script.push({ status: 502, body: '<html>Bad gateway</html>' });
    expect(await writeSequenceEmails(settings, onboarding)).toMatchObject({ ok: false, retryable: true, code: 'http_502', message: expect.stringContaining('Bad gateway') });
  });

  it('retries a 200 that is not a chat completion', async () => {
    ai.script.push({ status: 200, body: { hello: 'world' } });
    expect(await writeSequenceEmails(settings, onboarding)).toMatchObject({ ok: false, retryable: true, code: 'bad_response' });
  });

  it('retries when the endpoint hangs past timeoutMs', async () => {
    ai.script.push({ status: 0, hang: true });
    const started = Date.now();
    expect(await writeSequenceEmails({ ...settings, timeoutMs: 200 }, onboarding)).toMatchObject({ ok: false, retryable: true, code: 'timeout' });
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('retries when the endpoint cannot be reached', async () => {
    const unreachable = { ...settings, baseUrl: `http://127.0.0.1:${await freePort()}/v1` };
    expect(await writeSequenceEmails(unreachable, onboarding)).toMatchObject({ ok: false, retryable: true, code: 'network_error' });
  });

  it('refuses an emailCount outside 1–10 without calling the endpoint', async () => {
    const before = ai.requests.length;
    for (const emailCount of [0, 11, 2.5]) {
      expect(await writeSequenceEmails(settings, { ...onboarding, emailCount })).toMatchObject({ ok: false, retryable: false, code: 'invalid_request' });
    }
    expect(ai.requests.length).toBe(before);
  });

  it('accepts a base URL with a trailing slash', async () => {
    expect(await writeSequenceEmails({ ...settings, baseUrl: `${ai.baseUrl}/` }, { ...onboarding, emailCount: 2 })).toMatchObject({ ok: true });
    expect(ai.requests.at(-1)!.path).toBe('/v1/chat/completions');
  });
});

describe('writeSequenceEmails against a local model server with no key', () => {
  let local: FakeAi;
  beforeAll(async () => {
    local = await startFakeAi({ apiKey: null });
  });
  afterAll(async () => local.close());

  it('sends no Authorization header when apiKey is null', async () => {
    const outcome = await writeSequenceEmails({ baseUrl: local.baseUrl, apiKey: null, model: 'llama3.1:8b' }, { ...onboarding, emailCount: 3 });
    expect(outcome).toMatchObject({ ok: true, model: 'llama3.1:8b' });
    expect(local.requests.at(-1)!.authorization).toBeUndefined();
  });
});

describe('buildSequencePrompt', () => {
  it('asks for a JSON object with exactly emailCount emails and the brief in the user message', () => {
    const [system, user] = buildSequencePrompt(onboarding);
    expect(system!.role).toBe('system');
    expect(system!.content).toContain('{"emails":[{"subject":"...","previewText":"...","html":"...","delayDays":0}]}');
    expect(system!.content).toContain('h1, h2, p, a, ul, li, strong, em, br');
    expect(system!.content).toContain('{{contact.first_name|there}}');
    expect(system!.content).toContain('Nudge');
    expect(user!.role).toBe('user');
    expect(user!.content).toContain('exactly 5 emails');
    expect(user!.content).toContain('Acme Notes');
    expect(user!.content).toContain('A note-taking app for small teams');
    expect(user!.content).toContain(onboarding.goal);
    expect(user!.content).toContain('Onboarding Sequence');
  });

  it('offers {{event.*}} merge tags only when the trigger is event_received', () => {
    expect(buildSequencePrompt(onboarding)[0]!.content).toContain('Do not use {{event.');
    const [system, user] = buildSequencePrompt({ ...onboarding, trigger: 'event_received', eventName: 'ecommerce.order_placed' });
    expect(system!.content).toContain('{{event.<property>}}');
    expect(system!.content).not.toContain('Do not use {{event.');
    expect(user!.content).toContain('ecommerce.order_placed');
  });
});

describe('parseWrittenEmails', () => {
  it('reads subject, preview text, html and delays in days after the previous email', () => {
    const content = JSON.stringify({
      emails: [email({ subject: '  Welcome  ', previewText: 'Start here', delayDays: 3 }), email({ delayDays: 2 }), email({ delayDays: 0.5, previewText: '' }), email({ delayDays: '4' })],
    });
    expect(parseWrittenEmails(content, 4)).toEqual({
      ok: true,
      emails: [
        { subject: 'Welcome', previewText: 'Start here', html: '<p>Hi</p>', delay: null },
        { subject: 'Hello', previewText: null, html: '<p>Hi</p>', delay: { days: 2 } },
        { subject: 'Hello', previewText: null, html: '<p>Hi</p>', delay: { hours: 12 } },
        { subject: 'Hello', previewText: null, html: '<p>Hi</p>', delay: { days: 4 } },
      ],
    });
  });

  it('defaults a missing or out-of-range delay to one day after the previous email', () => {
    const content = JSON.stringify({ emails: [email({}), email({}), email({ delayDays: -2 }), email({ delayDays: 400 }), email({ delayDays: 'soon' })] });
    const parsed = parseWrittenEmails(content, 5);
    expect(parsed.ok && parsed.emails.map((e) => e.delay)).toEqual([null, { days: 1 }, { days: 1 }, { days: 1 }, { days: 1 }]);
  });

  it('drops an email without a subject or html and keeps the rest', () => {
    const content = JSON.stringify({ emails: [email({ subject: '' }), email({ subject: 'Kept' }), email({ html: '   ' }), { subject: 'No html' }, email({ subject: 'x'.repeat(201) }), 'text', email({ subject: 'Also kept' })] });
    const parsed = parseWrittenEmails(content, 10);
    // The first email kept becomes the one sent right away.
    expect(parsed.ok && parsed.emails.map((e) => [e.subject, e.delay])).toEqual([['Kept', null], ['Also kept', { days: 1 }]]);
  });

  it('fails, naming the problems, when no email is valid', () => {
    const parsed = parseWrittenEmails(JSON.stringify({ emails: [email({ subject: null }), email({ html: '' })] }), 5);
    expect(parsed).toEqual({ ok: false, message: 'The answer has no usable email: emails[0] has no subject; emails[1] has no html' });
    expect(parseWrittenEmails('{"emails":[]}', 5)).toEqual({ ok: false, message: 'The answer has no usable email (the "emails" array is empty)' });
  });

  it('fails on content that is not JSON or has no emails array', () => {
    expect(parseWrittenEmails('Sure! Here are your emails: Subject: Welcome…', 5)).toMatchObject({ ok: false, message: expect.stringContaining('not JSON') });
    expect(parseWrittenEmails('{"emails": [{"subject": "Hi", "html": "<p>', 5)).toMatchObject({ ok: false, message: expect.stringContaining('not JSON') });
    expect(parseWrittenEmails('{"emails": {"subject": "Hi"}}', 5)).toEqual({ ok: false, message: 'The answer has no "emails" array' });
    expect(parseWrittenEmails('[]', 5)).toEqual({ ok: false, message: 'The answer has no "emails" array' });
  });

  it('truncates to emailCount', () => {
    const parsed = parseWrittenEmails(sampleEmails(6), 4);
    expect(parsed.ok && parsed.emails).toHaveLength(4);
  });

  it('drops html over 100 KB', () => {
    const parsed = parseWrittenEmails(JSON.stringify({ emails: [email({ html: `<p>${'a'.repeat(100 * 1024)}</p>` }), email({ subject: 'Small' })] }), 5);
    expect(parsed.ok && parsed.emails.map((e) => e.subject)).toEqual(['Small']);
  });

  it('removes script and style elements with their content', () => {
    const html = '<style>p { color: red }</style><p>Hi</p><script>alert(1)</script><SCRIPT type="text/javascript">steal()</SCRIPT ><p>Bye</p><script>never closed';
    const parsed = parseWrittenEmails(JSON.stringify({ emails: [email({ html })] }), 1);
    expect(parsed.ok && parsed.emails[0]!.html).toBe('<p>Hi</p><p>Bye</p>');
  });

  it('removes event handlers and javascript: links but keeps ordinary attributes and merge tags', () => {
    const html =
      '<p onclick="steal()" class="intro">Hi {{contact.first_name|there}}</p>' +
      '<a href="javascript:alert(1)">bad</a> <a href=" jav&#x61;script:alert(1)">encoded</a> ' +
      '<a href="https://example.com/start?ref={{contact.email}}" target=_blank>Start</a><br/><img src=x onerror=alert(1)>';
    const parsed = parseWrittenEmails(JSON.stringify({ emails: [email({ html })] }), 1);
    expect(parsed.ok && parsed.emails[0]!.html).toBe(
      '<p class="intro">Hi {{contact.first_name|there}}</p>' +
        '<a>bad</a> <a>encoded</a> ' +
        '<a href="https://example.com/start?ref={{contact.email}}" target="_blank">Start</a><br /><img src="x">',
    );
  });

  it('drops an email whose html is nothing but a script', () => {
    const parsed = parseWrittenEmails(JSON.stringify({ emails: [email({ html: '<script>alert(1)</script>' }), email({ subject: 'Real' })] }), 2);
    expect(parsed.ok && parsed.emails.map((e) => e.subject)).toEqual(['Real']);
  });
});
