// The one place that reads the environment. Every other module takes a resolved WalflowConfig.
import path from 'node:path';
import { z } from 'zod';
import { registerSecret, UserError } from '../errors.js';
import { DEFAULTS, defaultLowWatermark } from './defaults.js';

const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Whole numbers in [min, max]; the message names the range (loadConfig adds the value given). */
const intFromString = (min: number, max: number) => {
  const error = () => `must be a whole number from ${min} to ${max}`;
  return z.coerce.number({ error }).int({ error }).min(min, { error }).max(max, { error });
};

/** An outbound-host allowlist entry (parsed in full by src/steps/http/host-policy.ts). */
const HOST_PATTERN = /^(\*\.)?([a-z0-9_.-]+|\[[0-9a-f:.]+\])(:(\d{1,5}|\*))?$/i;

export const configSchema = z.object({
  /** Connection string. Unset: walflow uses (and provisions) its embedded local cluster. */
  databaseUrl: z.string().min(1).optional(),
  /** Where the embedded cluster lives (project-local by default). */
  dataDir: z.string().min(1).default('.walflow/pg'),
  /** Directory of pipeline definitions (pipelines/*.ts). */
  pipelinesDir: z.string().min(1).default('pipelines'),
  logLevel: z.enum(logLevels, { error: () => `must be one of ${logLevels.join(', ')}` }).default('info'),
  /** Human-readable logs; defaults to on when stderr is a terminal. */
  logPretty: z.boolean().optional(),
  /** Worker loops per process. */
  workers: intFromString(0, 256).default(DEFAULTS.workers),
  /** Runs executing at once per worker loop (a claim takes at most the free part). Formerly claimBatchSize. */
  maxInFlight: intFromString(1, 10_000).default(DEFAULTS.maxInFlight),
  /** Lease length; renewed while a step runs. */
  leaseMs: intFromString(1_000, 3_600_000).default(DEFAULTS.leaseMs),
  /** Polling backstop for runs started by other processes. */
  pollIntervalMs: intFromString(10, 600_000).default(DEFAULTS.pollIntervalMs),
  /** Completed, superseded and cancelled runs older than this are pruned. */
  retentionHours: intFromString(0, 100_000).default(DEFAULTS.retentionHours),
  /** How long graceful shutdown waits for running steps. */
  shutdownTimeoutMs: intFromString(0, 3_600_000).default(DEFAULTS.shutdownTimeoutMs),
  /** Consume WAL in this process (one leader at a time; others stand by). */
  replication: z.boolean().default(true),
  slotName: z.string().regex(/^[a-z0-9_]{1,63}$/, 'must be 1 to 63 lower-case letters, digits and _ (a replication slot name)').default('walflow'),
  publicationName: z.string().regex(/^[a-z0-9_]{1,63}$/, 'must be 1 to 63 lower-case letters, digits and _').default('walflow'),
  /** Connections that write run starts from WAL in parallel (a row's changes always share one). */
  replicationWriters: intFromString(1, 16).default(DEFAULTS.replicationWriters),
  /** Queued runs above which WAL reading pauses, and below which it resumes (default: half the high watermark). */
  highWatermark: intFromString(100, 100_000_000).default(DEFAULTS.highWatermark),
  lowWatermark: intFromString(0, 100_000_000).optional(),
  /** Serve Prometheus metrics, /healthz and /readyz on this port (0: off). */
  metricsPort: intFromString(0, 65_535).default(0),
  /** Serve the web console on this port beside the workers (0: off; `walflow ui` has its own default). */
  uiPort: intFromString(0, 65_535).default(0),
  /** Address the console binds: loopback unless an operator opens it up on purpose. */
  uiHost: z.string().min(1).default('127.0.0.1'),
  /** Token that enables the console's state-changing actions (retry, cancel); unset: actions disabled. */
  uiToken: z.string().min(16, 'must be at least 16 characters (e.g. `openssl rand -hex 16`)').optional(),
  /** Optional token required to view the console at all. */
  uiViewToken: z.string().min(16, 'must be at least 16 characters (e.g. `openssl rand -hex 16`)').optional(),
  /**
   * Hosts that HTTP steps of SQL-defined pipelines may call (comma-separated in the environment):
   * `api.example.com`, `*.example.com`, `api.example.com:8443`, `10.0.0.5:*`. Empty: none.
   */
  httpAllowHosts: z.preprocess(
    (v) => (typeof v === 'string' ? v.split(',').map((h) => h.trim()).filter((h) => h !== '') : v),
    z.array(z.string().regex(HOST_PATTERN, { error: (i) => `${JSON.stringify(i.input)} is not a host pattern (e.g. api.example.com, *.example.com, api.example.com:8443, 10.0.0.5:*)` })),
  ).default([]),
  /** Let those HTTP steps reach loopback and private-network addresses (link-local and metadata stay refused). */
  httpAllowPrivate: z.boolean().default(false),
});

export type WalflowConfig = Omit<z.infer<typeof configSchema>, 'lowWatermark'> & { lowWatermark: number };
export type ConfigInput = z.input<typeof configSchema> & {
  /** @deprecated renamed maxInFlight (what it always meant: runs in flight per worker loop); still accepted, with a warning. */
  claimBatchSize?: number | string;
};

/** Renamed keys: old name → new name. Configuration names are a public contract, so old ones keep working. */
const renamedKeys: Partial<Record<string, keyof ConfigInput>> = { claimBatchSize: 'maxInFlight' };

/** Maps environment variables to config keys. */
const envKeys: Record<string, keyof ConfigInput> = {
  DATABASE_URL: 'databaseUrl',
  WALFLOW_DATABASE_URL: 'databaseUrl',
  WALFLOW_DATA_DIR: 'dataDir',
  WALFLOW_PIPELINES_DIR: 'pipelinesDir',
  WALFLOW_LOG_LEVEL: 'logLevel',
  WALFLOW_LOG_PRETTY: 'logPretty',
  WALFLOW_WORKERS: 'workers',
  WALFLOW_MAX_IN_FLIGHT: 'maxInFlight',
  WALFLOW_CLAIM_BATCH_SIZE: 'maxInFlight', // deprecated alias, listed after the new name so that it loses
  WALFLOW_LEASE_MS: 'leaseMs',
  WALFLOW_POLL_INTERVAL_MS: 'pollIntervalMs',
  WALFLOW_RETENTION_HOURS: 'retentionHours',
  WALFLOW_SHUTDOWN_TIMEOUT_MS: 'shutdownTimeoutMs',
  WALFLOW_REPLICATION: 'replication',
  WALFLOW_SLOT_NAME: 'slotName',
  WALFLOW_PUBLICATION_NAME: 'publicationName',
  WALFLOW_REPLICATION_WRITERS: 'replicationWriters',
  WALFLOW_HIGH_WATERMARK: 'highWatermark',
  WALFLOW_LOW_WATERMARK: 'lowWatermark',
  WALFLOW_METRICS_PORT: 'metricsPort',
  WALFLOW_UI_PORT: 'uiPort',
  WALFLOW_UI_HOST: 'uiHost',
  WALFLOW_UI_TOKEN: 'uiToken',
  WALFLOW_UI_VIEW_TOKEN: 'uiViewToken',
  WALFLOW_HTTP_ALLOW_HOSTS: 'httpAllowHosts',
  WALFLOW_HTTP_ALLOW_PRIVATE: 'httpAllowPrivate',
};

/** Deprecated environment variables: old → new. */
const renamedEnv: Record<string, string> = { WALFLOW_CLAIM_BATCH_SIZE: 'WALFLOW_MAX_IN_FLIGHT' };

const warned = new Set<string>();

/** Tells once per process that an old name is in use (a Node DeprecationWarning, on stderr). */
function warnDeprecated(oldName: string, newName: string): void {
  if (warned.has(oldName)) return;
  warned.add(oldName);
  process.emitWarning(`${oldName} is deprecated: use ${newName} (same meaning: runs in flight per worker loop)`, 'DeprecationWarning');
}

/** Command-line flags of `walflow run` (and --pipelines of the other commands) that set keys. */
const flagOf: Partial<Record<keyof ConfigInput, string>> = {
  pipelinesDir: '--pipelines',
  workers: '--workers',
  replication: '--no-replication',
  metricsPort: '--metrics-port',
  uiPort: '--ui-port',
  uiHost: '--host',
};

/** The environment variable that sets each key (the first listed, for DATABASE_URL). */
export function envVarOf(key: keyof ConfigInput): string | undefined {
  return Object.entries(envKeys).find(([, k]) => k === key)?.[0];
}

function parseBool(value: string): boolean | undefined {
  if (/^(1|true|yes|on)$/i.test(value)) return true;
  if (/^(0|false|no|off)$/i.test(value)) return false;
  return undefined;
}

type Raw = Partial<Record<keyof ConfigInput, unknown>>;

/** The values set by the environment, and which variable set each key (for messages). */
function fromEnv(env: NodeJS.ProcessEnv, problems: string[], setBy: Map<string, string>): Raw {
  const out: Raw = {};
  for (const [name, key] of Object.entries(envKeys)) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    if (out[key] !== undefined) continue; // DATABASE_URL wins over WALFLOW_DATABASE_URL, a new name over its old one
    if (renamedEnv[name]) warnDeprecated(name, renamedEnv[name]);
    setBy.set(key, name);
    if (key === 'logPretty' || key === 'replication' || key === 'httpAllowPrivate') {
      const b = parseBool(value);
      if (b === undefined) problems.push(`${key} (${name}): must be true or false (got ${JSON.stringify(value)})`);
      else out[key] = b;
    } else out[key] = value;
  }
  return out;
}

/** The password of a connection string, so that redactSecrets() removes it wherever it shows up. */
function registerUrlSecrets(url: string | undefined): void {
  if (!url) return;
  try {
    const u = new URL(url);
    if (u.password) registerSecret(decodeURIComponent(u.password));
    registerSecret(u.searchParams.get('password'));
  } catch {
    /* not a URL: validated (and redacted by pattern) where it is used */
  }
  for (const m of url.matchAll(/password=([^\s&]+)/gi)) registerSecret(m[1]);
}

/**
 * Resolves configuration from defaults < environment < explicit overrides (flags), validated as a
 * whole so that every bad key is reported by name (with its environment variable) before anything
 * starts.
 */
export function loadConfig(
  overrides: Partial<ConfigInput> = {},
  env: NodeJS.ProcessEnv = process.env,
  cwd: string = process.cwd(),
): WalflowConfig {
  const problems: string[] = [];
  const defined = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)) as Raw;
  for (const [oldKey, newKey] of Object.entries(renamedKeys)) {
    if (!newKey || !(oldKey in defined)) continue;
    warnDeprecated(oldKey, newKey);
    if (!(newKey in defined)) defined[newKey] = defined[oldKey as keyof ConfigInput];
    delete defined[oldKey as keyof ConfigInput];
  }
  const setBy = new Map<string, string>();
  const raw: Raw = { ...fromEnv(env, problems, setBy), ...defined };
  registerUrlSecrets(typeof raw.databaseUrl === 'string' ? raw.databaseUrl : undefined);
  // Console tokens are secrets: never in a log line or an error message.
  if (typeof raw.uiToken === 'string') registerSecret(raw.uiToken);
  if (typeof raw.uiViewToken === 'string') registerSecret(raw.uiViewToken);
  const parsed = configSchema.safeParse(raw);
  // Name each key with where its value came from: its flag when one was given, else its variable.
  const name = (key: string) => {
    const from = key in defined ? (flagOf[key as keyof ConfigInput] ?? envVarOf(key as keyof ConfigInput)) : (setBy.get(key) ?? envVarOf(key as keyof ConfigInput));
    return `${key}${from ? ` (${from})` : ''}`;
  };
  if (!parsed.success) {
    for (const i of parsed.error.issues) {
      const key = String(i.path[0]) as keyof ConfigInput; // the top key: a list's entry is named in the message
      // The value as given (never a connection string: it may hold a password).
      const given = key !== 'databaseUrl' && key !== 'uiToken' && key !== 'uiViewToken' && raw[key] !== undefined ? ` (got ${JSON.stringify(raw[key])})` : '';
      problems.push(`${name(key)}: ${i.message}${given}`);
    }
  }
  // The watermarks are checked together, once each is valid on its own.
  const high = configSchema.shape.highWatermark.safeParse(raw.highWatermark);
  const low = configSchema.shape.lowWatermark.safeParse(raw.lowWatermark);
  if (high.success && low.success && low.data !== undefined && low.data >= high.data) {
    problems.push(`${name('lowWatermark')} must be below ${name('highWatermark')}: got ${low.data} and ${high.data}`);
  }
  if (problems.length > 0 || !parsed.success) throw new UserError(`invalid configuration: ${problems.join('; ')}`);
  const config = parsed.data;
  return {
    ...config,
    lowWatermark: config.lowWatermark ?? defaultLowWatermark(config.highWatermark),
    dataDir: path.resolve(cwd, config.dataDir),
    pipelinesDir: path.resolve(cwd, config.pipelinesDir),
  };
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
  if (v === undefined || v === '') return undefined;
  registerSecret(v); // and out of every message that might echo it (a server's error, a stack)
  return v;
}
