import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../domain/errors.js';
import type { Context } from '../../engine/context.js';
import { followTrackedLink } from '../../engine/link-tracking-service.js';
import { errorBody } from '../errors.js';
import type { App } from '../types.js';

/*
 * The redirect behind every tracked email link (`{NUDGE_PUBLIC_URL}/t/<token>`). Public:
 * the token's signature is the authorisation. It is registered as a wildcard because a
 * token carries the whole URL, far longer than the router lets a named parameter be.
 * Only a URL Nudge signed is ever redirected to, so the route cannot be used as an open
 * redirect: a changed or unknown token is a 404 and goes nowhere.
 */

const maxTokenLength = 8000;
const notFoundPage =
  '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8" /><meta name="robots" content="noindex" /><title>This link does not work</title></head>' +
  '<body style="font-family:Arial,Helvetica,sans-serif;padding:48px 16px;"><h1 style="font-size:22px;">This link does not work</h1>' +
  '<p>It may have been cut short when it was copied. Open it again from the email.</p></body></html>';

function notFound(request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const accept = request.headers.accept ?? '';
  void reply.code(404).headers({ 'cache-control': 'no-store', 'x-robots-tag': 'noindex' });
  if (accept.includes('application/json') && !accept.includes('text/html')) {
    return reply.type('application/json; charset=utf-8').send(errorBody(new AppError('not_found', 'This tracked link is not valid: it may have been cut short or changed')));
  }
  return reply.type('text/html; charset=utf-8').send(notFoundPage);
}

export function registerTrackedLinkRoutes(app: App, ctx: Context): void {
  app.get(
    '/t/*',
    {
      config: { public: true },
      // Kept out of the API document: it is the target of links inside emails, followed by
      // mail clients and browsers, not an operation integrators call, and a redirect has no
      // 2xx answer to document (the document requires one for every operation).
      schema: { hide: true },
    },
    async (request, reply) => {
      const token = (request.params as { '*': string })['*'] ?? '';
      if (token.length > maxTokenLength) throw new AppError('validation_failed', `token must be at most ${maxTokenLength} characters`, { errors: { token: [`token must be at most ${maxTokenLength} characters`] } });
      const url = await followTrackedLink(ctx, token, { record: request.method === 'GET' });
      if (url === null) return notFound(request, reply);
      // The token must not travel on to the destination in a Referer header.
      return reply.code(302).headers({ location: url, 'cache-control': 'no-store', 'referrer-policy': 'no-referrer', 'x-robots-tag': 'noindex' }).send();
    },
  );
}
