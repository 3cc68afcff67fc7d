// Runs the CLI from source (through tsx), so tests can start real Nudge processes without a build.
import { main } from '../../src/cli/main.js';

await main(process.argv.slice(2));
