import { createRequire } from 'node:module';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyServerOptions } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { AppError, invalid } from '../domain/errors.js';
import { newId } from '../domain/ids.js';
import type { Context } from '../engine/context.js';
import { sendError } from './errors.js';
import { documentRoute, finishDocument } from './openapi-document.js';
import { registerRequestGuards } from './request-guards.js';
import { ErrorBody } from './schemas.js';
import { registerRoutes } from './routes/index.js';

import type { App } from './types.js';

export type { App } from './types.js';

type BuildValidator = NonNullable<NonNullable<NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']>['buildValidator']>;
interface RouteSchemaPart {
  schema: unknown;
  method: string;
  url: string;
  httpPart?: string;
}
type CompileForRoute = (route: RouteSchemaPart) => unknown;
type CompilerPool = (externalSchemas: unknown, options: { customOptions?: Record<string, unknown> } & Record<string, unknown>) => CompileForRoute;

/**
 * Query strings, path parameters and headers arrive as text, so their validator
 * coerces (`?limit=5` becomes 5). A JSON body already carries its types: coercing it
 * would quietly turn `{"name": 123}` into "123" and `{"tags": "vip"}` into ["vip"]
 * instead of telling the caller the field has the wrong type. Fastify's compiler takes
 * one Ajv configuration for every part, so we build two from its own pool and choose by
 * part. It is loaded through Fastify so it is always the version Fastify itself uses.
 * (With a custom compiler Fastify no longer lower-cases header schemas: name header
 * properties in lower case.)
 */
function buildPartAwareValidator(): BuildValidator {
  const requireFromFastify = createRequire(createRequire(import.meta.url).resolve('fastify'));
  const createPool = requireFromFastify('@fastify/ajv-compiler') as () => CompilerPool;
  const pool = createPool();
  const factory: CompilerPool = (externalSchemas, options) => {
    const customOptions = options?.customOptions ?? {};
    const coercing = pool(externalSchemas, { ...options, customOptions: { ...customOptions, coerceTypes: 'array' } });
    const strict = pool(externalSchemas, { ...options, customOptions: { ...customOptions, coerceTypes: false } });
    return (route) => (route.httpPart === 'body' ? strict(route) : finiteNumbersOnly(coercing(route) as AjvValidate));
  };
  return factory as unknown as BuildValidator;
}

type AjvValidate = ((data: unknown, context?: unknown) => boolean) & { errors?: unknown[] | null; schemaEnv?: unknown };

/**
 * Ajv coerces `?limit=1e309` or `?limit=Infinity` to Infinity, which passes `integer`
 * and skips `maximum` (Ajv checks limits on finite numbers only), so it reached the
 * database as a LIMIT it refused: a 500. A coerced part holding a non-finite number
 * fails validation instead, naming the field.
 */
function finiteNumbersOnly(validate: AjvValidate): AjvValidate {
  const wrapped: AjvValidate = (data, context) => {
    wrapped.errors = null;
    if (!validate(data, context)) {
      wrapped.errors = validate.errors ?? null;
      return false;
    }
    if (data === null || typeof data !== 'object') return true;
    for (const [key, value] of Object.entries(data)) {
      if ([value].flat().some((v) => typeof v === 'number' && !Number.isFinite(v))) {
        wrapped.errors = [{ instancePath: `/${key}`, keyword: 'finite', params: {}, message: 'must be a finite number' }];
        return false;
      }
    }
    return true;
  };
  // Fastify passes the parent object when the validator has a schema environment, so Ajv can coerce in place.
  wrapped.schemaEnv = validate.schemaEnv;
  return wrapped;
}

/**
 * JSON.parse keeps a `"__proto__"` key as an own property; merged later into another
 * object (a spread, Object.assign, a deep merge of metadata) it would replace that
 * object's prototype. Fastify's own parser refuses such bodies; this one, which also
 * keeps the raw bytes, must do the same. The scan runs only when the text could hold
 * such a key (escapes included), so ordinary bodies pay nothing. A number JSON can write
 * but a double cannot hold is refused the same way, naming its field.
 */
export function parseJsonBody(text: string): unknown {
  const value: unknown = JSON.parse(text);
  // A number beyond a double's range (1e999, or 309 digits and more) parses to Infinity:
  // Ajv lets it past `maximum` and JSON.stringify stores it as null. Only a body with an
  // exponent of three digits or such a run of digits is walked to find it.
  if (/\d{309}|[eE][+]?0*[1-9]\d{2}/.test(text)) {
    const field = nonFiniteNumberAt(value);
    if (field !== null) throw invalid(field, 'must be a finite number');
  }
  if (!/__proto__|constructor|\\u/.test(text)) return value;
  // A NUL character (only writable as \u0000) fits no field, and PostgreSQL cannot store one in text.
  const nul = /\\u0000/.test(text);
  const pending: unknown[] = [value];
  while (pending.length > 0) {
    const node = pending.pop();
    if (nul && typeof node === 'string' && node.includes('\u0000')) throw nulError();
    if (node === null || typeof node !== 'object') continue;
    if (nul && Object.keys(node).some((key) => key.includes('\u0000'))) throw nulError();
    if (Object.prototype.hasOwnProperty.call(node, '__proto__')) {
      throw new AppError('invalid_json', 'The request body contains the forbidden key "__proto__"');
    }
    const record = node as Record<string, unknown>;
    if (Object.prototype.hasOwnProperty.call(record, 'constructor') && record.constructor !== null && typeof record.constructor === 'object' && Object.prototype.hasOwnProperty.call(record.constructor, 'prototype')) {
      throw new AppError('invalid_json', 'The request body contains the forbidden key "constructor.prototype"');
    }
    for (const child of Object.values(record)) if ((child !== null && typeof child === 'object') || (nul && typeof child === 'string')) pending.push(child);
  }
  return value;
}

/** The dotted path (`contacts.0.score`, as validation errors name fields) of the first non-finite number, `body` for the body itself, or null. */
function nonFiniteNumberAt(value: unknown): string | null {
  const pending: Array<{ node: unknown; path: string }> = [{ node: value, path: '' }];
  while (pending.length > 0) {
    const { node, path } = pending.pop()!;
    if (typeof node === 'number' && !Number.isFinite(node)) return path === '' ? 'body' : path;
    if (node === null || typeof node !== 'object') continue;
    for (const [key, child] of Object.entries(node)) {
      if (typeof child === 'number' || (child !== null && typeof child === 'object')) pending.push({ node: child, path: path === '' ? key : `${path}.${key}` });
    }
  }
  return null;
}

const nulError = (): AppError => new AppError('invalid_json', 'The request body contains a NUL character (\\u0000), which no field accepts');

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
    // allErrors: a caller learns every bad field at once; the body limit bounds the work.
    ajv: { customOptions: { allErrors: true, removeAdditional: false, useDefaults: true } },
    schemaController: { compilersFactory: { buildValidator: buildPartAwareValidator() } },
    routerOptions: { ignoreTrailingSlash: true },
    // URLs the router refuses before any route runs (bad percent-encoding, a path
    // parameter over its length limit) get the error body every other refusal has,
    // instead of Fastify's own with its internal code.
    frameworkErrors: (error, request, reply) => {
      const code = (error as { code?: string }).code;
      const message =
        code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'A path parameter is longer than any id Nudge uses' : code === 'FST_ERR_BAD_URL' ? 'The URL is not valid: a path segment is not valid percent-encoded UTF-8' : 'The request is not valid';
      void reply.header('X-Request-Id', request.id);
      return sendError(request, reply, new AppError('bad_request', message));
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.addHook('onRequest', async (request, reply) => {
    void reply.header('X-Request-Id', request.id);
    // Path and query arrive percent-encoded: %00 decodes to a NUL, which no id or filter holds.
    if (request.url.includes('%00') || request.url.includes('\u0000')) throw new AppError('bad_request', 'The request URL contains a NUL character (%00), which no parameter accepts');
  });
  // The docs page and its assets need no token.
  app.addHook('onRoute', (route) => {
    if (route.url.startsWith('/docs')) route.config = { ...(route.config ?? {}), public: true };
  });

  // JSON only: Fastify's default text/plain parser would hand a string to JSON routes,
  // which then fail validation with a confusing message instead of a 415. Routes that
  // take other types (provider webhooks posting forms) add their own parser inside
  // their plugin. An empty body is accepted as "no body": actions that take none work
  // with clients that always send Content-Type, and routes that need one say so in
  // their validation error.
  // Keep the raw body beside the parsed one: provider webhooks are signed over raw bytes.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    const buffer = body as Buffer;
    (request as { rawBody?: Buffer }).rawBody = buffer;
    if (buffer.length === 0) return done(null, undefined);
    try {
      done(null, parseJsonBody(buffer.toString('utf8')));
    } catch (error) {
      done(error instanceof AppError ? error : new AppError('invalid_json', 'The request body is not valid JSON'), undefined);
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
    transform: documentRoute,
    transformObject: (document) => ('openapiObject' in document ? finishDocument(document.openapiObject) : document.swaggerObject),
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
  // Served from the package's own files: the reference page works offline, with no CDN.
  await app.register(swaggerUi, { routePrefix: '/docs', theme: { title: 'Nudge API reference' }, uiConfig: { docExpansion: 'list', deepLinking: true } });

  return app;
}
