import setupDatabases from '../../support/global-setup.js';
import { ensureBuild } from './cluster.js';

/**
 * The normal suite's setup (PostgreSQL found, template database migrated), and the
 * compiled build the child processes run, made once before any suite starts.
 */
export default async function setup(context: { provide: (key: string, value: unknown) => void }): Promise<() => Promise<void>> {
  ensureBuild();
  return setupDatabases(context);
}
