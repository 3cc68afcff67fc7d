import type { App } from '../types.js';
import { Type } from 'typebox';
import { describeIdentity } from '../../engine/auth-service.js';
import type { Context } from '../../engine/context.js';
import { authErrors, errorResponses, ok } from '../schemas.js';

const Me = Type.Object({
  id: Type.String(),
  email: Type.Union([Type.String(), Type.Null()]),
  name: Type.String(),
  tenant: Type.Object({ id: Type.String(), name: Type.String() }),
  scopes: Type.Array(Type.String()),
});

export function registerIdentityRoutes(app: App, ctx: Context): void {
  app.get(
    '/api/v1/me',
    {
      schema: {
        summary: 'Who am I',
        description: "The token's user and workspace (tenant), and the token's scopes.",
        tags: ['Identity'],
        operationId: 'getMe',
        response: {
          200: ok(Me, 'The current user and workspace', {
            id: '01936f3e-8a5c-7b2e-9c1d-2f3a4b5c6d7e',
            email: 'admin@localhost',
            name: 'Admin',
            tenant: { id: '01936f3e-8a5c-7b2e-9c1d-000000000001', name: 'Default workspace' },
            scopes: ['*'],
          }),
          ...errorResponses(...authErrors),
        },
      },
    },
    async (request) => describeIdentity(ctx, request.principal!),
  );

  app.get(
    '/health',
    {
      config: { public: true },
      schema: {
        summary: 'Health check',
        description: 'Answers 200 while the server can reach its database.',
        tags: ['Identity'],
        operationId: 'getHealth',
        security: [],
        response: { 200: ok(Type.Object({ status: Type.String() }), 'Healthy', { status: 'ok' }) },
      },
    },
    async () => {
      await ctx.database.db.selectFrom('workspaces').select('id').limit(1).execute();
      return { status: 'ok' };
    },
  );
}
