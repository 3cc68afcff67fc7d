import type { SendResult } from '../channels/channel.js';
import type { ChannelRegistry } from './channel-registry.js';
import type { Context } from './context.js';
import { recordChannelStatus } from './provider-settings-service.js';

/**
 * Keeps each workspace's channel status true to what the provider last said: an
 * authentication failure (expired token, revoked permission) turns it to `error`
 * with the provider's message, shown in GET /api/v1/settings/channels; the next
 * success turns it back to `ok`. Writes only on a change, so a healthy channel costs
 * nothing per batch.
 */
export async function noteChannelHealth(
  ctx: Context,
  registry: ChannelRegistry,
  sent: ReadonlyArray<{ workspace_id: string; channel: 'whatsapp' | 'sms' | 'email' }>,
  results: readonly SendResult[],
): Promise<void> {
  const changes = new Map<string, { workspaceId: string; channel: 'whatsapp' | 'sms' | 'email'; error: string | null }>();
  sent.forEach((message, i) => {
    const result = results[i];
    if (!result) return;
    const key = `${message.workspace_id}:${message.channel}`;
    if (!result.ok && result.authFailure) {
      changes.set(key, { workspaceId: message.workspace_id, channel: message.channel, error: `${result.code}: ${result.message}` });
    } else if (result.ok && !changes.has(key)) {
      changes.set(key, { workspaceId: message.workspace_id, channel: message.channel, error: null });
    }
  });
  for (const change of changes.values()) {
    const current = registry.statusOf ? registry.statusOf(change.workspaceId, change.channel) : undefined;
    if (current === null) continue; // the sandbox: no settings, no status
    if (change.error === null) {
      if (current !== 'ok') await recordChannelStatus(ctx, change.workspaceId, change.channel, 'ok');
    } else {
      await recordChannelStatus(ctx, change.workspaceId, change.channel, 'error', change.error);
    }
  }
}
