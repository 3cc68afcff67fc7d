import { describe, expect, it } from 'vitest';
import { applyConsentSettings, consentSettingsOf, matchConsentKeyword } from './consent.js';

describe('consent keywords', () => {
  const defaults = consentSettingsOf({});

  it('matches a whole-message keyword ignoring case, spaces and trailing punctuation', () => {
    expect(matchConsentKeyword('  stop ', defaults)).toEqual({ kind: 'opt_out', keyword: 'STOP' });
    expect(matchConsentKeyword('Unsubscribe!', defaults)).toEqual({ kind: 'opt_out', keyword: 'UNSUBSCRIBE' });
    expect(matchConsentKeyword('start', defaults)).toEqual({ kind: 'opt_in', keyword: 'START' });
  });

  it('ignores keywords inside a sentence', () => {
    expect(matchConsentKeyword('please stop sending the wrong size', defaults)).toBeNull();
    expect(matchConsentKeyword(null, defaults)).toBeNull();
  });

  it('uses the workspace lists when set', () => {
    const custom = consentSettingsOf({ opt_out_keywords: ['PARAR'], opt_in_keywords: ['VOLTAR'] });
    expect(matchConsentKeyword('parar', custom)?.kind).toBe('opt_out');
    expect(matchConsentKeyword('stop', custom)).toBeNull();
  });

  it('validates changes and names the field', () => {
    expect(applyConsentSettings(defaults, { opt_out_keywords: ['parar', 'Stop'] }).opt_out_keywords).toEqual(['PARAR', 'STOP']);
    expect(() => applyConsentSettings(defaults, { opt_out_keywords: ['two words'] })).toThrow(/opt_out_keywords/);
    expect(() => applyConsentSettings(defaults, { opt_in_keywords: ['STOP'] })).toThrow(/opt_in_keywords cannot contain STOP/);
    expect(applyConsentSettings({ ...defaults, opt_in_keywords: ['X'] }, { opt_in_keywords: null }).opt_in_keywords).toEqual(['START', 'UNSTOP', 'YES']);
  });
});
