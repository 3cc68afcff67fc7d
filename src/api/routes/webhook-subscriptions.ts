import type { Context } from '../../engine/context.js';
import type { App } from '../types.js';

export async function registerWebhookSubscriptionRoutes(app: App, ctx: Context): Promise<void> {
  void app;
  void ctx;
}
