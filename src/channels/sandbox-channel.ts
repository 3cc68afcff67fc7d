import type { ChannelAdapter, OutboundMessage, SendResult } from './channel.js';

/**
 * The default for every channel without provider settings: it accepts every message
 * at once. The message row itself is the sandbox's record (status sent → delivered),
 * visible through GET /api/v1/messages, so nothing leaves the machine.
 */
export class SandboxChannel implements ChannelAdapter {
  readonly provider = 'sandbox';
  readonly inline: boolean;

  /** `inline: false` makes the sandbox go through the dispatcher like a remote provider (benchmarks, tests). */
  constructor(options: { inline?: boolean } = {}) {
    this.inline = options.inline ?? true;
  }

  async send(message: OutboundMessage): Promise<SendResult> {
    return { ok: true, providerMessageId: `sandbox-${message.id}`, status: 'delivered' };
  }
}
