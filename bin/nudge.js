#!/usr/bin/env node
// Entry point of the `nudge` command. Runs the compiled CLI; `npm run build` (or `npm start`) compiles it.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const compiled = fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url));
if (!existsSync(compiled)) {
  process.stderr.write('nudge: the compiled CLI is missing; run `npm run build` first (npm start does it for you)\n');
  process.exit(1);
}
const { main } = await import(compiled);
await main(process.argv.slice(2));
