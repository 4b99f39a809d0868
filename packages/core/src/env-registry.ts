import { InsituError } from './errors.js';
import { suggest } from './suggest.js';

/** Who reads an environment variable. */
export type EnvScope = 'platform' | 'agent' | 'app' | 'cli' | 'test' | 'dbmanager';

/** One environment variable that Insitu reads, with what it means. */
export interface EnvVar {
  name: string;
  meaning: string;
  scope: EnvScope;
  /** The config option it sets (dotted path), when it maps onto one. */
  option?: string;
  type: 'string' | 'integer' | 'boolean';
}

/**
 * Every environment variable Insitu reads, in one registry. A variable that starts
 * with `INSITU_` and is not listed here is rejected, with the closest name suggested.
 * Listed variables are documented in this package's README (a test checks it).
 */
export const ENV_VARS: readonly EnvVar[] = [
  {
    name: 'INSITU_DATA_DIR',
    scope: 'cli',
    type: 'string',
    meaning: 'Data directory (default ./.insitu); same as --data-dir.',
  },
  {
    name: 'INSITU_CONFIG',
    scope: 'cli',
    type: 'string',
    meaning: 'Config file to read instead of <data dir>/config.yaml; same as --config.',
  },
  {
    name: 'INSITU_HOST',
    scope: 'platform',
    type: 'string',
    option: 'listen.host',
    meaning: 'Address the platform server listens on.',
  },
  {
    name: 'INSITU_PORT',
    scope: 'platform',
    type: 'integer',
    option: 'listen.port',
    meaning: 'Port the platform server listens on (0 picks a free one).',
  },
  {
    name: 'INSITU_PUBLIC_URL',
    scope: 'platform',
    type: 'string',
    option: 'publicUrl',
    meaning: 'URL under which users and agents reach the platform.',
  },
  {
    name: 'INSITU_LOG_LEVEL',
    scope: 'platform',
    type: 'string',
    option: 'log.level',
    meaning: 'Log level: fatal, error, warn, info, debug, trace or silent.',
  },
  {
    name: 'INSITU_DATABASE_URL',
    scope: 'platform',
    type: 'string',
    option: 'database.url',
    meaning: 'Platform database: sqlite:PATH or mysql://USER@HOST:PORT/DB (password from INSITU_DATABASE_PASSWORD).',
  },
  {
    name: 'INSITU_DATABASE_PASSWORD',
    scope: 'platform',
    type: 'string',
    option: 'database.password',
    meaning: 'Password for a MySQL/MariaDB platform database.',
  },
  {
    name: 'INSITU_SIGNUP',
    scope: 'platform',
    type: 'string',
    option: 'auth.signup',
    meaning: 'Self-service sign-up: open, approval or closed.',
  },
  {
    name: 'INSITU_DATABASE_MANAGER_TOKEN',
    scope: 'platform',
    type: 'string',
    option: 'database.managerToken',
    meaning: "The dbmanager's admin token, so platform admins can switch over and acknowledge through the REST API.",
  },
  {
    name: 'INSITU_METRICS_TOKEN',
    scope: 'platform',
    type: 'string',
    option: 'metrics.token',
    meaning: 'Bearer token that may scrape /metrics besides platform admins.',
  },
  {
    name: 'INSITU_CLUSTER_SECRET',
    scope: 'platform',
    type: 'string',
    option: 'cluster.secret',
    meaning: 'Shared secret of the platform nodes of a cluster (node-to-node forwarding).',
  },
  {
    name: 'INSITU_URL',
    scope: 'cli',
    type: 'string',
    meaning: 'Platform URL that CLI commands talk to; same as --url.',
  },
  {
    name: 'INSITU_TOKEN',
    scope: 'cli',
    type: 'string',
    meaning: 'Bearer token that CLI commands send; same as --token.',
  },
  {
    name: 'INSITU_LISTEN_FD',
    scope: 'app',
    type: 'string',
    meaning:
      'Set by the agent for an application: the descriptor of the listening Unix socket (bound by the agent) it must serve HTTP on.',
  },
  {
    name: 'INSITU_LISTEN',
    scope: 'app',
    type: 'string',
    meaning:
      'For running an application outside the agent: the Unix socket path to serve HTTP on (the agent itself sets INSITU_LISTEN_FD).',
  },
  {
    name: 'INSITU_JOB_ARGS',
    scope: 'app',
    type: 'string',
    meaning: "Set by the agent for a job: the consumer's arguments as JSON (the SDK's jobArgs() reads it).",
  },
  {
    name: 'INSITU_OUTPUT_DIR',
    scope: 'app',
    type: 'string',
    meaning:
      "Set by the agent for a job: the directory its result files go to; only what the provider's result policy allows leaves it.",
  },
  {
    name: 'INSITU_DATA_API',
    scope: 'app',
    type: 'string',
    meaning: "Set by the agent for an application: the Unix socket of the agent's data API.",
  },
  {
    name: 'INSITU_DBMANAGER_CONFIG',
    scope: 'cli',
    type: 'string',
    meaning: 'Config file of `insitu dbmanager` and `insitu db`; same as --config.',
  },
  {
    name: 'INSITU_NODE_CONFIG',
    scope: 'cli',
    type: 'string',
    meaning: 'Node config (node.yaml) of `insitu node`, `insitu operator` and `insitu alerts`; same as --config.',
  },
  {
    name: 'INSITU_DBMANAGER_URL',
    scope: 'cli',
    type: 'string',
    meaning:
      'Admin URL of a dbmanager for `insitu db` (default: the elected manager, found through coord); same as --url.',
  },
  {
    name: 'INSITU_DBMANAGER_PASSWORD',
    scope: 'dbmanager',
    type: 'string',
    option: 'credentials.password',
    meaning: "The dbmanager's database password on every member (unless a member names its own).",
  },
  {
    name: 'INSITU_DBMANAGER_REPLICATION_PASSWORD',
    scope: 'dbmanager',
    type: 'string',
    option: 'replication.password',
    meaning: 'Password of the replication account that the dbmanager writes into CHANGE MASTER TO.',
  },
  {
    name: 'INSITU_DBMANAGER_TOKEN',
    scope: 'dbmanager',
    type: 'string',
    option: 'admin.token',
    meaning: "Shared bearer token of the dbmanager's admin API (`insitu db` sends it).",
  },
  {
    name: 'INSITU_DBMANAGER_LOG_LEVEL',
    scope: 'dbmanager',
    type: 'string',
    option: 'log.level',
    meaning: 'Log level of `insitu dbmanager`.',
  },
  {
    name: 'INSITU_TEST_MARIADB',
    scope: 'test',
    type: 'boolean',
    meaning: 'Set to 0 to skip the MariaDB half of dual-dialect tests (for a quick local run; CI runs both).',
  },
];

const BY_NAME = new Map(ENV_VARS.map((v) => [v.name, v]));

/** The registry entry for `name`, if any. */
export function envVar(name: string): EnvVar | undefined {
  return BY_NAME.get(name);
}

/**
 * Reject `INSITU_*` variables that are not in the registry, naming the closest known
 * one, so `INSITU_DATADIR=x` fails instead of being silently ignored.
 */
export function checkEnv(env: NodeJS.ProcessEnv = process.env): void {
  const names = ENV_VARS.map((v) => v.name);
  const unknown = Object.keys(env).filter((key) => key.startsWith('INSITU_') && !BY_NAME.has(key));
  if (unknown.length === 0) return;
  const parts = unknown.map((key) => {
    const hint = suggest(key, names);
    return hint ? `${key} (did you mean ${hint}?)` : key;
  });
  throw new InsituError('INSITU_CONFIG_INVALID', `unknown environment variable ${parts.join(', ')}`, {
    details: { unknown },
  });
}

function convert(variable: EnvVar, raw: string): string | number | boolean {
  if (variable.type === 'integer') {
    if (!/^-?\d+$/.test(raw.trim())) {
      throw new InsituError('INSITU_CONFIG_INVALID', `${variable.name} must be an integer, got "${raw}"`);
    }
    return Number(raw);
  }
  if (variable.type === 'boolean') {
    if (/^(1|true|yes|on)$/i.test(raw)) return true;
    if (/^(0|false|no|off)$/i.test(raw)) return false;
    throw new InsituError('INSITU_CONFIG_INVALID', `${variable.name} must be true or false, got "${raw}"`);
  }
  return raw;
}

/**
 * The config options set through the environment for one scope, as a nested object
 * ready to merge over a config file: `INSITU_PORT=8080` → `{ listen: { port: 8080 } }`.
 */
export function envOptions(scope: EnvScope, env: NodeJS.ProcessEnv = process.env): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const variable of ENV_VARS) {
    const raw = env[variable.name];
    if (variable.scope !== scope || variable.option === undefined || raw === undefined || raw === '') continue;
    setPath(out, variable.option, convert(variable, raw));
  }
  return out;
}

/** Read a registered variable of any scope, converted to its type. */
export function readEnvVar(name: string, env: NodeJS.ProcessEnv = process.env): string | number | boolean | undefined {
  const variable = BY_NAME.get(name);
  if (!variable) throw new Error(`${name} is not in the environment registry`);
  const raw = env[name];
  return raw === undefined || raw === '' ? undefined : convert(variable, raw);
}

/** Set `value` at a dotted `path` inside `target`, creating objects on the way. */
export function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  let node = target;
  keys.slice(0, -1).forEach((key) => {
    const next = node[key];
    if (typeof next !== 'object' || next === null) node[key] = {};
    node = node[key] as Record<string, unknown>;
  });
  node[keys[keys.length - 1] ?? path] = value;
}
