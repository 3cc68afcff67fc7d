import { describe, expect, it } from 'vitest';
import { validationToFieldErrors } from './errors.js';

describe('validationToFieldErrors', () => {
  it('names a field called like an Object.prototype member instead of failing on it', () => {
    const issues = ['constructor', 'toString', 'hasOwnProperty', 'valueOf'].map((name) => ({ instancePath: '', keyword: 'additionalProperties', params: { additionalProperty: name } }));
    expect(validationToFieldErrors(issues, 'body')).toEqual({
      constructor: ['constructor is not a known field'],
      toString: ['toString is not a known field'],
      hasOwnProperty: ['hasOwnProperty is not a known field'],
      valueOf: ['valueOf is not a known field'],
    });
  });

  it('collects several problems of one field', () => {
    const issues = [
      { instancePath: '/name', keyword: 'type', params: { type: 'string' } },
      { instancePath: '/name', keyword: 'maxLength', params: { limit: 5 } },
    ];
    expect(validationToFieldErrors(issues, 'body')).toEqual({ name: ['name must be string', 'name must be at most 5 characters'] });
  });
});
