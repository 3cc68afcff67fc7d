import { describe, expect, it } from 'vitest';
import { defaultEnrollmentMode, resolveEnrollmentKey } from './enrollment.js';

describe('enrollment keys', () => {
  it('reads the named path, numbers included, and nothing else', () => {
    expect(resolveEnrollmentKey({ order: { id: 1042 } }, 'order.id')).toBe('1042');
    expect(resolveEnrollmentKey({ order: { id: ' A-7 ' } }, 'order.id')).toBe('A-7');
    expect(resolveEnrollmentKey({ order: { id: 'A-7' }, sequenceEnrollmentKey: 'k' }, 'order.number')).toBeNull();
    expect(resolveEnrollmentKey({ order: { id: { nested: true } } }, 'order.id')).toBeNull();
    expect(resolveEnrollmentKey({ order: { id: '' } }, 'order.id')).toBeNull();
  });

  it('without a path, takes the explicit keys first, then variant, then product fields', () => {
    expect(resolveEnrollmentKey({ sequenceEnrollmentKey: 's', enrollmentKey: 'e', variantId: 'v' }, null)).toBe('s');
    expect(resolveEnrollmentKey({ enrollmentKey: 'e', variantId: 'v' }, null)).toBe('e');
    expect(resolveEnrollmentKey({ product: { id: 'p', providerVariantId: 'pv' } }, null)).toBe('pv');
    expect(resolveEnrollmentKey({ variant: { id: 'v1' }, product: { id: 'p1' } }, null)).toBe('v1');
    expect(resolveEnrollmentKey({ productId: 99 }, null)).toBe('99');
    expect(resolveEnrollmentKey({ city: 'Tel Aviv' }, null)).toBeNull();
  });

  it('never follows inherited properties', () => {
    expect(resolveEnrollmentKey(JSON.parse('{"a":{}}') as Record<string, unknown>, 'a.constructor')).toBeNull();
    expect(resolveEnrollmentKey({}, 'toString')).toBeNull();
  });

  it('defaults commerce back-in-stock and replenishment events to one run per product', () => {
    for (const name of ['shopify.back_in_stock', 'shopify.product_back_in_stock', 'shopify.replenishment_due', 'ecommerce.replenishment_reminder']) {
      expect(defaultEnrollmentMode('event_received', name)).toBe('matching_field');
    }
    for (const name of ['shopify.order_placed', 'weather.wind_alert', 'back_in_stock']) expect(defaultEnrollmentMode('event_received', name)).toBe('unlimited');
    expect(defaultEnrollmentMode('frequency', 'shopify.back_in_stock')).toBe('unlimited');
  });
});
