import { invalidFields, type FieldErrors } from './errors.js';
import { normalizeEmail, normalizePhone } from './phone.js';
import { openJson } from './secret-box.js';
import { refusedPortProblem } from './outbound-ports.js';

/**
 * The provider settings a workspace may give for each channel, and their validation.
 * Pure: the service encrypts the secrets and stores the result.
 *
 * Non-secret values (`config`) are stored as JSON and shown back by the API; secret
 * values (`secrets`) are encrypted at rest and never shown: the API only says which
 * are set.
 */

export type ProviderChannel = 'whatsapp' | 'sms' | 'email';
export const providerChannels: readonly ProviderChannel[] = ['whatsapp', 'sms', 'email'];

export interface ProviderSpec {
  provider: string;
  /** Config keys, in display order. */
  configKeys: readonly string[];
  secretKeys: readonly string[];
  requiredSecrets: readonly string[];
}

export const providerSpecs: Record<ProviderChannel, ProviderSpec> = {
  whatsapp: {
    provider: 'whatsapp-cloud',
    configKeys: ['phone_number_id', 'business_account_id', 'graph_version', 'base_url'],
    secretKeys: ['access_token', 'app_secret', 'verify_token'],
    requiredSecrets: ['access_token'],
  },
  sms: {
    provider: 'twilio',
    configKeys: ['account_sid', 'from', 'messaging_service_sid', 'base_url'],
    secretKeys: ['auth_token'],
    requiredSecrets: ['auth_token'],
  },
  email: {
    provider: 'smtp',
    configKeys: ['from'],
    secretKeys: ['url'],
    requiredSecrets: ['url'],
  },
};

export const providerDefaults = {
  whatsappGraphVersion: 'v23.0',
  whatsappBaseUrl: 'https://graph.facebook.com',
  twilioBaseUrl: 'https://api.twilio.com',
} as const;

export function isProviderChannel(value: string): value is ProviderChannel {
  return (providerChannels as readonly string[]).includes(value);
}

/** What a caller gives: every key of the channel's provider, config and secrets side by side. */
export interface ProviderSettingsInput {
  provider?: string;
  [key: string]: unknown;
}

export interface ValidProviderSettings {
  provider: string;
  config: Record<string, string>;
  secrets: Record<string, string>;
}

const maxSecretLength = 4096;
/** Secrets that travel in an HTTP header to the provider. */
const headerSecrets: readonly string[] = ['access_token', 'auth_token'];

/**
 * Checks every field and fills defaults. `storedSecrets` are the secrets already saved
 * for the same provider: a secret left out keeps its stored value, so a caller can
 * change the configuration without sending the access token again; an empty string
 * removes an optional secret. Throws a 422 naming every bad field.
 */
export function validateProviderSettings(
  channel: ProviderChannel,
  input: ProviderSettingsInput,
  options: { defaultCountry: string; storedSecrets?: Record<string, string> | null; storedSecretsUnreadable?: boolean },
): ValidProviderSettings {
  const spec = providerSpecs[channel];
  const errors: FieldErrors = {};
  const fail = (field: string, problem: string) => {
    (errors[field] ??= []).push(`${field} ${problem}`);
  };
  const provider = input.provider ?? spec.provider;
  if (provider !== spec.provider) fail('provider', `must be "${spec.provider}" for ${channel}`);
  for (const key of Object.keys(input)) {
    if (key !== 'provider' && !spec.configKeys.includes(key) && !spec.secretKeys.includes(key)) {
      fail(key, `is not a ${channel} setting (known: ${[...spec.configKeys, ...spec.secretKeys].join(', ')})`);
    }
  }
  const text = (key: string): string | undefined => {
    const value = input[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'string') {
      fail(key, 'must be a string');
      return undefined;
    }
    const trimmed = value.trim();
    return trimmed === '' ? undefined : trimmed;
  };

  const config: Record<string, string> = {};
  if (channel === 'whatsapp') {
    const phoneNumberId = text('phone_number_id');
    if (phoneNumberId === undefined) fail('phone_number_id', 'is required: the id of the WhatsApp phone number in Meta\u2019s WhatsApp Manager, e.g. 106540352242922');
    else if (!/^\d{5,30}$/.test(phoneNumberId)) fail('phone_number_id', 'must be the numeric phone number id, e.g. 106540352242922 (not the phone number itself)');
    else config.phone_number_id = phoneNumberId;
    const businessAccountId = text('business_account_id');
    if (businessAccountId !== undefined) {
      if (!/^\d{5,30}$/.test(businessAccountId)) fail('business_account_id', 'must be the numeric WhatsApp Business Account id, e.g. 102290129340398');
      else config.business_account_id = businessAccountId;
    }
    const graphVersion = text('graph_version') ?? providerDefaults.whatsappGraphVersion;
    if (!/^v\d{1,3}\.\d{1,3}$/.test(graphVersion)) fail('graph_version', 'must be a Graph API version such as v23.0');
    else config.graph_version = graphVersion;
    baseUrl('base_url', text('base_url') ?? providerDefaults.whatsappBaseUrl);
  } else if (channel === 'sms') {
    const accountSid = text('account_sid');
    if (accountSid === undefined) fail('account_sid', 'is required: the Twilio Account SID, e.g. AC followed by 32 hex digits');
    else if (!/^AC[0-9a-fA-F]{32}$/.test(accountSid)) fail('account_sid', 'must be a Twilio Account SID: AC followed by 32 hex digits');
    else config.account_sid = accountSid;
    const from = text('from');
    const service = text('messaging_service_sid');
    if (from === undefined && service === undefined) {
      fail('from', 'or messaging_service_sid is required: the sender number (E.164) or alphanumeric sender id');
      fail('messaging_service_sid', 'or from is required');
    }
    if (from !== undefined) {
      const phone = normalizePhone(from, options.defaultCountry);
      if (phone !== null) config.from = phone;
      // Short codes: 5 or 6 digits.
      else if (/^\d{5,6}$/.test(from)) config.from = from;
      // Alphanumeric sender ids: 1 to 11 letters, digits and spaces, with at least one letter.
      else if (/^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$/.test(from)) config.from = from;
      else fail('from', 'must be a phone number in E.164 form (+14155550123) a short code, or an alphanumeric sender id of at most 11 characters');
    }
    if (service !== undefined) {
      if (!/^MG[0-9a-fA-F]{32}$/.test(service)) fail('messaging_service_sid', 'must be a Twilio Messaging Service SID: MG followed by 32 hex digits');
      else config.messaging_service_sid = service;
    }
    baseUrl('base_url', text('base_url') ?? providerDefaults.twilioBaseUrl);
  } else {
    const from = text('from');
    if (from === undefined) fail('from', 'is required: the sender address, e.g. "Acme <hello@acme.com>" or hello@acme.com');
    else if (!isFromAddress(from)) fail('from', 'must be an email address, optionally with a name: "Acme <hello@acme.com>"');
    else config.from = from;
  }

  const secrets: Record<string, string> = {};
  for (const key of spec.secretKeys) {
    const value = input[key];
    if (value === undefined || value === null) {
      const stored = options.storedSecrets?.[key];
      if (stored !== undefined) secrets[key] = stored;
      continue;
    }
    if (typeof value !== 'string') {
      fail(key, 'must be a string');
      continue;
    }
    if (value.trim() === '') continue; // "" removes an optional secret
    if (value.length > maxSecretLength) fail(key, `must be at most ${maxSecretLength} characters`);
    else if (/[\r\n]/.test(value)) fail(key, 'must be on one line');
    // Sent in an HTTP header (Bearer or Basic): a character there makes every call fail.
    else if (headerSecrets.includes(key) && !/^[\x21-\x7e]+$/.test(value.trim())) fail(key, 'must be the token exactly as the provider issued it: printable ASCII, no spaces');
    else secrets[key] = value.trim();
  }
  if (channel === 'email' && secrets.url !== undefined && !isSmtpUrl(secrets.url)) {
    fail('url', 'must be an SMTP URL with credentials, e.g. smtps://user:password@smtp.example.com:465');
  }
  for (const key of spec.requiredSecrets) {
    if (secrets[key] === undefined && errors[key] === undefined) {
      fail(key, options.storedSecretsUnreadable ? 'is required: the stored value cannot be decrypted with this NUDGE_SECRET_KEY' : 'is required');
    }
  }

  if (Object.keys(errors).length > 0) throw invalidFields(errors);
  return { provider, config, secrets };

  function baseUrl(key: string, value: string): void {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      fail(key, 'must be an http(s) URL, e.g. https://graph.facebook.com');
      return;
    }
    const port = refusedPortProblem(url);
    if (url.protocol !== 'https:' && url.protocol !== 'http:') fail(key, 'must be an http(s) URL');
    else if (url.username || url.password || url.search || url.hash) fail(key, 'must be a plain base URL without credentials, query or fragment');
    else if (port !== null) fail(key, port);
    else config[key] = value.replace(/\/+$/, '');
  }
}

function isFromAddress(value: string): boolean {
  if (value.length > 320) return false;
  const named = /^(.{1,200}?)\s*<([^<>\s]+)>$/.exec(value);
  const address = named ? named[2]! : value;
  if (named && /[<>"\r\n]/.test(named[1]!.replace(/^"|"$/g, ''))) return false;
  return normalizeEmail(address) !== null;
}

function isSmtpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === 'smtp:' || url.protocol === 'smtps:') && url.hostname !== '';
  } catch {
    return false;
  }
}

/** Which secrets are set, as `{ access_token_set: true, … }`: what the API shows instead of them. */
export function secretFlags(channel: ProviderChannel, secrets: Record<string, unknown> | null): Record<string, boolean> {
  const flags: Record<string, boolean> = {};
  for (const key of providerSpecs[channel].secretKeys) flags[`${key}_set`] = typeof secrets?.[key] === 'string' && secrets[key] !== '';
  return flags;
}

/** The authenticated context a channel's secrets are sealed with: they open only on their own row. */
export function providerSecretsContext(workspaceId: string, channel: string): string {
  return `${workspaceId}:${channel}`;
}

/** Decrypts a stored row's secrets; throws SecretBoxError when NUDGE_SECRET_KEY changed. */
export function openProviderSecrets(secretKey: string, row: { workspace_id: string; channel: string; secrets: string }): Record<string, string> {
  if (row.secrets === '') return {};
  const opened = openJson(secretKey, row.secrets, providerSecretsContext(row.workspace_id, row.channel));
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(opened)) if (typeof value === 'string') out[key] = value;
  return out;
}
