import { Type } from 'typebox';
import { defaultOptInConfirmation, defaultOptInKeywords, defaultOptOutConfirmation, defaultOptOutKeywords } from '../../domain/consent.js';
import { getConsentSettings, updateConsentSettings, type ConsentSettingsInput } from '../../engine/consent-service.js';
import type { Context } from '../../engine/context.js';
import * as settings from '../../engine/provider-settings-service.js';
import { authErrors, errorResponses, Nullable, ok, Timestamp } from '../schemas.js';
import type { App } from '../types.js';

/*
 * Workspace settings: the provider credentials of each channel and the consent
 * keywords. Every rule lives in engine/provider-settings-service.ts and
 * engine/consent-service.ts (the CLI calls them too); secrets go in, never out.
 */

const ChannelParam = Type.Object({
  channel: Type.Union([Type.Literal('whatsapp'), Type.Literal('sms'), Type.Literal('email')], { description: 'whatsapp, sms or email' }),
});

const secretText = (description: string) => Type.Optional(Type.String({ maxLength: 4096, description: `${description} Secret: stored encrypted, never returned. Leave it out to keep the stored value.` }));
const configText = (description: string, maxLength = 300) => Type.Optional(Type.String({ maxLength, description }));

const ChannelSettingsBody = Type.Object(
  {
    provider: Type.Optional(Type.String({ maxLength: 40, description: 'whatsapp-cloud for whatsapp, twilio for sms, smtp for email (the default of each)' })),
    phone_number_id: configText('WhatsApp: the phone number id from WhatsApp Manager (required)', 30),
    business_account_id: configText('WhatsApp: the WhatsApp Business Account id (needed for templates)', 30),
    graph_version: configText('WhatsApp: Graph API version (default v23.0)', 10),
    base_url: configText('WhatsApp and SMS: the provider API base URL (default https://graph.facebook.com, https://api.twilio.com)'),
    access_token: secretText('WhatsApp: a system user access token (required).'),
    app_secret: secretText('WhatsApp: the app secret that signs webhooks (X-Hub-Signature-256).'),
    verify_token: secretText('WhatsApp: the token Meta echoes in the webhook verification handshake.'),
    account_sid: configText('SMS: the Twilio Account SID, AC… (required)', 34),
    from: configText('SMS: the sender (E.164 number, short code or alphanumeric id). Email: the sender address, e.g. "Acme <hello@acme.com>" (required)', 320),
    messaging_service_sid: configText('SMS: a Twilio Messaging Service SID, MG… (instead of or beside from)', 34),
    auth_token: secretText('SMS: the Twilio auth token (required).'),
    url: secretText('Email: the SMTP URL with credentials, smtps://user:password@smtp.example.com:465 (required).'),
  },
  {
    additionalProperties: false,
    examples: [
      { phone_number_id: '106540352242922', business_account_id: '102290129340398', access_token: 'EAAGm0PX4ZCpsBAKZBwZDZD', app_secret: 'your-app-secret', verify_token: 'a-random-string' },
      { account_sid: 'AC0123456789abcdef0123456789abcdef', auth_token: 'your_auth_token_0123456789abcdef', from: '+14155550100' },
      { from: 'Acme <hello@acme.com>', url: 'smtps://apikey:secret@smtp.example.com:465' },
    ],
  },
);

const ChannelSettings = Type.Object(
  {
    channel: Type.String({ description: 'whatsapp, sms or email' }),
    provider: Type.String({ description: 'sandbox when the channel has no settings; else whatsapp-cloud, twilio or smtp' }),
    config: Type.Object({}, { additionalProperties: true, description: 'The non-secret settings, with defaults filled in' }),
    secrets: Type.Record(Type.String(), Type.Boolean(), { description: 'Which secrets are set (`access_token_set: true`); never their values' }),
    status: Type.String({ description: 'sandbox, unverified (not used yet), ok (the provider accepted the last send) or error (it refused our credentials)' }),
    last_error: Nullable(Type.String({ description: "The provider's message when status is error" })),
    status_at: Nullable(Timestamp),
    updated_at: Nullable(Timestamp),
  },
  { $id: 'ChannelSettings', title: 'ChannelSettings' },
);
const channelSettingsRef = { $ref: 'ChannelSettings#' } as const;

const whatsappExample = {
  channel: 'whatsapp',
  provider: 'whatsapp-cloud',
  config: { phone_number_id: '106540352242922', business_account_id: '102290129340398', graph_version: 'v23.0', base_url: 'https://graph.facebook.com' },
  secrets: { access_token_set: true, app_secret_set: true, verify_token_set: true },
  status: 'error',
  last_error: '190: Error validating access token: Session has expired',
  status_at: '2026-05-07T08:14:23.000Z',
  updated_at: '2026-05-01T10:00:00.000Z',
};
const sandboxSms = { channel: 'sms', provider: 'sandbox', config: {}, secrets: { auth_token_set: false }, status: 'sandbox', last_error: null, status_at: null, updated_at: null };

const ConsentSettings = Type.Object(
  {
    opt_out_keywords: Type.Array(Type.String(), { description: 'Whole-message keywords that opt the contact out of the channel they wrote on' }),
    opt_in_keywords: Type.Array(Type.String(), { description: 'Whole-message keywords that opt them back in' }),
    opt_out_confirmation: Type.String({ description: 'Sent once after an opt-out' }),
    opt_in_confirmation: Type.String({ description: 'Sent once after a re-subscription' }),
  },
  { title: 'ConsentSettings' },
);
const consentExample = {
  opt_out_keywords: [...defaultOptOutKeywords],
  opt_in_keywords: [...defaultOptInKeywords],
  opt_out_confirmation: defaultOptOutConfirmation,
  opt_in_confirmation: defaultOptInConfirmation,
};
const ConsentBody = Type.Object(
  {
    opt_out_keywords: Type.Optional(Nullable(Type.Array(Type.String({ maxLength: 32 }), { maxItems: 30, description: 'Single words; null restores the default list' }))),
    opt_in_keywords: Type.Optional(Nullable(Type.Array(Type.String({ maxLength: 32 }), { maxItems: 30, description: 'Single words; null restores the default list' }))),
    opt_out_confirmation: Type.Optional(Nullable(Type.String({ maxLength: 1000 }))),
    opt_in_confirmation: Type.Optional(Nullable(Type.String({ maxLength: 1000 }))),
  },
  { additionalProperties: false, examples: [{ opt_out_keywords: ['STOP', 'PARAR', 'SAIR'], opt_in_keywords: ['START', 'VOLTAR'] }] },
);

export function registerSettingsRoutes(app: App, ctx: Context): void {
  app.addSchema(ChannelSettings);

  app.get(
    '/api/v1/settings/channels',
    {
      config: { scope: 'settings:read' },
      schema: {
        summary: 'List channel settings',
        description:
          'Each channel (whatsapp, sms, email) with its provider, or `sandbox` when it has none, its non-secret settings, ' +
          'which secrets are set (never the secrets), and its status: `error` with the provider\u2019s message after it refused our credentials.',
        tags: ['Settings'],
        operationId: 'listChannelSettings',
        response: { 200: ok(Type.Object({ data: Type.Array(channelSettingsRef) }), 'The channels', { data: [whatsappExample, sandboxSms] }), ...errorResponses(...authErrors) },
      },
    },
    async (request) => ({ data: await settings.listChannelSettings(ctx, request.principal!.workspaceId) }),
  );

  app.put(
    '/api/v1/settings/channels/:channel',
    {
      config: { scope: 'settings:write' },
      schema: {
        summary: 'Set a channel\u2019s provider',
        description:
          'Connects the channel to its provider: WhatsApp Cloud API (`phone_number_id`, `access_token`, optionally `business_account_id`, ' +
          '`app_secret`, `verify_token`, `graph_version`, `base_url`), Twilio (`account_sid`, `auth_token`, `from` or `messaging_service_sid`, `base_url`) ' +
          'or SMTP (`from`, `url`). Every field is checked and a bad one is named in the 422. Secrets are encrypted with NUDGE_SECRET_KEY; ' +
          'a secret left out keeps its stored value, `""` removes an optional one. The change applies to sends within seconds, without a restart.',
        tags: ['Settings'],
        operationId: 'setChannelSettings',
        params: ChannelParam,
        body: ChannelSettingsBody,
        response: { 200: ok(channelSettingsRef, 'The channel\u2019s settings as stored', { ...whatsappExample, status: 'unverified', last_error: null, status_at: null }), ...errorResponses(400, ...authErrors, 413, 415, 422) },
      },
    },
    async (request) => {
      const { channel } = request.params as { channel: settings.ProviderChannel };
      return settings.setProviderSettings(ctx, request.principal!.workspaceId, channel, request.body as settings.ProviderSettingsInput);
    },
  );

  app.delete(
    '/api/v1/settings/channels/:channel',
    {
      config: { scope: 'settings:write' },
      schema: {
        summary: 'Disconnect a channel',
        description: 'Removes the channel\u2019s provider settings and secrets: its messages go to the sandbox again. Removing settings that do not exist is harmless.',
        tags: ['Settings'],
        operationId: 'deleteChannelSettings',
        params: ChannelParam,
        response: { 200: ok(channelSettingsRef, 'The channel, back on the sandbox', sandboxSms), ...errorResponses(...authErrors, 422) },
      },
    },
    async (request) => {
      const { channel } = request.params as { channel: settings.ProviderChannel };
      return settings.deleteProviderSettings(ctx, request.principal!.workspaceId, channel);
    },
  );

  app.get(
    '/api/v1/settings/consent',
    {
      config: { scope: 'settings:read' },
      schema: {
        summary: 'Get the consent keywords',
        description:
          'The keywords that opt a contact out of (STOP, UNSUBSCRIBE…) or back into (START…) the channel they wrote on, matched against the whole message ' +
          'ignoring case, and the confirmation sent once after each change.',
        tags: ['Settings'],
        operationId: 'getConsentSettings',
        response: { 200: ok(ConsentSettings, 'The consent settings', consentExample), ...errorResponses(...authErrors) },
      },
    },
    async (request) => getConsentSettings(ctx, request.principal!.workspaceId),
  );

  app.put(
    '/api/v1/settings/consent',
    {
      config: { scope: 'settings:write' },
      schema: {
        summary: 'Change the consent keywords',
        description: 'Given fields replace the stored ones; `null` restores a default. A word may not be both an opt-out and an opt-in keyword.',
        tags: ['Settings'],
        operationId: 'updateConsentSettings',
        body: ConsentBody,
        response: { 200: ok(ConsentSettings, 'The consent settings after the change', consentExample), ...errorResponses(400, ...authErrors, 413, 415, 422) },
      },
    },
    async (request) => updateConsentSettings(ctx, request.principal!.workspaceId, request.body as ConsentSettingsInput),
  );
}
