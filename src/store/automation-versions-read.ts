/**
 * Automation versions (workspaces.automation_version) that a statement of a transaction
 * already read: on PostgreSQL the contact upsert returns the version with the new row,
 * which saves the round trip of reading it again in that transaction. Keyed by the
 * transaction object, so a value never outlives it; bumping the version in the
 * transaction, or rolling a grouped unit back to its savepoint, forgets it. This module
 * imports nothing, so the store's modules can all use it without a cycle.
 */
const versionsReadIn = new WeakMap<object, Map<string, number>>();

export function rememberAutomationVersion(trx: { readonly isTransaction: boolean }, workspaceId: string, version: number): void {
  // Outside a transaction the next statement may see a newer version: nothing to keep.
  if (!trx.isTransaction) return;
  let known = versionsReadIn.get(trx);
  if (!known) {
    known = new Map();
    versionsReadIn.set(trx, known);
  }
  known.set(workspaceId, version);
}

export function knownAutomationVersion(trx: object, workspaceId: string): number | undefined {
  return versionsReadIn.get(trx)?.get(workspaceId);
}

/** The version is about to change in this transaction. */
export function forgetAutomationVersion(trx: object, workspaceId: string): void {
  versionsReadIn.get(trx)?.delete(workspaceId);
}

/** A unit rolled back to its savepoint: what it read may not hold for the rest of the transaction. */
export function forgetAutomationVersions(trx: object): void {
  versionsReadIn.delete(trx);
}
