import Fastify, { LogController, type FastifyBaseLogger } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { AppError } from '../domain/errors.js';
import { newId } from '../domain/ids.js';
import type { Context } from '../engine/context.js';
import { sendError } from './errors.js';
import { registerRequestGuards } from './request-guards.js';
import { ErrorBody } from './schemas.js';
import { registerRoutes } from './routes/index.js';

import type { App } from './types.js';

export type { App } from './types.js';

export interface AppOptions {
  /** Log every request (the server does; tests keep quiet). */
  logRequests?: boolean;
}

/** The HTTP API as a Fastify instance, apart from the process that listens (see cli/). */
export async function buildApp(ctx: Context, options: AppOptions = {}): Promise<App> {
  const app = Fastify({
    loggerInstance: ctx.log as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: !options.logRequests, requestIdLogLabel: 'request_id' }),
    bodyLimit: ctx.config.bodyLimitBytes,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && /^[\w.:-]{1,128}$/.test(given) ? given : newId();
    },
    trustProxy: true,
    ajv: { customOptions: { allErrors: true, coerceTypes: 'array', removeAdditional: false, useDefaults: true } },
    routerOptions: { ignoreTrailingSlash: true },
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.addHook('onRequest', async (request, reply) => {
    void reply.header('X-Request-Id', request.id);
  });
  // The docs page and its assets need no token.
  app.addHook('onRoute', (route) => {
    if (route.url.startsWith('/docs')) route.config = { ...(route.config ?? {}), public: true };
  });

  // Keep the raw body beside the parsed one: provider webhooks are signed over raw bytes.
  app.removeContentTypeParser(['application/json']);
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    const buffer = body as Buffer;
    (request as { rawBody?: Buffer }).rawBody = buffer;
    if (buffer.length === 0) return done(null, undefined);
    try {
      done(null, JSON.parse(buffer.toString('utf8')));
    } catch {
      done(new AppError('invalid_json', 'The request body is not valid JSON'), undefined);
    }
  });

  app.addSchema(ErrorBody);

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Nudge API',
        version: '1.0.0',
        description:
          'Automated customer messaging over WhatsApp, SMS and email: contacts, tags, templates, sequences and flows. ' +
          'Authenticate with `Authorization: Bearer <token>` (or `X-API-Key`). Errors share one body: `{error, code, message, errors?}`.',
        license: { name: 'MIT', identifier: 'MIT' },
      },
      servers: [{ url: ctx.config.publicUrl, description: 'This server' }],
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', description: 'An API token created with `nudge token create`' },
          apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
        },
      },
      security: [{ bearerAuth: [] }, { apiKey: [] }],
    },
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
  });

  registerRequestGuards(app, ctx);

  app.setErrorHandler((error, request, reply) => sendError(request, reply, error as Error));
  app.setNotFoundHandler((request, reply) =>
    sendError(request, reply, new AppError('route_not_found', `No route for ${request.method} ${request.url.split('?')[0]}`)),
  );

  await registerRoutes(app, ctx);

  app.get('/api/v1/openapi.json', { config: { public: true }, schema: { hide: true } }, async () => app.swagger());
  app.get('/api/v1/openapi.yaml', { config: { public: true }, schema: { hide: true } }, async (_request, reply) =>
    reply.type('application/yaml; charset=utf-8').send(app.swagger({ yaml: true })),
  );
  await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { docExpansion: 'list', deepLinking: true } });

  return app;
}
