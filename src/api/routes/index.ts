import type { App } from '../types.js';
import type { Context } from '../../engine/context.js';
import { registerDefinitionRoutes } from './definitions.js';
import { registerContactRoutes } from './contacts.js';
import { registerIdentityRoutes } from './identity.js';
import { registerSessionRoutes } from './sessions.js';

/** Every route group. Each group file registers its own routes with their schemas. */
export async function registerRoutes(app: App, ctx: Context): Promise<void> {
  registerIdentityRoutes(app, ctx);
  registerContactRoutes(app, ctx);
  registerDefinitionRoutes(app, ctx);
  registerSessionRoutes(app, ctx);
}
