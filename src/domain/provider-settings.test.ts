import { describe, expect, it } from 'vitest';
import { AppError } from './errors.js';
import { validateProviderSettings } from './provider-settings.js';

const whatsapp = { phone_number_id: '106540352242922', access_token: 'EAAGm0PX4ZCpsBAKZBxyz' };
const sms = { account_sid: `AC${'1'.repeat(32)}`, auth_token: '0123456789abcdef0123456789abcdef', from: '+14155550100' };

function problems(run: () => unknown): Record<string, string[]> {
  try {
    run();
  } catch (error) {
    if (error instanceof AppError) return error.errors ?? {};
    throw error;
  }
  return {};
}

describe('validateProviderSettings', () => {
  it('refuses a token that cannot travel in an HTTP header, naming it (found by the hostile-input suite)', () => {
    // "EAAG…" as pasted from documentation: every call to Meta would then fail before leaving.
    expect(Object.keys(problems(() => validateProviderSettings('whatsapp', { ...whatsapp, access_token: 'EAAG\u2026' }, { defaultCountry: 'US' })))).toEqual(['access_token']);
    expect(Object.keys(problems(() => validateProviderSettings('whatsapp', { ...whatsapp, access_token: 'EAAG abc' }, { defaultCountry: 'US' })))).toEqual(['access_token']);
    expect(Object.keys(problems(() => validateProviderSettings('sms', { ...sms, auth_token: 'tokén' }, { defaultCountry: 'US' })))).toEqual(['auth_token']);
  });

  it('keeps secrets that are not sent in a header free-form', () => {
    const settings = validateProviderSettings('whatsapp', { ...whatsapp, app_secret: 'sécret with spaces', verify_token: 'ünïcode ok' }, { defaultCountry: 'US' });
    expect(settings.secrets).toEqual({ access_token: whatsapp.access_token, app_secret: 'sécret with spaces', verify_token: 'ünïcode ok' });
  });
});
