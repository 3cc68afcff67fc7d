import { randomInt } from 'node:crypto';

/**
 * The codes Nudge makes for discount steps, for every provider: the step's prefix, a dash,
 * then ten characters drawn by a cryptographic generator from an alphabet without the
 * look-alikes 0/O, 1/I/L, so a customer reading the code from an email cannot mistype it.
 * 31 symbols, ten of them: about 49 bits, which makes codes unguessable and collisions
 * (checked anyway by a unique index) vanishingly rare.
 */

export const discountCodeAlphabet = '23456789ABCDEFGHJKMNPQRSTUVWXYZ';
export const discountCodeRandomLength = 10;

/**
 * @example
 * newDiscountCode('winback'); // 'WINBACK-7Q2KXM9PHT'
 * newDiscountCode(undefined); // 'H4TZ8RWQ2M'
 */
export function newDiscountCode(prefix: string | undefined, draw: (max: number) => number = randomInt): string {
  let random = '';
  for (let i = 0; i < discountCodeRandomLength; i += 1) random += discountCodeAlphabet[draw(discountCodeAlphabet.length)];
  const head = (prefix ?? '').trim().toUpperCase();
  return head === '' ? random : `${head}-${random}`;
}

/** Codes are matched ignoring case and surrounding spaces, as customers type them. */
export function discountCodeKey(code: string): string {
  return code.trim().toUpperCase();
}
