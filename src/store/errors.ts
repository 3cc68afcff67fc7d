/**
 * Driver errors the services turn into answers. Both engines report a unique
 * violation differently; this is the one place that knows how.
 *
 * - better-sqlite3: `code: 'SQLITE_CONSTRAINT_UNIQUE'` (or `…_PRIMARYKEY`) and a message
 *   `UNIQUE constraint failed: contacts.workspace_id, contacts.email`.
 * - pg: `code: '23505'`, `constraint: 'contacts_workspace_email'` and a detail
 *   `Key (workspace_id, email)=(…) already exists.`
 */
interface DriverError {
  code?: unknown;
  message?: unknown;
  detail?: unknown;
  constraint?: unknown;
}

const sqliteUniqueCodes = new Set(['SQLITE_CONSTRAINT_UNIQUE', 'SQLITE_CONSTRAINT_PRIMARYKEY']);

/**
 * The columns of the unique index a write collided with (`['workspace_id', 'email']`),
 * `[]` when the driver did not say which, or null when the error is not a unique violation.
 */
export function uniqueViolationColumns(error: unknown): string[] | null {
  if (typeof error !== 'object' || error === null) return null;
  const e = error as DriverError;
  if (typeof e.code === 'string' && sqliteUniqueCodes.has(e.code)) {
    const match = /constraint failed: (.+)$/i.exec(typeof e.message === 'string' ? e.message : '');
    return match ? match[1]!.split(',').map((c) => c.trim().replace(/^.*\./, '')) : [];
  }
  if (e.code === '23505') {
    const match = /^Key \(([^)]*)\)/.exec(typeof e.detail === 'string' ? e.detail : '');
    if (match) return match[1]!.split(',').map((c) => c.trim().replace(/^"|"$/g, ''));
    return typeof e.constraint === 'string' ? e.constraint.split('_') : [];
  }
  return null;
}

/**
 * Whether `error` is a unique violation, optionally of an index covering `column`.
 *
 * @example
 * try { await insertContact(trx, row) }
 * catch (error) { if (isUniqueViolation(error, 'email')) throw invalid('email', 'is taken'); throw error }
 */
export function isUniqueViolation(error: unknown, column?: string): boolean {
  const columns = uniqueViolationColumns(error);
  if (columns === null) return false;
  return column === undefined || columns.includes(column);
}
