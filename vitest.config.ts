import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['**/*.test.ts'],
    exclude: ['node_modules/**', '.data/**'],
    globalSetup: ['./test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Integration tests share one PostgreSQL server and spawn daemons; two cores cannot run many at once.
    maxWorkers: 2,
    coverage: {
      provider: 'v8',
      include: ['ingest/**', 'stages/**', 'query/**', 'stream/**', 'archive/**', 'infra/**'],
      exclude: ['**/*.test.ts'],
    },
  },
});
