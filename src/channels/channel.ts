import type { Channel as ChannelName } from '../domain/definition.js';

/**
 * One interface for every provider. `send` never throws for an expected outcome:
 * it returns accepted, a retryable failure (with an optional retry-after), or a
 * permanent failure. Channels never touch the database.
 */
export interface OutboundMessage {
  /** Nudge's message id: adapters pass it on where the provider keeps a client reference. */
  id: string;
  workspaceId: string;
  channel: ChannelName;
  /** E.164 phone for WhatsApp and SMS, an address for email. */
  to: string;
  /** The rendered message: what the adapter turns into the provider's wire format. */
  content: RenderedContent;
}

export type RenderedContent =
  | { kind: 'text'; text: string }
  | { kind: 'template'; name: string; language: string; components: TemplateComponentValues }
  | { kind: 'buttons'; text: string; buttons: Array<{ id: string; title: string }>; header?: string; footer?: string }
  | { kind: 'list'; text: string; button: string; sections: Array<{ title?: string; rows: Array<{ id: string; title: string; description?: string }> }>; header?: string; footer?: string }
  | { kind: 'email'; subject: string; html: string; text: string; previewText?: string; headers?: Record<string, string>; from?: string };

/** Values for a template's placeholders, ready to send. */
export interface TemplateComponentValues {
  header?: string[];
  body?: string[];
  /** Button index → parameter (URL suffix or quick-reply payload). */
  buttons?: Array<{ index: number; sub_type: 'url' | 'quick_reply'; parameter: string }>;
}

export type SendResult =
  | { ok: true; providerMessageId: string; status?: 'sent' | 'delivered'; details?: Record<string, unknown> }
  | {
      ok: false;
      retryable: boolean;
      code: string;
      message: string;
      retryAfterMs?: number;
      /** The provider refused our credentials (expired token, missing permission): the workspace's channel status should show it. */
      authFailure?: boolean;
      /**
       * The request may have reached the provider (a timeout, or the connection lost after
       * the request was written): it may have accepted the message. The engine then waits
       * for the provider's status callback, which names Nudge's message id, before it
       * sends again.
       */
      ambiguous?: boolean;
    };

export interface ChannelAdapter {
  /** Provider name recorded on the message: sandbox, whatsapp-cloud, twilio, smtp. */
  readonly provider: string;
  /**
   * True when a send completes without leaving the process (the sandbox): the engine
   * then records it in the same transaction that queues the message, exactly once.
   * Adapters that call a provider leave it unset and go through the dispatcher.
   */
  readonly inline?: boolean;
  send(message: OutboundMessage): Promise<SendResult>;
}

/** The reference a provider echoes back in status callbacks: Nudge's message id. */
export function messageReference(messageId: string): string {
  return `nudge:${messageId}`;
}

/** Nudge's message id from a reference echoed by a provider, or null. */
export function messageIdFromReference(reference: string | null | undefined): string | null {
  const match = /^nudge:([0-9a-f-]{36})$/i.exec(reference ?? '');
  return match ? match[1]!.toLowerCase() : null;
}

/** Connection failures that happen before any byte of the request left: the provider saw nothing. */
export function neverConnected(code: string): boolean {
  return /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|UND_ERR_CONNECT_TIMEOUT/.test(code);
}
