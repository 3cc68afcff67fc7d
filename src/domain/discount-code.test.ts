import { describe, expect, it } from 'vitest';
import { discountCodeAlphabet, discountCodeKey, newDiscountCode } from './discount-code.js';

describe('newDiscountCode', () => {
  it('puts the upper-cased prefix before ten characters of the unambiguous alphabet', () => {
    const code = newDiscountCode('winback');
    expect(code).toMatch(/^WINBACK-[2-9A-HJKMNP-Z]{10}$/);
    expect(newDiscountCode(undefined)).toMatch(/^[2-9A-HJKMNP-Z]{10}$/);
    expect(newDiscountCode('  ')).toHaveLength(10);
  });

  it('never uses the look-alike characters 0, O, 1, I and L', () => {
    for (const ch of '0O1IL') expect(discountCodeAlphabet).not.toContain(ch);
    const many = Array.from({ length: 300 }, () => newDiscountCode(undefined)).join('');
    expect(many).not.toMatch(/[01OIL]/);
  });

  it('draws every character from the generator it is given', () => {
    let n = 0;
    expect(newDiscountCode('A', () => n++ % discountCodeAlphabet.length)).toBe(`A-${discountCodeAlphabet.slice(0, 10)}`);
  });

  it('gives distinct codes', () => {
    const codes = new Set(Array.from({ length: 2000 }, () => newDiscountCode('X')));
    expect(codes.size).toBe(2000);
  });
});

describe('discountCodeKey', () => {
  it('matches codes ignoring case and surrounding spaces', () => {
    expect(discountCodeKey(' winback-7q2kxm9pht ')).toBe('WINBACK-7Q2KXM9PHT');
  });
});
