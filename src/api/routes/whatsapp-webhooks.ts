import { Type } from 'typebox';
import { AppError } from '../../domain/errors.js';
import type { Context } from '../../engine/context.js';
import { answerHandshake, receiveWhatsAppWebhook } from '../../engine/whatsapp-webhook-service.js';
import { errorResponses, ok } from '../schemas.js';
import type { App } from '../types.js';

/*
 * The endpoints Meta calls. They take no API token (`public`): the GET answers Meta's
 * subscription handshake with the verify token, and every POST is authenticated by
 * its X-Hub-Signature-256 over the raw bytes (kept by the app's JSON parser as
 * `request.rawBody`). The rules live in engine/whatsapp-webhook-service.ts.
 */

const HandshakeQuery = Type.Object(
  {
    'hub.mode': Type.Optional(Type.String({ maxLength: 50, description: 'Always "subscribe"' })),
    'hub.verify_token': Type.Optional(Type.String({ maxLength: 4096, description: 'The verify token of the WhatsApp settings' })),
    'hub.challenge': Type.Optional(Type.String({ maxLength: 4096, description: 'Echoed back on success' })),
  },
  { additionalProperties: true },
);

const examplePayload = {
  object: 'whatsapp_business_account',
  entry: [
    {
      id: '102290129340398',
      changes: [
        {
          field: 'messages',
          value: {
            messaging_product: 'whatsapp',
            metadata: { display_phone_number: '15550783881', phone_number_id: '106540352242922' },
            contacts: [{ profile: { name: 'Sheena Nelson' }, wa_id: '16505551234' }],
            messages: [
              { from: '16505551234', id: 'wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTZBQzg0MzQ4QjRCM0NGNkVGOAA=', timestamp: '1750025136', type: 'interactive', interactive: { type: 'button_reply', button_reply: { id: 'yes', title: 'Yes' } } },
            ],
          },
        },
      ],
    },
  ],
};

export function registerWhatsAppWebhookRoutes(app: App, ctx: Context): void {
  app.get(
    '/webhooks/whatsapp',
    {
      config: { public: true },
      schema: {
        summary: 'WhatsApp webhook verification',
        description:
          "Meta's subscription handshake: with `hub.mode=subscribe` and a `hub.verify_token` equal to the verify token of a workspace's WhatsApp settings, " +
          'answers `hub.challenge` as text/plain; otherwise 403.',
        tags: ['Webhooks'],
        operationId: 'verifyWhatsAppWebhook',
        security: [],
        querystring: HandshakeQuery,
        response: {
          200: { description: 'The challenge, echoed', content: { 'text/plain': { schema: Type.String(), example: '1158201444' } } },
          ...errorResponses(403, 422),
        },
      },
    },
    async (request, reply) => {
      const challenge = await answerHandshake(ctx, request.query as Record<string, unknown>);
      if (challenge === null) throw new AppError('forbidden', 'The verify token does not match the WhatsApp settings of any workspace, or hub.mode is not "subscribe"');
      return reply.code(200).type('text/plain; charset=utf-8').send(challenge);
    },
  );

  app.post(
    '/webhooks/whatsapp',
    {
      config: { public: true },
      schema: {
        summary: 'WhatsApp webhook',
        description:
          'Where Meta delivers WhatsApp events: inbound messages (stored and routed to the waiting flow), delivery statuses (sent, delivered, read, failed) ' +
          'and template reviews. Signed with `X-Hub-Signature-256` (HMAC-SHA256 of the raw body with the app secret of the workspace owning ' +
          '`metadata.phone_number_id`); unsigned or forged requests get 401, unknown phone numbers 403, and both are logged. Redelivery is harmless.',
        tags: ['Webhooks'],
        operationId: 'receiveWhatsAppWebhook',
        security: [],
        headers: Type.Object({ 'x-hub-signature-256': Type.Optional(Type.String({ maxLength: 200, description: 'sha256=<hex HMAC of the raw body>' })) }),
        body: Type.Unknown({ description: 'Meta\u2019s webhook payload (`object: whatsapp_business_account`)', examples: [examplePayload] }),
        response: {
          200: ok(Type.Object({ received: Type.Boolean() }), 'Applied', { received: true }),
          ...errorResponses(400, 401, 403, 413, 415),
        },
      },
    },
    async (request) => {
      const header = request.headers['x-hub-signature-256'];
      await receiveWhatsAppWebhook(ctx, {
        rawBody: (request as { rawBody?: Buffer }).rawBody,
        signature: typeof header === 'string' ? header : undefined,
        body: request.body,
        remoteAddress: request.ip ?? null,
      });
      return { received: true };
    },
  );
}
