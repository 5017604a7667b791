import { defineConfig } from 'vitest/config';

// Three projects: `unit` needs no database; `db` gets a real PostgreSQL (wal_level=logical, pgvector)
// from test/harness/global-setup.ts and gives each test file its own migrated database; `db-alone`
// runs after it, one file at a time on a server of its own. The live-reload test is there: run
// beside the other files, its first reloads waited minutes on something the rest of the suite did
// to the shared server (not yet explained; see the closing note of session 4), while alone they take
// a second. The SQL-pipelines live test reloads the same way.
const ALONE = ['test/db/ops/reload.test.ts', 'test/db/ops/sql-pipelines.test.ts'];
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
          exclude: ALONE,
          // After the unit project (which needs no database): different worker limits need their own group.
          sequence: { groupOrder: 1 },
          globalSetup: ['test/harness/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          // Crash tests spawn processes and the cluster has two cores: keep file parallelism modest.
          maxWorkers: 2,
        },
      },
      {
        test: {
          name: 'db-alone',
          include: ALONE,
          sequence: { groupOrder: 2 },
          globalSetup: ['test/harness/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          maxWorkers: 1,
        },
      },
    ],
  },
});
