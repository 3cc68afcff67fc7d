import { defineConfig } from 'vitest/config';

/**
 * The reliability suite (`npm run test:reliability`, see RELIABILITY.md): crash, provider
 * faults, hostile input, isolation, forgery and soak. Kept apart from `npm test`
 * because it runs for up to half an hour; CI runs it with NUDGE_RELIABILITY=short.
 * One file at a time: the suites start real processes and measure memory, and must
 * not share the machine's two cores with each other.
 */
export default defineConfig({
  test: {
    include: ['test/reliability/**/*.test.ts'],
    globalSetup: ['test/reliability/support/global-setup.ts'],
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 30 * 60_000,
    hookTimeout: 5 * 60_000,
    reporters: ['default'],
  },
});
