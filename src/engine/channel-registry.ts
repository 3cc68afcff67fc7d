import type { ChannelAdapter } from '../channels/channel.js';
import { SandboxChannel } from '../channels/sandbox-channel.js';
import type { Channel } from '../domain/definition.js';

/**
 * Which adapter sends a workspace's messages on a channel. Every channel without
 * provider settings uses the sandbox.
 */
export interface ChannelRegistry {
  adapterFor(workspaceId: string, channel: Channel, provider: string): ChannelAdapter;
  providerFor(workspaceId: string, channel: Channel): string;
}

export class SandboxOnlyRegistry implements ChannelRegistry {
  private readonly sandbox: SandboxChannel;
  constructor(options: { inline?: boolean } = {}) {
    this.sandbox = new SandboxChannel(options);
  }
  adapterFor(): ChannelAdapter {
    return this.sandbox;
  }
  providerFor(): string {
    return 'sandbox';
  }
}
