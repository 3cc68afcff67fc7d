import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { AppError } from '../../domain/errors.js';
import { escapeHtml } from '../../domain/merge-tags.js';
import type { Context } from '../../engine/context.js';
import { describeUnsubscribe, unsubscribe, type UnsubscribeView } from '../../engine/unsubscribe-service.js';
import { errorBody } from '../errors.js';
import type { App } from '../types.js';

/*
 * The pages behind the unsubscribe link of every email (`{{unsubscribe_url}}`, the
 * footer link and List-Unsubscribe). Public: the signed token is the authorisation.
 *
 * GET only shows a page with a confirm button and changes nothing: mail scanners and
 * link previews open links, and must not unsubscribe anyone. POST unsubscribes; it is
 * both the button's form and the RFC 8058 one-click request mail providers send
 * (`List-Unsubscribe=One-Click`, form-encoded or multipart), so it takes any body.
 */

const Params = Type.Object({ token: Type.String({ minLength: 1, maxLength: 1000, description: 'The signed token from the link' }) });

function page(title: string, body: string): string {
  return (
    '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8" /><meta name="viewport" content="width=device-width,initial-scale=1" />' +
    `<meta name="robots" content="noindex" /><title>${escapeHtml(title)}</title></head>` +
    '<body style="margin:0;padding:48px 16px;background:#f4f4f5;font-family:Arial,Helvetica,sans-serif;color:#111827;">' +
    `<main style="max-width:480px;margin:0 auto;padding:32px;background:#ffffff;border-radius:8px;"><h1 style="margin:0 0 16px;font-size:22px;">${escapeHtml(title)}</h1>${body}</main>` +
    '</body></html>'
  );
}

const paragraph = (text: string) => `<p style="margin:0 0 16px;font-size:16px;line-height:1.5;">${text}</p>`;

function sender(view: UnsubscribeView): string {
  return view.workspaceName ? `<strong>${escapeHtml(view.workspaceName)}</strong>` : 'this sender';
}

function confirmPage(token: string, view: UnsubscribeView): string {
  if (view.optedOutAt !== null) {
    return page('You are unsubscribed', paragraph(`${view.maskedAddress ? escapeHtml(view.maskedAddress) : 'This address'} no longer receives marketing email from ${sender(view)}.`));
  }
  return page(
    'Unsubscribe',
    paragraph(`Stop marketing email from ${sender(view)}${view.maskedAddress ? ` to ${escapeHtml(view.maskedAddress)}` : ''}?`) +
      `<form method="post" action="/unsubscribe/${encodeURIComponent(token)}">` +
      '<button type="submit" style="padding:12px 24px;border:0;border-radius:6px;background:#2563eb;color:#ffffff;font-size:16px;cursor:pointer;">Unsubscribe</button></form>',
  );
}

function donePage(view: UnsubscribeView): string {
  return page('You are unsubscribed', paragraph(`You will no longer receive marketing email from ${sender(view)}.`) + paragraph('<small>Messages you asked for, such as receipts, may still arrive.</small>'));
}

const badLinkPage = page('This link does not work', paragraph('The unsubscribe link is not valid: it may have been cut short when it was copied. Open it again from the email, or reply to the email and ask to be removed.'));

function htmlResponse(description: string, example: string) {
  return { description, content: { 'text/html': { schema: Type.String(), example } } };
}

const badTokenResponse = {
  description: 'Not a valid unsubscribe link: an HTML page for browsers, the error body for clients that accept only JSON',
  content: {
    'text/html': { schema: Type.String(), example: badLinkPage },
    'application/json': {
      schema: { $ref: 'Error#' },
      example: { error: 'This unsubscribe link is not valid: it may have been cut short or changed', code: 'bad_request', message: 'This unsubscribe link is not valid: it may have been cut short or changed', errors: { token: ['token is not a valid unsubscribe token'] } },
    },
  },
};

const validationResponse = {
  description: 'The token is longer than any link Nudge makes',
  content: {
    'application/json': {
      schema: { $ref: 'Error#' },
      example: { error: 'token must be at most 1000 characters', code: 'validation_failed', message: 'token must be at most 1000 characters', errors: { token: ['token must be at most 1000 characters'] } },
    },
  },
};

function prefersJson(request: FastifyRequest): boolean {
  const accept = request.headers.accept ?? '';
  return accept.includes('application/json') && !accept.includes('text/html');
}

function sendHtml(reply: FastifyReply, status: number, html: string): FastifyReply {
  // The token is in the URL: keep it out of caches, referrers and search engines.
  return reply
    .code(status)
    .headers({ 'cache-control': 'no-store', 'referrer-policy': 'no-referrer', 'x-robots-tag': 'noindex' })
    .type('text/html; charset=utf-8')
    .send(html);
}

async function withBadToken(request: FastifyRequest, reply: FastifyReply, run: () => Promise<FastifyReply>): Promise<FastifyReply> {
  try {
    return await run();
  } catch (error) {
    if (!(error instanceof AppError) || error.code !== 'bad_request') throw error;
    if (prefersJson(request)) return reply.code(400).type('application/json; charset=utf-8').send(errorBody(error));
    return sendHtml(reply, 400, badLinkPage);
  }
}

export async function registerUnsubscribeRoutes(app: App, ctx: Context): Promise<void> {
  await app.register(async (scope: App) => {
    // One-click POSTs come form-encoded or multipart, the page's form form-encoded, some
    // clients with no body at all: the body is never read, so any type is accepted.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'string', bodyLimit: 16_384 }, (_request, _body, done) => done(null, undefined));

    scope.get(
      '/unsubscribe/:token',
      {
        config: { public: true },
        schema: {
          summary: 'Unsubscribe page',
          description:
            'The page an email\u2019s unsubscribe link opens: it names the sender and asks to confirm with a button (a POST to the same URL). ' +
            'Opening it changes nothing, so mail scanners that follow links unsubscribe no one.',
          tags: ['Contacts'],
          operationId: 'showUnsubscribePage',
          security: [],
          params: Params,
          response: {
            200: htmlResponse('The confirmation page', page('Unsubscribe', paragraph('Stop marketing email from <strong>Acme</strong> to a•••@example.com?'))),
            400: badTokenResponse,
            422: validationResponse,
          },
        },
      },
      async (request, reply) => {
        const { token } = request.params as { token: string };
        return withBadToken(request, reply, async () => sendHtml(reply, 200, confirmPage(token, await describeUnsubscribe(ctx, token))));
      },
    );

    scope.post(
      '/unsubscribe/:token',
      {
        config: { public: true },
        schema: {
          summary: 'Unsubscribe (one click)',
          description:
            'Opts the contact out of marketing email (`email_opted_out_at`, and `opted_out_at` if not set yet). This is the confirm button of the page and the RFC 8058 ' +
            'one-click POST that mail providers send for `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (body `List-Unsubscribe=One-Click`, form-encoded or multipart); any body, or none, is accepted and ignored. ' +
            'Idempotent: repeating it keeps the first opt-out time.',
          tags: ['Contacts'],
          operationId: 'unsubscribeByLink',
          security: [],
          params: Params,
          response: {
            200: htmlResponse('Unsubscribed', donePage({ subject: { workspaceId: '', contactId: '', channel: 'email' }, workspaceName: 'Acme', maskedAddress: null, optedOutAt: null })),
            400: badTokenResponse,
            413: {
              description: 'Body too large',
              content: { 'application/json': { schema: { $ref: 'Error#' }, example: { error: 'The request body is larger than 16384 bytes', code: 'payload_too_large', message: 'The request body is larger than 16384 bytes' } } },
            },
            422: validationResponse,
          },
        },
      },
      async (request, reply) => {
        const { token } = request.params as { token: string };
        return withBadToken(request, reply, async () => sendHtml(reply, 200, donePage(await unsubscribe(ctx, token))));
      },
    );
  });
}
