// Runs the CLI from source (through tsx), so tests can start real Nudge processes without a build.
import '../../src/cli/entry.js';
