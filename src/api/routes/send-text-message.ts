import { Type } from 'typebox';
import type { Context } from '../../engine/context.js';
import { sendTextMessage, textMessageMaxLength } from '../../engine/messaging-service.js';
import { authErrors, errorResponses, Nullable, ok } from '../schemas.js';
import type { App } from '../types.js';

const SendTextBody = Type.Object(
  {
    phone: Type.String({ maxLength: 40, description: 'E.164 (+14155550123); numbers without + are read in the default country. The contact is created when new.' }),
    message: Type.String({ minLength: 1, maxLength: textMessageMaxLength, description: `The text, 1 to ${textMessageMaxLength} characters` }),
    channel: Type.Optional(Type.Union([Type.Literal('whatsapp'), Type.Literal('sms')], { default: 'whatsapp', description: 'whatsapp (default) or sms' })),
  },
  { additionalProperties: false, examples: [{ phone: '+14155550123', message: 'Your order ORD-1042 has shipped.' }, { phone: '+14155550123', message: 'See you at 3pm', channel: 'sms' }] },
);

const SentText = Type.Object({
  id: Type.String({ format: 'uuid', description: 'The message id' }),
  status: Type.String({ description: 'queued (the dispatcher sends it shortly), sent, delivered or failed' }),
  whatsapp_message_id: Nullable(Type.String({ description: 'WhatsApp\u2019s id (wamid.…) once sent through the Cloud API; null on SMS, on the sandbox or while queued' })),
  provider_message_id: Nullable(Type.String({ description: 'The provider\u2019s id (wamid.…, Twilio SM…, sandbox-…)' })),
  contact_id: Type.String({ format: 'uuid' }),
});

const outsideWindow = {
  description: 'Validation failed, or the contact is outside the 24-hour customer service window (WhatsApp with real settings)',
  content: {
    'application/json': {
      schema: { $ref: 'Error#' },
      example: {
        error: 'Outside the 24-hour customer service window: the contact has not written in the last 24 hours, so only an approved template can be sent (WhatsApp error 131047)',
        code: 'outside_service_window',
        message: 'Outside the 24-hour customer service window: the contact has not written in the last 24 hours, so only an approved template can be sent (WhatsApp error 131047)',
        provider_code: 131047,
        last_inbound_at: '2026-05-05T08:14:23.000Z',
      },
    },
  },
};

export function registerSendTextMessageRoutes(app: App, ctx: Context): void {
  app.post(
    '/api/v1/actions/send-text-message',
    {
      config: { scope: 'messages:send', idempotent: true },
      schema: {
        summary: 'Send a text message',
        description:
          'Sends a free-form text to a phone on WhatsApp (default) or SMS, creating the contact when new, and answers with the message. ' +
          'It is stored first and sent at once when possible; otherwise (provider busy, rate limit) it stays `queued` and goes out shortly. ' +
          '**WhatsApp\u2019s 24-hour customer service window**: when the workspace has real WhatsApp settings, a contact who has not written in the last ' +
          '24 hours is refused with 422 `outside_service_window` and Meta\u2019s code `provider_code: 131047` before anything reaches Meta: send a ' +
          'template (send-template-message) instead. The sandbox does not enforce the window, so flows can be tried without a phone. ' +
          'A contact who opted out of SMS is never sent one (422 `business_rule`). Send an `Idempotency-Key` header to make retries safe.',
        tags: ['Messages'],
        operationId: 'sendTextMessage',
        body: SendTextBody,
        response: {
          201: ok(SentText, 'The message', {
            id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a70',
            status: 'sent',
            whatsapp_message_id: 'wamid.HBgLMTQxNTU1NTAxMjMVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA',
            provider_message_id: 'wamid.HBgLMTQxNTU1NTAxMjMVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA',
            contact_id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a61',
          }),
          ...errorResponses(400, ...authErrors, 409, 413, 415),
          422: outsideWindow,
        },
      },
    },
    async (request, reply) => {
      const body = request.body as { phone: string; message: string; channel?: 'whatsapp' | 'sms' };
      const key = request.headers['idempotency-key'];
      const sent = await sendTextMessage(ctx, request.principal!.workspaceId, { ...body, idempotencyKey: typeof key === 'string' && key !== '' ? key : undefined });
      return reply.code(201).send(sent);
    },
  );
}
