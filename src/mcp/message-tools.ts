import { z } from 'zod';
import { templateStatuses } from '../domain/message-template.js';
import type { Context } from '../engine/context.js';
import { sendTextMessage, textMessageMaxLength } from '../engine/messaging-service.js';
import * as templates from '../engine/template-service.js';
import { defineTool, reads, type Tool } from './tool-kit.js';

/* Templates and direct messages: the services behind api/routes/templates.ts and send-text-message.ts. */

const phone = z.string().max(40).describe('E.164 such as +14155550123; a number without + is read in the server’s default country. The contact is created when new.');
const templateId = z.string().max(100).describe('A template id (UUID) from list_templates or get_template');

export function templateTools(ctx: Context): Tool[] {
  return [
    defineTool({
      name: 'list_templates',
      title: 'List message templates',
      description:
        'Lists the workspace’s WhatsApp message templates, one entry per template name with its languages, alphabetical. ' +
        'Only APPROVED templates can be sent (send_template_message). Returns {data: [{id, name, category, status, languages}]}; ' +
        'call get_template with an id to see the text and the placeholders a send must fill.',
      scope: 'templates:read',
      input: {
        status: z.enum(templateStatuses as [string, ...string[]]).optional().describe('Keep only the languages with this approval status'),
      },
      annotations: reads,
      run: async (args, workspaceId) => ({ data: await templates.listTemplateSummaries(ctx, workspaceId, args.status) }),
    }),
    defineTool({
      name: 'get_template',
      title: 'Get a message template',
      description:
        'Reads one template language: its header, body, footer and buttons, its approval status, every language of the same name, and the placeholders ' +
        '(keys such as "1", "2", "header_1", "button_0") whose values send_template_message needs in variables. Returns that object, or an error with code not_found.',
      scope: 'templates:read',
      input: { template_id: templateId },
      annotations: reads,
      run: (args, workspaceId) => templates.getTemplateDetail(ctx, workspaceId, args.template_id),
    }),
  ];
}

export function messageTools(ctx: Context): Tool[] {
  return [
    defineTool({
      name: 'send_text_message',
      title: 'Send a text message',
      description:
        'SENDS A REAL MESSAGE: a free-form text to a phone on WhatsApp (default) or SMS, creating the contact when new. ' +
        'On WhatsApp with a connected provider, a contact who has not written in the last 24 hours is refused (code outside_service_window): ' +
        'send an approved template with send_template_message instead. A contact who opted out of SMS is never sent one. ' +
        'Returns {id, status, provider_message_id, whatsapp_message_id, contact_id}; status queued means it goes out shortly. ' +
        'Pass the same idempotency_key when retrying so the message is not sent twice.',
      scope: 'messages:send',
      input: {
        phone,
        message: z.string().min(1).max(textMessageMaxLength).describe(`The text, 1 to ${textMessageMaxLength} characters`),
        channel: z.enum(['whatsapp', 'sms']).optional().describe('whatsapp (default) or sms'),
        idempotency_key: z.string().min(1).max(255).optional().describe('A key unique to this message (e.g. a UUID): a retry with the same key sends nothing new'),
      },
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: true },
      run: (args, workspaceId) =>
        sendTextMessage(ctx, workspaceId, { phone: args.phone, message: args.message, channel: args.channel, idempotencyKey: args.idempotency_key }),
    }),
    defineTool({
      name: 'send_template_message',
      title: 'Send a template message',
      description:
        'SENDS A REAL MESSAGE: an approved WhatsApp template to a phone, creating the contact when new. Templates may be sent outside the 24-hour window. ' +
        'The language is the one given (it must be approved), else the contact’s, else the workspace’s, else the template’s first approved one. ' +
        'Every placeholder must be filled through variables (see get_template), otherwise the error template_variables_missing lists the missing keys. ' +
        'Returns {id, status, whatsapp_message_id, contact_id, template_id, language}.',
      scope: 'messages:send',
      input: {
        phone,
        template_id: templateId,
        language: z.string().max(20).optional().describe('A language code of the template such as en_US'),
        variables: z.record(z.string().max(20), z.string()).optional().describe('Placeholder values by key: {"1": "Ana", "2": "#1001", "header_1": "…"}'),
      },
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: true },
      run: (args, workspaceId) => templates.sendTemplateMessage(ctx, workspaceId, args),
    }),
  ];
}
