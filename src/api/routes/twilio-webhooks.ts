import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { emptyTwiml, parseFormParams } from '../../channels/twilio-webhooks.js';
import { AppError } from '../../domain/errors.js';
import type { Context } from '../../engine/context.js';
import { receiveTwilioWebhook, type TwilioWebhookKind } from '../../engine/twilio-webhook-service.js';
import { errorResponses } from '../schemas.js';
import type { App } from '../types.js';

/*
 * The endpoints Twilio calls for SMS. They take no API token (`public`): each request
 * is authenticated by X-Twilio-Signature, computed over the URL Twilio requested and
 * the form parameters. The app parses JSON only, so these routes live in their own
 * encapsulated plugin with a form parser that also keeps the raw text. The signing URL
 * is NUDGE_PUBLIC_URL + the path and query as received: behind a proxy that rewrites
 * the host or scheme, NUDGE_PUBLIC_URL must be the address configured in Twilio.
 * The rules live in engine/twilio-webhook-service.ts.
 */

const twimlResponse = {
  description: 'Applied. Empty TwiML: Nudge sends no automatic reply.',
  content: { 'text/xml': { schema: Type.String(), example: emptyTwiml } },
};

const signatureHeader = Type.Object({
  'x-twilio-signature': Type.Optional(Type.String({ maxLength: 200, description: 'Base64 HMAC-SHA1 of the URL and the sorted form parameters, keyed with the auth token' })),
});

const forbidden = {
  description: 'Unsigned, forged, or from a Twilio account no workspace has configured (logged in webhook_events)',
  content: {
    'application/json': {
      schema: { $ref: 'Error#' },
      example: { error: 'X-Twilio-Signature does not match the request signed with the auth token', code: 'forbidden', message: 'X-Twilio-Signature does not match the request signed with the auth token' },
    },
  },
};

const unavailable = {
  description: 'The stored auth token cannot be read with the current NUDGE_SECRET_KEY; Twilio retries',
  content: {
    'application/json': {
      schema: { $ref: 'Error#' },
      example: { error: 'The Twilio auth token cannot be read with the current NUDGE_SECRET_KEY', code: 'unavailable', message: 'The Twilio auth token cannot be read with the current NUDGE_SECRET_KEY' },
    },
  },
};

const field = (description: string) => Type.Optional(Type.String({ maxLength: 4096, description }));

const InboundBody = Type.Object(
  {
    MessageSid: field('Twilio id of the message (SM… or MM…); redeliveries repeat it'),
    AccountSid: field('The Twilio account (AC…): picks the workspace'),
    From: field("The customer's number, E.164"),
    To: field('Your Twilio number, E.164'),
    Body: field('The text, up to 1600 characters'),
    NumMedia: field('How many media files (MediaUrl0…) are attached'),
    MessagingServiceSid: field('The messaging service (MG…), when used'),
  },
  {
    additionalProperties: true,
    examples: [
      {
        MessageSid: 'SM1f0e8ae6ade43cb3c0ce4525424e404f',
        SmsSid: 'SM1f0e8ae6ade43cb3c0ce4525424e404f',
        AccountSid: 'ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
        MessagingServiceSid: 'MGaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
        From: '+14155550123',
        To: '+14155552345',
        Body: 'YES',
        NumMedia: '0',
        NumSegments: '1',
        SmsStatus: 'received',
        ApiVersion: '2010-04-01',
      },
    ],
  },
);

const StatusBody = Type.Object(
  {
    MessageSid: field('Twilio id of the message Nudge sent'),
    AccountSid: field('The Twilio account (AC…): picks the workspace'),
    MessageStatus: field('queued, sending, sent, delivered, undelivered, failed (also read, canceled)'),
    ErrorCode: field('Twilio error code when undelivered or failed, e.g. 30003'),
    From: field('Your Twilio number'),
    To: field("The customer's number"),
  },
  {
    additionalProperties: true,
    examples: [
      {
        MessageSid: 'SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
        SmsSid: 'SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
        AccountSid: 'ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
        MessageStatus: 'undelivered',
        SmsStatus: 'undelivered',
        ErrorCode: '30003',
        From: '+14155552345',
        To: '+14155550123',
        ApiVersion: '2010-04-01',
      },
    ],
  },
);

export async function registerTwilioWebhookRoutes(app: App, ctx: Context): Promise<void> {
  const publicUrl = ctx.config.publicUrl.replace(/\/+$/, '');

  await app.register(async (scope: App) => {
    // Forms for these routes only: the raw text is what Twilio signed.
    scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (request, body, done) => {
      (request as { rawForm?: string }).rawForm = body as string;
      done(null, parseFormParams(body as string));
    });

    const handler = (kind: TwilioWebhookKind) => async (request: FastifyRequest, reply: FastifyReply) => {
      const rawForm = (request as { rawForm?: string }).rawForm;
      if (rawForm === undefined) throw new AppError('unsupported_media_type', 'Twilio webhooks are form-encoded: send Content-Type: application/x-www-form-urlencoded');
      const header = request.headers['x-twilio-signature'];
      await receiveTwilioWebhook(ctx, kind, {
        url: `${publicUrl}${request.url}`,
        rawBody: rawForm,
        signature: typeof header === 'string' ? header : undefined,
        remoteAddress: request.ip ?? null,
      });
      return reply.code(200).type('text/xml; charset=utf-8').send(emptyTwiml);
    };

    scope.post(
      '/webhooks/twilio/inbound',
      {
        config: { public: true },
        schema: {
          summary: 'Twilio inbound SMS webhook',
          description:
            "Set as the \"A message comes in\" webhook of your Twilio number or messaging service, as `NUDGE_PUBLIC_URL/webhooks/twilio/inbound`. " +
            "Verified with `X-Twilio-Signature` using the auth token of the workspace whose SMS settings have the request's `AccountSid` (and `To` number); " +
            "the message is stored, renews the contact's SMS window and reaches the contact's waiting flow. Redelivery of a MessageSid changes nothing. " +
            'Answers empty TwiML.',
          tags: ['Webhooks'],
          operationId: 'receiveTwilioInboundSms',
          security: [],
          headers: signatureHeader,
          consumes: ['application/x-www-form-urlencoded'],
          body: InboundBody,
          response: { 200: twimlResponse, 403: forbidden, ...errorResponses(422), 503: unavailable },
        },
      },
      handler('inbound'),
    );

    scope.post(
      '/webhooks/twilio/status',
      {
        config: { public: true },
        schema: {
          summary: 'Twilio SMS status callback',
          description:
            'Where Twilio reports delivery of the SMS Nudge sent (the `StatusCallback` Nudge passes with each message): sent, delivered, undelivered and failed ' +
            '(with its ErrorCode) are applied to the message, which never moves backwards. Verified like the inbound webhook. Answers empty TwiML.',
          tags: ['Webhooks'],
          operationId: 'receiveTwilioStatusCallback',
          security: [],
          headers: signatureHeader,
          consumes: ['application/x-www-form-urlencoded'],
          body: StatusBody,
          response: { 200: twimlResponse, 403: forbidden, ...errorResponses(422), 503: unavailable },
        },
      },
      handler('status'),
    );
  });
}
