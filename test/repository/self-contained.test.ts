import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * CI runs on a fresh clone wherever it is placed, so nothing in the code or the tests may
 * read a file outside the repository (a relative path that climbs above the checkout, as
 * the provider payloads once did with `../shared/reference`).
 */
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const scanned = ['src', 'test', 'bench', 'bin', '.ci'];

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (name === 'node_modules' || name === 'fixtures' || name === 'tmp') continue;
    if (statSync(path).isDirectory()) out.push(...filesUnder(path));
    else if (/\.(ts|js|mjs|cjs|sh)$/.test(name) || dir.endsWith(`${sep}.ci`)) out.push(path);
  }
  return out;
}

const inside = (path: string) => !relative(root, path).startsWith('..');

/**
 * Every relative path literal (`'../…'`) in `source` that resolves outside `root` from
 * `file`. Code under src/ and bench/ also runs compiled, from dist/: a path counts as
 * inside when it stays inside from either place.
 */
function pathsLeavingRepository(file: string, source: string): string[] {
  const from = [dirname(file)];
  const rel = relative(root, file);
  if (rel.startsWith(`src${sep}`) || rel.startsWith(`bench${sep}`)) from.push(dirname(join(root, 'dist', rel)));
  const found: string[] = [];
  for (const match of source.matchAll(/['"`]((?:\.\.\/)+[^'"`\s]*)['"`]/g)) {
    if (!from.some((dir) => inside(resolve(dir, match[1]!)))) found.push(match[1]!);
  }
  return found;
}

describe('the repository is self-contained', () => {
  it('finds a path that climbs out of the checkout', () => {
    const climbing = `${'../'.repeat(3)}shared/reference/a.json`;
    expect(pathsLeavingRepository(join(root, 'test/channels/x.test.ts'), `new URL('${climbing}', import.meta.url)`)).toEqual([climbing]);
    expect(pathsLeavingRepository(join(root, 'bench/support/x.ts'), `new URL('${'../'.repeat(3)}bin/nudge.js', import.meta.url)`)).toEqual([]);
    expect(pathsLeavingRepository(join(root, 'test/channels/x.test.ts'), "new URL('../fixtures/reference/a.json', import.meta.url)")).toEqual([]);
  });

  it('reads no file outside the repository from the code, the tests, the bench or CI', () => {
    const leaving = scanned
      .map((dir) => join(root, dir))
      .flatMap((dir) => filesUnder(dir))
      .flatMap((file) => pathsLeavingRepository(file, readFileSync(file, 'utf8')).map((path) => `${relative(root, file)}: ${path}`));
    expect(leaving).toEqual([]);
  });
});
