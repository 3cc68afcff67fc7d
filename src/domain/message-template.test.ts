import { describe, expect, it } from 'vitest';
import { fillTemplate, placeholdersOf, previewTemplate, statusOfMetaEvent, validateTemplateInput } from './message-template.js';

const base = { name: 'order_update', language: 'en_US', category: 'UTILITY', body: 'Hi {{1}}, order {{2}} ({{1}})' };

describe('validateTemplateInput', () => {
  it('accepts a template within Meta\u2019s rules, a repeated placeholder included', () => {
    expect(validateTemplateInput({ ...base, header: 'Order {{1}}', footer: 'Thanks', buttons: [{ type: 'QUICK_REPLY', text: 'Ok' }, { type: 'QUICK_REPLY', text: 'No' }, { type: 'URL', text: 'Track', url: 'https://x.example/t/{{1}}' }, { type: 'PHONE_NUMBER', text: 'Call', phone_number: '+14155550123' }] })).toEqual({});
  });

  it('requires placeholders numbered from 1 without gaps', () => {
    expect(validateTemplateInput({ ...base, body: 'Hi {{2}}' }).body).toEqual(['body placeholders must be numbered from {{1}} without gaps (found {{2}})']);
    expect(validateTemplateInput({ ...base, body: 'Hi {{ first_name }}' }).body![0]).toContain('{{first_name}}');
    expect(validateTemplateInput({ ...base, header: '{{1}} {{2}}' }).header).toEqual(['header may have at most 1 placeholder']);
  });

  it('keeps quick replies together and counts button kinds', () => {
    const q = { type: 'QUICK_REPLY' as const, text: 'Q' };
    const u = { type: 'URL' as const, text: 'U', url: 'https://x.example' };
    expect(validateTemplateInput({ ...base, buttons: [q, u, q] }).buttons![0]).toContain('together');
    expect(validateTemplateInput({ ...base, buttons: Array(11).fill(q) }).buttons).toContain('buttons must be at most 10');
  });
});

describe('placeholders and filling', () => {
  const components = { header: 'Order {{1}}', body: base.body, buttons: [{ type: 'QUICK_REPLY' as const, text: 'Ok' }, { type: 'URL' as const, text: 'Track', url: 'https://x.example/{{1}}' }] };

  it('lists header, body and URL button placeholders with their keys', () => {
    expect(placeholdersOf(components).map((p) => p.key)).toEqual(['header_1', '1', '2', 'button_1']);
  });

  it('fills every placeholder or reports the missing ones', () => {
    expect(fillTemplate(components, { header_1: 'A', '1': 'Ana', '2': '#7', button_1: '7' })).toEqual({
      ok: true,
      values: { header: ['A'], body: ['Ana', '#7'], buttons: [{ index: 1, sub_type: 'url', parameter: '7' }] },
    });
    expect(fillTemplate(components, { '1': 'Ana', '2': ' ' })).toEqual({ ok: false, expected: ['header_1', '1', '2', 'button_1'], missing: ['header_1', '2', 'button_1'] });
    expect(previewTemplate(components, { header_1: 'A', '1': 'Ana', '2': '#7' })).toBe('Order A\nHi Ana, order #7 (Ana)');
  });

  it("maps Meta's template events onto three statuses", () => {
    expect(['APPROVED', 'REINSTATED', 'PENDING', 'REJECTED', 'DISABLED', 'PAUSED', 'SOMETHING_NEW'].map(statusOfMetaEvent)).toEqual(['APPROVED', 'APPROVED', 'PENDING', 'REJECTED', 'REJECTED', 'REJECTED', null]);
  });
});
