import nodemailer, { type Transporter } from 'nodemailer';
import type SMTPPool from 'nodemailer/lib/smtp-pool/index.js';
import type { ChannelAdapter, OutboundMessage, SendResult } from './channel.js';

/**
 * Email over SMTP with nodemailer, through a pooled transport (a few long-lived
 * connections reused across messages, instead of a TCP and TLS handshake per email).
 *
 * Outcomes, as values (never thrown):
 * - accepted → the Message-ID (which we set from Nudge's message id);
 * - SMTP 4xx replies (greylisting, mailbox busy, rate limits), refused or dropped
 *   connections, timeouts and DNS failures → retryable;
 * - SMTP 5xx replies → permanent with the reply code (`smtp_550`); an authentication
 *   failure (EAUTH, 535) is permanent and marked `authFailure`.
 */
export interface SmtpChannelConfig {
  /** `smtp://user:pass@host:587` (STARTTLS when offered) or `smtps://user:pass@host:465` (TLS). */
  url: string;
  /** Default sender, e.g. `"Acme" <hello@acme.example>`. */
  from: string;
  /**
   * An address that handles unsubscribe requests by email. When set it is added to
   * List-Unsubscribe beside the one-click link; leave it unset unless such a mailbox is
   * really processed (a mailto that goes nowhere is worse than none).
   */
  unsubscribeMailto?: string;
  /** Connection, greeting and socket timeouts (default 10 s, 10 s, 30 s). */
  timeoutMs?: number;
  maxConnections?: number;
}

interface SmtpError extends Error {
  code?: string;
  responseCode?: number;
  response?: string;
  command?: string;
}

const retryableCodes = new Set(['ECONNECTION', 'ETIMEDOUT', 'ESOCKET', 'EDNS', 'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'EPROXY']);

/** How an SMTP failure is handled: temporary (4xx, network) is retried, permanent (5xx) is not. */
export function classifySmtpError(error: SmtpError): SendResult & { ok: false } {
  const message = (error.response ?? error.message ?? 'SMTP error').slice(0, 500);
  const reply = typeof error.responseCode === 'number' ? error.responseCode : null;
  if (error.code === 'EAUTH' || reply === 535 || reply === 534) {
    return { ok: false, retryable: false, code: 'smtp_auth_failed', message, authFailure: true };
  }
  if (reply !== null && reply >= 400 && reply < 500) return { ok: false, retryable: true, code: `smtp_${reply}`, message };
  if (reply !== null && reply >= 500) return { ok: false, retryable: false, code: `smtp_${reply}`, message };
  if (error.code && retryableCodes.has(error.code)) return { ok: false, retryable: true, code: error.code.toLowerCase(), message };
  // EENVELOPE/EMESSAGE without a reply: our message is malformed (no recipient, bad address).
  if (error.code === 'EENVELOPE' || error.code === 'EMESSAGE') return { ok: false, retryable: false, code: error.code.toLowerCase(), message };
  return { ok: false, retryable: true, code: 'smtp_error', message };
}

function domainOf(from: string): string {
  const match = /@([^>\s]+)>?\s*$/.exec(from);
  return match?.[1] ?? 'nudge.local';
}

export class SmtpChannel implements ChannelAdapter {
  readonly provider = 'smtp';
  private readonly transport: Transporter<SMTPPool.SentMessageInfo, SMTPPool.Options>;

  constructor(private readonly config: SmtpChannelConfig) {
    if (!/^smtps?:\/\//i.test(config.url)) throw new Error('SmtpChannel needs an smtp:// or smtps:// URL');
    if (!config.from) throw new Error('SmtpChannel needs a from address');
    const timeout = config.timeoutMs ?? 10_000;
    this.transport = nodemailer.createTransport({
      url: config.url,
      pool: true,
      maxConnections: config.maxConnections ?? 5,
      connectionTimeout: timeout,
      greetingTimeout: timeout,
      socketTimeout: Math.max(timeout, 30_000),
    });
  }

  async send(message: OutboundMessage): Promise<SendResult> {
    const content = message.content;
    if (content.kind !== 'email') {
      return { ok: false, retryable: false, code: 'unsupported_content', message: `SMTP sends email content only, not ${content.kind}` };
    }
    const headers: Record<string, string> = { ...(content.headers ?? {}) };
    const listUnsubscribe = Object.keys(headers).find((h) => h.toLowerCase() === 'list-unsubscribe');
    if (listUnsubscribe && this.config.unsubscribeMailto && !headers[listUnsubscribe]!.includes('mailto:')) {
      headers[listUnsubscribe] = `${headers[listUnsubscribe]}, <mailto:${this.config.unsubscribeMailto}?subject=unsubscribe>`;
    }
    try {
      const info = await this.transport.sendMail({
        from: content.from ?? this.config.from,
        to: message.to,
        subject: content.subject,
        html: content.html,
        text: content.text,
        headers,
        // Our id in the Message-ID: a reply or a bounce can be traced to the message.
        messageId: `<${message.id}@${domainOf(this.config.from)}>`,
      });
      if (info.rejected && info.rejected.length > 0) {
        return { ok: false, retryable: false, code: 'recipient_rejected', message: `The server refused ${info.rejected.join(', ')}` };
      }
      return { ok: true, providerMessageId: info.messageId, status: 'sent' };
    } catch (error) {
      return classifySmtpError(error as SmtpError);
    }
  }

  /** Closes the pooled connections (on shutdown, or when the workspace's settings change). */
  close(): void {
    this.transport.close();
  }
}

/**
 * Builds the adapter from a workspace's email settings (config `{ from }`, secrets
 * `{ url }`). Fits the channel registry's provider factory; the registry closes the
 * pool (`close()`) when the settings change.
 *
 * @example
 * registry.registerProvider('smtp', smtpChannelFromSettings);
 */
export function smtpChannelFromSettings(config: Record<string, unknown>, secrets: Record<string, string>, env: { timeoutMs: number }): SmtpChannel {
  return new SmtpChannel({ url: secrets.url ?? '', from: typeof config.from === 'string' ? config.from : '', timeoutMs: env.timeoutMs });
}
