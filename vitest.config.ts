import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: { conditions: ['@modelmaxx/source'] },
  ssr: {
    resolve: { conditions: ['@modelmaxx/source'], externalConditions: ['@modelmaxx/source'] },
  },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'collector/test/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
