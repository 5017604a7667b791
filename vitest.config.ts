import { defineConfig } from 'vitest/config';

// Two projects: `unit` needs no database; `db` gets a real PostgreSQL (wal_level=logical, pgvector)
// from test/harness/global-setup.ts and gives each test file its own migrated database.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          sequence: { groupOrder: 0 },
          testTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'db',
          include: ['test/db/**/*.test.ts'],
          // After the unit project (which needs no database): different worker limits need their own group.
          sequence: { groupOrder: 1 },
          globalSetup: ['test/harness/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          // Crash tests spawn processes and the cluster has two cores: keep file parallelism modest.
          maxWorkers: 2,
        },
      },
    ],
  },
});
