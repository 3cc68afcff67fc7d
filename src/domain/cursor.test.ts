import { describe, expect, it } from 'vitest';
import { decodeCursor, encodeCursor } from './cursor.js';
import { AppError } from './errors.js';
import { newId } from './ids.js';

describe('cursors', () => {
  it('round-trips an id through an opaque base64url string', () => {
    const id = newId();
    const cursor = encodeCursor(id);
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(cursor).not.toContain(id);
    expect(decodeCursor(cursor)).toBe(id);
  });

  it('refuses a cursor it did not hand out, naming cursor', () => {
    for (const bad of ['', 'not a cursor', encodeCursor('not-an-id'), 'x'.repeat(500)]) {
      try {
        decodeCursor(bad);
        throw new Error(`accepted ${bad}`);
      } catch (error) {
        expect(error).toBeInstanceOf(AppError);
        expect((error as AppError).errors).toHaveProperty('cursor');
      }
    }
  });
});
