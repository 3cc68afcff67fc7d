import { invalid } from './errors.js';
import { isUuid } from './ids.js';

/**
 * Cursors are opaque to clients: base64url of the last id of a page. Ids are UUIDv7,
 * so "after this id" is "created after this one", and a row inserted while a client
 * walks the pages never shifts the pages it has not read yet.
 */
export function encodeCursor(lastId: string): string {
  return Buffer.from(lastId, 'utf8').toString('base64url');
}

/** The id a cursor stands for; a cursor this API did not hand out is a 422 naming `cursor`. */
export function decodeCursor(cursor: string): string {
  const id = /^[A-Za-z0-9_-]{1,200}$/.test(cursor) ? Buffer.from(cursor, 'base64url').toString('utf8') : '';
  if (!isUuid(id)) throw invalid('cursor', 'is not a cursor this API returned (use next_cursor of the previous page)');
  return id.toLowerCase();
}
