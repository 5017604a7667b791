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
  /** Consume WAL in this process (one leader at a time; others stand by). */
  replication: z.boolean().default(true),
  slotName: z.string().regex(/^[a-z0-9_]{1,63}$/, 'lower-case letters, digits and _ (a replication slot name)').default('walflow'),
  publicationName: z.string().regex(/^[a-z0-9_]{1,63}$/, 'lower-case letters, digits and _').default('walflow'),
  /** Queued runs above which WAL reading pauses, and below which it resumes. */
  highWatermark: intFromString(100, 100_000_000).default(50_000),
  lowWatermark: intFromString(0, 100_000_000).default(25_000),
  /** Serve Prometheus metrics, /healthz and /readyz on this port (0: off). */
  metricsPort: intFromString(0, 65_535).default(0),
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
  WALFLOW_REPLICATION: 'replication',
  WALFLOW_SLOT_NAME: 'slotName',
  WALFLOW_PUBLICATION_NAME: 'publicationName',
  WALFLOW_HIGH_WATERMARK: 'highWatermark',
  WALFLOW_LOW_WATERMARK: 'lowWatermark',
  WALFLOW_METRICS_PORT: 'metricsPort',
};

function parseBool(name: string, value: string): boolean {
  if (/^(1|true|yes|on)$/i.test(value)) return true;
  if (/^(0|false|no|off)$/i.test(value)) return false;
  throw new UserError(`invalid configuration: ${name} must be true or false (got "${value}")`);
}

function fromEnv(env: NodeJS.ProcessEnv): Partial<Record<keyof ConfigInput, unknown>> {
  const out: Partial<Record<keyof ConfigInput, unknown>> = {};
  for (const [name, key] of Object.entries(envKeys)) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    if (out[key] !== undefined) continue; // DATABASE_URL wins over WALFLOW_DATABASE_URL
    out[key] = key === 'logPretty' || key === 'replication' ? parseBool(name, value) : value;
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

/**
 * Reads a secret (an API key) named by a pipeline's configuration, e.g. `apiKeyEnv: 'OPENAI_API_KEY'`.
 * Secrets never enter run inputs, checkpoints or logs: providers hold them in memory only.
 */
export function readSecret(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const v = env[name];
  return v === undefined || v === '' ? undefined : v;
}
