/**
 * Variables that would point a spawned server or client at something other than the
 * private instance we started (a machine-wide etcd, the system PostgreSQL, a MySQL
 * password). They are removed from the environment of everything we spawn.
 */
const FOREIGN_PREFIXES = ['ETCD_', 'ETCDCTL_', 'PG', 'MYSQL_', 'MARIADB_'];

/** The current environment minus server/client settings, plus `extra`. */
export function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (FOREIGN_PREFIXES.some((prefix) => key.startsWith(prefix))) continue;
    env[key] = value;
  }
  return { ...env, ...extra };
}
