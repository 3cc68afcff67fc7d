// Runs the CLI from source: `tsx src/cli/entry.ts <command>` (npm run dev) and the tests' child processes.
import { main } from './main.js';

await main(process.argv.slice(2));
