/**
 * The discount of a `create_discount` step as users write it (camelCase, every field
 * optional), and its rules: checked when a definition is saved and again before a
 * provider is called, so both places apply the same rules.
 */

const nameLength = 200;

/** The step's discount, as users write it in a definition (camelCase, every field optional). */
export interface DiscountSpec {
  label?: string;
  name?: string;
  /** 'stripe' | 'shopify' | 'builtin'; a definition without one means Stripe. */
  provider?: string;
  /** 'percent' | 'amount' (a fixed amount); inferred from percentOff / amountOff when absent. */
  discountType?: string;
  percentOff?: number;
  /**
   * In the currency's major unit, as people write prices: 10 with currency "usd" is $10.00.
   * The Stripe client converts to minor units (1000); Shopify takes major units as they are.
   */
  amountOff?: number;
  currency?: string;
  /** 'once' | 'repeating' | 'forever': how long a Stripe subscription keeps the discount. Shopify ignores it. */
  duration?: string;
  durationInMonths?: number;
  /** Stripe only: false (or planIds without this flag) limits the coupon to the product ids in planIds. */
  appliesToAllPlans?: boolean;
  planIds?: unknown[];
  codePrefix?: string;
  maxRedemptions?: number;
  /** Only the contact (found by email at the provider) may redeem the code. */
  lockToSubscriber?: boolean;
  /** ISO 8601; wins over expiresInHours. */
  expiresAt?: string;
  expiresInHours?: number;
}

export const discountFields = [
  'label',
  'name',
  'provider',
  'discountType',
  'percentOff',
  'amountOff',
  'currency',
  'duration',
  'durationInMonths',
  'appliesToAllPlans',
  'planIds',
  'codePrefix',
  'maxRedemptions',
  'lockToSubscriber',
  'expiresAt',
  'expiresInHours',
];

const describe = (value: unknown): string => (value === undefined ? 'nothing' : JSON.stringify(value) ?? String(value));

/**
 * Every problem with a step's discount, each naming the field, e.g.
 * `discount.percentOff must be a number above 0 and at most 100, got 150`. Empty when the
 * spec is usable. Checked when a definition is saved, and again before calling a provider
 * (a definition saved by an older Nudge may not pass today's rules).
 *
 * @example
 * validateDiscountSpec({ discountType: 'amount', amountOff: 10 });
 * // ['discount.currency is required for an amount discount']
 */
export function validateDiscountSpec(spec: unknown): string[] {
  if (spec === null || typeof spec !== 'object' || Array.isArray(spec)) {
    return [`discount must be an object like {"discountType": "percent", "percentOff": 20}, got ${describe(spec)}`];
  }
  const d = spec as Record<string, unknown>;
  const problems: string[] = [];
  const report = (field: string, problem: string) => problems.push(`discount${field === '' ? '' : `.${field}`} ${problem}`);

  for (const key of Object.keys(d)) {
    if (!discountFields.includes(key)) report(key, `is not a discount field (known: ${discountFields.join(', ')})`);
  }
  const text = (key: string, max: number): string | undefined => {
    const value = d[key];
    if (value === undefined) return undefined;
    if (typeof value !== 'string' || value.length > max) {
      report(key, `must be text of at most ${max} characters, got ${describe(value)}`);
      return undefined;
    }
    return value;
  };
  const oneOf = (key: string, allowed: readonly string[]): string | undefined => {
    const value = d[key];
    if (value === undefined) return undefined;
    if (typeof value !== 'string' || !allowed.includes(value)) {
      report(key, `must be one of ${allowed.map((a) => `"${a}"`).join(', ')}, got ${describe(value)}`);
      return undefined;
    }
    return value;
  };
  const flag = (key: string): boolean | undefined => {
    const value = d[key];
    if (value !== undefined && typeof value !== 'boolean') report(key, `must be true or false, got ${describe(value)}`);
    return typeof value === 'boolean' ? value : undefined;
  };
  const positive = (key: string, integer: boolean): number | undefined => {
    const value = d[key];
    if (value === undefined) return undefined;
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
      report(key, `must be a positive ${integer ? 'whole number' : 'number'}, got ${describe(value)}`);
      return undefined;
    }
    return value;
  };

  text('label', nameLength);
  text('name', nameLength);
  const provider = oneOf('provider', ['stripe', 'shopify', 'builtin']) ?? 'stripe';
  const declaredType = oneOf('discountType', ['percent', 'amount']);

  if (d.percentOff !== undefined) {
    const value = d.percentOff;
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || value > 100) report('percentOff', `must be a number above 0 and at most 100, got ${describe(value)}`);
  }
  const amountOff = positive('amountOff', false);
  let currency: string | undefined;
  if (d.currency !== undefined) {
    if (typeof d.currency !== 'string' || !/^[A-Za-z]{3}$/.test(d.currency)) report('currency', `must be a three-letter currency code such as "usd", got ${describe(d.currency)}`);
    else currency = d.currency;
  }
  if (amountOff !== undefined && currency !== undefined) {
    const decimals = currencyDecimals(currency);
    // Rounded to a millionth first: 19.99 * 100 is 1998.9999999999998 in floating point.
    if (!Number.isInteger(Math.round(amountOff * 10 ** decimals * 1e6) / 1e6)) {
      report('amountOff', `has more decimal places than ${currency.toUpperCase()} allows (${decimals}), got ${describe(amountOff)}`);
    }
  }

  const type = declaredType ?? (d.percentOff !== undefined ? 'percent' : d.amountOff !== undefined ? 'amount' : undefined);
  if (d.discountType === undefined && type === undefined) report('', 'needs percentOff (a percent discount) or amountOff with currency (an amount discount)');
  if (d.percentOff !== undefined && d.amountOff !== undefined) report('', 'has both percentOff and amountOff; give one');
  else if (type === 'percent' && d.amountOff !== undefined) report('amountOff', 'does not apply to a percent discount');
  else if (type === 'amount' && d.percentOff !== undefined) report('percentOff', 'does not apply to an amount discount');
  if (type === 'percent' && d.percentOff === undefined) report('percentOff', 'is required for a percent discount');
  if (type === 'amount') {
    if (d.amountOff === undefined) report('amountOff', 'is required for an amount discount');
    if (d.currency === undefined) report('currency', 'is required for an amount discount');
  }

  const duration = oneOf('duration', ['once', 'repeating', 'forever']);
  const months = positive('durationInMonths', true);
  if (duration === 'repeating' && d.durationInMonths === undefined) report('durationInMonths', 'is required when duration is "repeating"');
  if (months !== undefined && duration !== 'repeating') report('durationInMonths', 'applies only when duration is "repeating"');

  const allPlans = flag('appliesToAllPlans');
  flag('lockToSubscriber');
  if (d.planIds !== undefined) {
    if (!Array.isArray(d.planIds) || d.planIds.length > 100 || d.planIds.some((id) => typeof id !== 'string' || id.trim() === '')) {
      report('planIds', `must be a list of at most 100 product ids such as ["prod_NWjs8kKbJWmuuc"], got ${describe(d.planIds)}`);
    } else if (allPlans === true && d.planIds.length > 0) {
      report('planIds', 'cannot be given when appliesToAllPlans is true');
    }
  }
  if (allPlans === false && (!Array.isArray(d.planIds) || d.planIds.length === 0)) report('planIds', 'must list at least one product id when appliesToAllPlans is false');

  const prefix = text('codePrefix', 40);
  if (prefix !== undefined) {
    // Stripe promotion codes take letters, digits and "-" only; Shopify codes are free text.
    const pattern = provider === 'stripe' ? /^[A-Za-z0-9-]+$/ : /^[A-Za-z0-9_-]+$/;
    if (!pattern.test(prefix)) report('codePrefix', provider === 'stripe' ? 'may contain only letters, digits and "-" (Stripe promotion codes)' : 'may contain only letters, digits, "_" and "-"');
  }
  positive('maxRedemptions', true);

  if (d.expiresAt !== undefined && (typeof d.expiresAt !== 'string' || !/^\d{4}-\d{2}-\d{2}/.test(d.expiresAt) || Number.isNaN(Date.parse(d.expiresAt)))) {
    report('expiresAt', `must be an ISO 8601 date such as "2030-01-31T23:59:59Z", got ${describe(d.expiresAt)}`);
  }
  positive('expiresInHours', false);
  if (d.expiresAt !== undefined && d.expiresInHours !== undefined) report('', 'has both expiresAt and expiresInHours; give one');
  return problems;
}

/** When the code stops working: expiresAt, else now + expiresInHours, else never (null). */
export function discountExpiry(spec: DiscountSpec, now: number): Date | null {
  if (typeof spec.expiresAt === 'string') return new Date(spec.expiresAt);
  if (typeof spec.expiresInHours === 'number') return new Date(now + spec.expiresInHours * 3_600_000);
  return null;
}

export function discountType(spec: DiscountSpec): 'percent' | 'amount' {
  if (spec.discountType === 'amount' || spec.discountType === 'percent') return spec.discountType;
  return spec.amountOff !== undefined ? 'amount' : 'percent';
}

// Stripe's lists (docs.stripe.com/currencies). Three-decimal currencies take minor units
// whose last digit is 0 at Stripe; Shopify uses the same decimals.
const zeroDecimalCurrencies = new Set(['bif', 'clp', 'djf', 'gnf', 'jpy', 'kmf', 'krw', 'mga', 'pyg', 'rwf', 'ugx', 'vnd', 'vuv', 'xaf', 'xof', 'xpf']);
const threeDecimalCurrencies = new Set(['bhd', 'jod', 'kwd', 'omr', 'tnd']);

export function currencyDecimals(currency: string): number {
  const c = currency.toLowerCase();
  if (zeroDecimalCurrencies.has(c)) return 0;
  if (threeDecimalCurrencies.has(c)) return 3;
  return 2;
}

