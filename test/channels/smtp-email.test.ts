import { createServer } from 'node:net';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OutboundMessage } from '../../src/channels/channel.js';
import { SmtpChannel, smtpChannelFromSettings } from '../../src/channels/smtp-channel.js';
import { renderEmail } from '../../src/domain/email-render.js';
import { unsubscribeUrlFor } from '../../src/domain/unsubscribe-token.js';
import { createOrUpsertContact } from '../../src/engine/contact-service.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { dialects } from '../support/databases.js';

/**
 * Email end to end: a real SMTP server (smtp-server) on a random local port receives
 * what SmtpChannel sends; the message is parsed back with mailparser, and its
 * one-click unsubscribe link is followed through the API.
 */

const user = 'mailer';
const pass = 's3cret-pass';

interface Received {
  from: string;
  to: string[];
  raw: Buffer;
}

class LocalSmtpServer {
  readonly received: Received[] = [];
  port = 0;
  private readonly server = new SMTPServer({
    secure: false,
    disabledCommands: ['STARTTLS'],
    allowInsecureAuth: true,
    authMethods: ['PLAIN', 'LOGIN'],
    onAuth: (auth, _session, callback) => {
      if (auth.username === user && auth.password === pass) return callback(null, { user: auth.username });
      const error = Object.assign(new Error('Invalid username or password'), { responseCode: 535 });
      return callback(error);
    },
    onRcptTo: (address, _session, callback) => {
      if (address.address.startsWith('full@')) return callback(Object.assign(new Error('Mailbox full, try again later'), { responseCode: 452 }));
      if (address.address.startsWith('nobody@')) return callback(Object.assign(new Error('No such user here'), { responseCode: 550 }));
      return callback();
    },
    onData: (stream, session, callback) => {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        this.received.push({ from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '', to: session.envelope.rcptTo.map((r) => r.address), raw: Buffer.concat(chunks) });
        callback();
      });
    },
    logger: false,
  });

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', () => resolve()));
    this.port = (this.server.server.address() as { port: number }).port;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

const email = (to: string, overrides: Partial<OutboundMessage> = {}): OutboundMessage => ({
  id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a80',
  workspaceId: 'ws',
  channel: 'email',
  to,
  content: { kind: 'email', subject: 'Hello', html: '<p>Hello</p>', text: 'Hello' },
  ...overrides,
});

describe('SmtpChannel against a real SMTP server', () => {
  const smtp = new LocalSmtpServer();
  let channel: SmtpChannel;
  beforeAll(async () => {
    await smtp.start();
    channel = new SmtpChannel({ url: `smtp://${user}:${pass}@127.0.0.1:${smtp.port}`, from: 'Acme <hello@acme.example>' });
  });
  afterAll(async () => {
    channel.close();
    await smtp.stop();
  });

  it('delivers with the configured sender and our message id', async () => {
    const result = await channel.send(email('ana@example.com'));
    expect(result).toEqual({ ok: true, providerMessageId: '<0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a80@acme.example>', status: 'sent' });
    const last = smtp.received.at(-1)!;
    expect(last).toMatchObject({ from: 'hello@acme.example', to: ['ana@example.com'] });
    const parsed = await simpleParser(last.raw);
    expect(parsed.from?.text).toBe('"Acme" <hello@acme.example>');
    expect(parsed.messageId).toBe('<0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a80@acme.example>');
  });

  it('retries a 4xx reply and gives up on a 5xx reply', async () => {
    expect(await channel.send(email('full@example.com'))).toMatchObject({ ok: false, retryable: true, code: 'smtp_452' });
    const refused = await channel.send(email('nobody@example.com'));
    expect(refused).toMatchObject({ ok: false, retryable: false, code: 'smtp_550' });
    expect(refused.ok === false && refused.message).toContain('No such user here');
  });

  it('marks wrong credentials as a permanent auth failure', async () => {
    const wrong = new SmtpChannel({ url: `smtp://${user}:wrong@127.0.0.1:${smtp.port}`, from: 'hello@acme.example' });
    try {
      expect(await wrong.send(email('ana@example.com'))).toMatchObject({ ok: false, retryable: false, code: 'smtp_auth_failed', authFailure: true });
    } finally {
      wrong.close();
    }
  });

  it('retries when the server cannot be reached', async () => {
    const down = new SmtpChannel({ url: `smtp://${user}:${pass}@127.0.0.1:${await freePort()}`, from: 'hello@acme.example', timeoutMs: 2000 });
    try {
      const result = await down.send(email('ana@example.com'));
      expect(result).toMatchObject({ ok: false, retryable: true });
      expect(result.ok === false && result.code).toMatch(/^(econnection|econnrefused|esocket)$/);
    } finally {
      down.close();
    }
  });

  it('refuses content that is not an email without connecting', async () => {
    expect(await channel.send(email('ana@example.com', { content: { kind: 'text', text: 'hi' } }))).toMatchObject({ ok: false, retryable: false, code: 'unsupported_content' });
  });

  it('builds itself from workspace settings', async () => {
    const fromSettings = smtpChannelFromSettings({ from: 'Acme <hello@acme.example>' }, { url: `smtp://${user}:${pass}@127.0.0.1:${smtp.port}` }, { timeoutMs: 5000 });
    try {
      expect((await fromSettings.send(email('bo@example.com'))).ok).toBe(true);
    } finally {
      fromSettings.close();
    }
  });
});

describe.each(dialects)('an email with a one-click unsubscribe link on %s', (dialect) => {
  const smtp = new LocalSmtpServer();
  const publicUrl = 'https://nudge.example.com';
  let t: TestApp;
  let channel: SmtpChannel;
  let contactId: string;
  let parsed: ParsedMail;
  let link: string;

  beforeAll(async () => {
    await smtp.start();
    t = await createTestApp(dialect, { env: { NUDGE_PUBLIC_URL: publicUrl } });
    channel = new SmtpChannel({ url: `smtp://${user}:${pass}@127.0.0.1:${smtp.port}`, from: 'Acme <hello@acme.example>', unsubscribeMailto: 'unsubscribe@acme.example' });
    const contact = (await createOrUpsertContact(t.ctx, t.workspaceId, { phone: '+14155550123', email: 'ana@example.com', first_name: 'Ana <b>&</b> "Bo"' })).contact as { id: string };
    contactId = contact.id;

    // What the worker and the interpreter produce for this contact: the per-contact link
    // in the scope, the blocks rendered, the headers from the renderer.
    const unsubscribeUrl = unsubscribeUrlFor(publicUrl, t.ctx.secretKey, t.workspaceId, contactId);
    const scope = { contact: { first_name: 'Ana <b>&</b> "Bo"' }, context: { code: 'SAVE<10>' }, unsubscribe_url: unsubscribeUrl };
    const rendered = renderEmail(
      { html: '<h1>Welcome, {{contact.first_name}}!</h1><p>Your code: <strong>{{context.code}}</strong></p><a href="https://example.com/start">Get Started</a>' },
      scope,
    );
    const result = await channel.send({
      id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a81',
      workspaceId: t.workspaceId,
      channel: 'email',
      to: 'ana@example.com',
      content: { kind: 'email', subject: 'Welcome, Ana & Bo', html: rendered.html, text: rendered.text, headers: rendered.headers },
    });
    expect(result.ok).toBe(true);
    parsed = await simpleParser(smtp.received.at(-1)!.raw);
    link = unsubscribeUrl;
  });
  afterAll(async () => {
    channel.close();
    await t.close();
    await smtp.stop();
  });

  const contactRow = () => t.ctx.database.db.selectFrom('contacts').select(['email_opted_out_at', 'opted_out_at', 'sms_opted_out_at']).where('id', '=', contactId).executeTakeFirstOrThrow();
  const pathOf = (url: string) => new URL(url).pathname;

  it('arrives with an HTML part, a text part and merge values escaped only in the HTML', () => {
    expect(parsed.subject).toBe('Welcome, Ana & Bo');
    expect(parsed.html).toContain('Welcome, Ana &lt;b&gt;&amp;&lt;/b&gt; &quot;Bo&quot;!</h1>');
    expect(parsed.html).toContain('<strong>SAVE&lt;10&gt;</strong>');
    expect(parsed.html).toContain('<a href="https://example.com/start"');
    expect(parsed.html).not.toContain('<b>&</b>');
    expect(parsed.text).toContain('Welcome, Ana <b>&</b> "Bo"!');
    expect(parsed.text).toContain('Your code: SAVE<10>');
    expect(parsed.text).toContain('Get Started: https://example.com/start');
    expect(parsed.text).toContain(`Unsubscribe: ${link}`);
  });

  it('carries both List-Unsubscribe headers (RFC 8058)', () => {
    const header = (name: string) => parsed.headerLines.find((h) => h.key === name)?.line.replace(/^[^:]+:\s*/, '').replace(/\r?\n\s+/g, ' ');
    expect(header('list-unsubscribe')).toBe(`<${link}>, <mailto:unsubscribe@acme.example?subject=unsubscribe>`);
    expect(header('list-unsubscribe-post')).toBe('List-Unsubscribe=One-Click');
    expect(link).toMatch(/^https:\/\/nudge\.example\.com\/unsubscribe\/[A-Za-z0-9_-]{44}\.[A-Za-z0-9_-]{43}$/);
  });

  it('shows a confirmation page on GET and changes nothing', async () => {
    const page = await t.app.inject({ method: 'GET', url: pathOf(link) });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.headers['cache-control']).toBe('no-store');
    expect(page.body).toContain(`<form method="post" action="${pathOf(link)}">`);
    expect(page.body).toContain('a•••@example.com');
    expect(page.body).toContain('<strong>Acme</strong>');
    expect(await contactRow()).toMatchObject({ email_opted_out_at: null, opted_out_at: null });
  });

  it('refuses a tampered token with a 400 page, or the error body to JSON clients', async () => {
    const path = pathOf(link);
    const tampered = path.slice(0, -1) + (path.endsWith('A') ? 'B' : 'A');
    const page = await t.app.inject({ method: 'GET', url: tampered, headers: { accept: 'text/html' } });
    expect(page.statusCode).toBe(400);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.body).toContain('This link does not work');
    const post = await t.app.inject({ method: 'POST', url: tampered, headers: { accept: 'application/json' } });
    expect(post.statusCode).toBe(400);
    expect(post.json()).toMatchObject({ code: 'bad_request', errors: { token: ['token is not a valid unsubscribe token'] } });

    // Another contact's id under this contact's signature is refused too.
    const [payload, signature] = path.split('/').at(-1)!.split('.') as [string, string];
    const swapped = Buffer.from(payload, 'base64url');
    swapped[32] = swapped[32]! ^ 1;
    expect((await t.app.inject({ method: 'POST', url: `/unsubscribe/${swapped.toString('base64url')}.${signature}` })).statusCode).toBe(400);
    expect(await contactRow()).toMatchObject({ email_opted_out_at: null });
  });
  it('unsubscribes on the one-click POST, idempotently', async () => {
    const first = await t.app.inject({ method: 'POST', url: pathOf(link), headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'List-Unsubscribe=One-Click' });
    expect(first.statusCode, first.body).toBe(200);
    expect(first.body).toContain('You are unsubscribed');
    const after = await contactRow();
    expect(after.email_opted_out_at).not.toBeNull();
    expect(Number(after.opted_out_at)).toBe(Number(after.email_opted_out_at));
    expect(after.sms_opted_out_at).toBeNull();

    const again = await t.app.inject({ method: 'POST', url: pathOf(link) });
    expect(again.statusCode).toBe(200);
    const multipart = await t.app.inject({
      method: 'POST',
      url: pathOf(link),
      headers: { 'content-type': 'multipart/form-data; boundary=x' },
      payload: '--x\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\nOne-Click\r\n--x--\r\n',
    });
    expect(multipart.statusCode).toBe(200);
    expect(await contactRow()).toEqual(after);
    const page = await t.app.inject({ method: 'GET', url: pathOf(link) });
    expect(page.body).toContain('no longer receives marketing email');
  });

});
