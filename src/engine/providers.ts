import { SmtpChannel } from '../channels/smtp-channel.js';
import { TwilioChannel } from '../channels/twilio-channel.js';
import { WhatsAppCloudChannel } from '../channels/whatsapp-cloud-channel.js';
import type { SettingsChannelRegistry } from './channel-registry.js';

/**
 * The one place where provider names meet their adapters: each factory turns one
 * workspace's stored settings (validated by domain/provider-settings.ts, secrets
 * decrypted) into an adapter. Adding a provider is a factory here and a spec there.
 */
export function registerProviders(registry: SettingsChannelRegistry): SettingsChannelRegistry {
  const text = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : undefined);
  return registry
    .registerProvider('whatsapp-cloud', (config, secrets, env) =>
      new WhatsAppCloudChannel({
        phoneNumberId: String(config.phone_number_id),
        accessToken: secrets.access_token ?? '',
        graphVersion: text(config.graph_version),
        baseUrl: text(config.base_url),
        timeoutMs: env.timeoutMs,
      }),
    )
    .registerProvider('twilio', (config, secrets, env) =>
      new TwilioChannel({
        accountSid: String(config.account_sid),
        authToken: secrets.auth_token ?? '',
        from: text(config.from),
        messagingServiceSid: text(config.messaging_service_sid),
        baseUrl: text(config.base_url),
        statusCallbackUrl: `${env.publicUrl}/webhooks/twilio/status`,
        timeoutMs: env.timeoutMs,
      }),
    )
    .registerProvider('smtp', (config, secrets, env) =>
      new SmtpChannel({ url: secrets.url ?? '', from: String(config.from), timeoutMs: env.timeoutMs }),
    );
}
