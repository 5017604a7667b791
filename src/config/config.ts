// The one place that reads the environment. Every other module takes a resolved WalflowConfig.
import path from 'node:path';
import { z } from 'zod';
import { UserError } from '../errors.js';

const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const intFromString = (min: number, max: number) =>
  z.coerce.number().int().min(min).max(max);

export const configSchema = z.object({
  /** Connection string. Unset: walflow uses (and provisions) its embedded local cluster. */
  databaseUrl: z.string().min(1).optional(),
  /** Where the embedded cluster lives (project-local by default). */
  dataDir: z.string().min(1).default('.walflow/pg'),
  /** Directory of pipeline definitions (pipelines/*.ts). */
  pipelinesDir: z.string().min(1).default('pipelines'),
  logLevel: z.enum(logLevels).default('info'),
  /** Human-readable logs; defaults to on when stderr is a terminal. */
  logPretty: z.boolean().optional(),
  /** Worker loops per process. */
  workers: intFromString(0, 256).default(2),
  /** Runs claimed per claim round trip. */
  claimBatchSize: intFromString(1, 10_000).default(200),
  /** Lease length; renewed while a step runs. */
  leaseMs: intFromString(1_000, 3_600_000).default(30_000),
  /** Polling backstop for runs started by other processes. */
  pollIntervalMs: intFromString(10, 600_000).default(1_000),
  /** Completed and superseded runs older than this are pruned. */
  retentionHours: intFromString(0, 100_000).default(168),
  /** How long graceful shutdown waits for running steps. */
  shutdownTimeoutMs: intFromString(0, 3_600_000).default(30_000),
});

export type WalflowConfig = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;

/** Maps environment variables to config keys. */
const envKeys: Record<string, keyof ConfigInput> = {
  DATABASE_URL: 'databaseUrl',
  WALFLOW_DATABASE_URL: 'databaseUrl',
  WALFLOW_DATA_DIR: 'dataDir',
  WALFLOW_PIPELINES_DIR: 'pipelinesDir',
  WALFLOW_LOG_LEVEL: 'logLevel',
  WALFLOW_LOG_PRETTY: 'logPretty',
  WALFLOW_WORKERS: 'workers',
  WALFLOW_CLAIM_BATCH_SIZE: 'claimBatchSize',
  WALFLOW_LEASE_MS: 'leaseMs',
  WALFLOW_POLL_INTERVAL_MS: 'pollIntervalMs',
  WALFLOW_RETENTION_HOURS: 'retentionHours',
  WALFLOW_SHUTDOWN_TIMEOUT_MS: 'shutdownTimeoutMs',
};

function fromEnv(env: NodeJS.ProcessEnv): Partial<Record<keyof ConfigInput, unknown>> {
  const out: Partial<Record<keyof ConfigInput, unknown>> = {};
  for (const [name, key] of Object.entries(envKeys)) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    if (out[key] !== undefined) continue; // DATABASE_URL wins over WALFLOW_DATABASE_URL
    out[key] = key === 'logPretty' ? /^(1|true|yes|on)$/i.test(value) : value;
  }
  return out;
}

/**
 * Resolves configuration from defaults < environment < explicit overrides (flags), validated as a
 * whole so that every bad key is reported by name before anything starts.
 */
export function loadConfig(
  overrides: Partial<ConfigInput> = {},
  env: NodeJS.ProcessEnv = process.env,
  cwd: string = process.cwd(),
): WalflowConfig {
  const defined = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined));
  const parsed = configSchema.safeParse({ ...fromEnv(env), ...defined });
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => {
      const key = i.path.join('.');
      const envName = Object.entries(envKeys).find(([, k]) => k === key)?.[0];
      return `${key}${envName ? ` (${envName})` : ''}: ${i.message}`;
    });
    throw new UserError(`invalid configuration: ${problems.join('; ')}`);
  }
  const config = parsed.data;
  return { ...config, dataDir: path.resolve(cwd, config.dataDir), pipelinesDir: path.resolve(cwd, config.pipelinesDir) };
}

/** Whether stderr is a terminal; read here so that other modules do not touch process globals. */
export function stderrIsTty(): boolean {
  return process.stderr.isTTY === true;
}
