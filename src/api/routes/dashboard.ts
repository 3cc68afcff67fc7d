import { Type } from 'typebox';
import { notFound } from '../../domain/errors.js';
import { isUuid } from '../../domain/ids.js';
import type { Context } from '../../engine/context.js';
import { describeSession, login, logout } from '../../engine/dashboard-auth-service.js';
import { executeSequenceForContacts, executionLimits } from '../../engine/sequence-execution-service.js';
import { clearSessionCookie, readSessionToken, setSessionCookie } from '../session-cookie.js';
import type { App } from '../types.js';

/*
 * The dashboard's own API, under /api (not /api/v1): sign-in, sign-out, the signed-in
 * session, and the dashboard's actions. Authenticated by the session cookie only
 * (`config.session`; API tokens are refused), and every request that changes state
 * must carry `X-Requested-With: nudge` (see request-guards.ts).
 *
 * These routes are left out of the public OpenAPI document (`hide`): they exist for the
 * dashboard served by this same server, cannot be called with an API token, and may
 * change with the dashboard without a version. Integrators use /api/v1, which offers
 * the same actions (execute, for instance) with tokens and scopes.
 */

const LoginBody = Type.Object(
  {
    email: Type.String({ minLength: 1, maxLength: 254 }),
    password: Type.String({ minLength: 1, maxLength: 1024 }),
  },
  { additionalProperties: false },
);

const ExecuteBody = Type.Object(
  {
    contactIds: Type.Array(Type.String({ maxLength: 100 }), { minItems: 1, maxItems: executionLimits.contactIds }),
    context: Type.Optional(Type.Object({}, { additionalProperties: true })),
  },
  { additionalProperties: false },
);

const IdParams = Type.Object({ id: Type.String({ maxLength: 100 }) });

export function registerDashboardRoutes(app: App, ctx: Context): void {
  app.post(
    '/api/auth/login',
    // Public (there is no session yet) but CSRF-checked: another site must not sign a visitor into an account of its choosing.
    { config: { public: true, csrf: true }, schema: { hide: true, body: LoginBody } },
    async (request, reply) => {
      const signedIn = await login(ctx, request.body as { email: string; password: string }, { ip: request.ip, userAgent: request.headers['user-agent'] ?? null });
      setSessionCookie(request, reply, signedIn.token, signedIn.maxAgeSeconds);
      void reply.header('cache-control', 'no-store');
      return signedIn.view;
    },
  );

  app.post(
    '/api/auth/logout',
    // Public so that an expired session can still clear its cookie.
    { config: { public: true, csrf: true }, schema: { hide: true } },
    async (request, reply) => {
      await logout(ctx, readSessionToken(request));
      clearSessionCookie(request, reply);
      return { success: true };
    },
  );

  app.get('/api/auth/session', { config: { session: true }, schema: { hide: true } }, async (request, reply) => {
    void reply.header('cache-control', 'no-store');
    return describeSession(ctx, request.dashboard!);
  });

  app.post(
    '/api/sequences/:id/execute',
    { config: { session: true }, schema: { hide: true, params: IdParams, body: ExecuteBody } },
    async (request) => {
      const { id } = request.params as { id: string };
      if (!isUuid(id)) throw notFound('Sequence');
      return executeSequenceForContacts(ctx, request.dashboard!.workspaceId, id, request.body as { contactIds: string[]; context?: unknown });
    },
  );
}
