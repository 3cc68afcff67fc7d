import type { Context } from '../../engine/context.js';
import type { App } from '../types.js';

/** Discount integrations (Stripe, Shopify) and Nudge's own discount codes. */
export function registerDiscountRoutes(app: App, ctx: Context): void {
  void app;
  void ctx;
}
