/**
 * Enrollment modes of event-driven sequences and how a run's key is found.
 *
 * - `unlimited`: a contact may run the sequence again once the previous run ended.
 * - `one_time`: a contact runs it once, ever.
 * - `matching_field`: one active run per value of a field of the enrolling event, so
 *   a contact can be in "order follow-up" once per order at the same time.
 */
export type EnrollmentMode = 'unlimited' | 'one_time' | 'matching_field';
export const enrollmentModes: readonly EnrollmentMode[] = ['unlimited', 'one_time', 'matching_field'];

/**
 * Fields looked up, in order, when a matching_field sequence names no path: an
 * explicit key the sender chose, then the product or variant of commerce events.
 */
export const defaultEnrollmentPaths: readonly string[] = [
  'sequenceEnrollmentKey',
  'enrollmentKey',
  'variant.providerVariantId',
  'product.providerVariantId',
  'providerVariantId',
  'variant.id',
  'variantId',
  'product.providerProductId',
  'product.id',
  'productId',
];

/**
 * The mode an event_received sequence gets when it names none: one run per product or
 * variant for commerce events that concern one product (back in stock, time to
 * replenish), since a customer may wait for several at once; otherwise unlimited.
 * Matches names such as shopify.back_in_stock, shopify.product_back_in_stock,
 * shopify.replenishment_due and ecommerce.replenishment_reminder.
 */
export function defaultEnrollmentMode(triggerType: string, eventName: string | null | undefined): EnrollmentMode {
  if (triggerType !== 'event_received' || typeof eventName !== 'string') return 'unlimited';
  return /^(shopify|ecommerce)\.[a-z_]*(back_in_stock|replenish)[a-z_]*$/i.test(eventName.trim()) ? 'matching_field' : 'unlimited';
}

/** The value at a dotted path of an object, or undefined. */
export function valueAtPath(source: unknown, path: string): unknown {
  let current: unknown = source;
  for (const part of path.split('.')) {
    if (current === null || typeof current !== 'object' || Array.isArray(current)) return undefined;
    if (!Object.hasOwn(current, part)) return undefined;
    current = (current as Record<string, unknown>)[part];
  }
  return current;
}

function keyText(value: unknown): string | null {
  if (typeof value === 'string') {
    const trimmed = value.trim();
    return trimmed === '' || trimmed.length > 500 ? null : trimmed;
  }
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value === 'bigint') return String(value);
  return null;
}

/**
 * The key of a matching_field run: the value at `path` of the event's properties,
 * or, without a path, the first of the default fields present. Null when none
 * resolves to a string or number: the enrollment is then skipped, never merged into
 * a catch-all run.
 *
 * @example resolveEnrollmentKey({ order: { id: 1042 } }, 'order.id') // '1042'
 */
export function resolveEnrollmentKey(properties: Record<string, unknown>, path: string | null): string | null {
  if (path !== null) return keyText(valueAtPath(properties, path));
  for (const candidate of defaultEnrollmentPaths) {
    const found = keyText(valueAtPath(properties, candidate));
    if (found !== null) return found;
  }
  return null;
}

/** Whether a dotted path is well formed: 1 to 20 segments of 1 to 100 characters. */
export function isFieldPath(path: string): boolean {
  const parts = path.split('.');
  return parts.length >= 1 && parts.length <= 20 && parts.every((p) => p.length > 0 && p.length <= 100);
}
