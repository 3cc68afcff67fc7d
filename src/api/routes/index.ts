import type { App } from '../types.js';
import type { Context } from '../../engine/context.js';
import { registerIdentityRoutes } from './identity.js';

/** Every route group. Each group file registers its own routes with their schemas. */
export async function registerRoutes(app: App, ctx: Context): Promise<void> {
  registerIdentityRoutes(app, ctx);
}
