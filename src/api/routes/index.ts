import type { App } from '../types.js';
import type { Context } from '../../engine/context.js';
import { registerAudienceRoutes } from './audiences.js';
import { registerDefinitionRoutes } from './definitions.js';
import { registerDiscountRoutes } from './discounts.js';
import { registerEmailTemplateRoutes } from './email-templates.js';
import { registerBroadcastRoutes } from './broadcasts.js';
import { registerMcpRoutes } from './mcp.js';
import { registerPollingTriggerRoutes } from './polling-triggers.js';
import { registerWebhookSubscriptionRoutes } from './webhook-subscriptions.js';
import { registerContactRoutes } from './contacts.js';
import { registerDashboardRoutes } from './dashboard.js';
import { registerIdentityRoutes } from './identity.js';
import { registerSendTextMessageRoutes } from './send-text-message.js';
import { registerSequenceExecutionRoutes } from './sequence-execution.js';
import { registerSessionRoutes } from './sessions.js';
import { registerSettingsRoutes } from './settings.js';
import { registerTemplateRoutes } from './templates.js';
import { registerTrackedLinkRoutes } from './tracked-links.js';
import { registerTwilioWebhookRoutes } from './twilio-webhooks.js';
import { registerUnsubscribeRoutes } from './unsubscribe.js';
import { registerWhatsAppWebhookRoutes } from './whatsapp-webhooks.js';

/** Every route group. Each group file registers its own routes with their schemas. */
export async function registerRoutes(app: App, ctx: Context): Promise<void> {
  registerIdentityRoutes(app, ctx);
  registerDashboardRoutes(app, ctx);
  registerContactRoutes(app, ctx);
  registerDefinitionRoutes(app, ctx);
  registerSequenceExecutionRoutes(app, ctx);
  registerAudienceRoutes(app, ctx);
  registerDiscountRoutes(app, ctx);
  registerSessionRoutes(app, ctx);
  registerSettingsRoutes(app, ctx);
  registerSendTextMessageRoutes(app, ctx);
  registerTemplateRoutes(app, ctx);
  registerTrackedLinkRoutes(app, ctx);
  registerEmailTemplateRoutes(app, ctx);
  registerWhatsAppWebhookRoutes(app, ctx);
  await registerTwilioWebhookRoutes(app, ctx);
  await registerUnsubscribeRoutes(app, ctx);
  await registerPollingTriggerRoutes(app, ctx);
  await registerBroadcastRoutes(app, ctx);
  await registerWebhookSubscriptionRoutes(app, ctx);
  await registerMcpRoutes(app, ctx);
}
