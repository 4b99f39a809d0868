import pg from 'pg';
import type { PostgresSourceConfig } from '../config/agent-config.js';

// Type parsers for our clients only (pg's global parsers stay untouched): dates and
// timestamps as the server prints them, 64-bit integers and numerics as text, so the
// agent converts them without losing precision or shifting time zones.
const RAW_TYPES = new Set([20, 1082, 1114, 1184, 1700, 1083, 1266]);
export const postgresTypes = {
  getTypeParser(oid: number, format?: 'text' | 'binary'): (value: string) => unknown {
    if (RAW_TYPES.has(oid)) return (value: string) => value;
    return format === 'binary'
      ? (pg.types.getTypeParser(oid, 'binary') as (value: string) => unknown)
      : (pg.types.getTypeParser(oid, 'text') as (value: string) => unknown);
  },
};

/**
 * pg connection settings of a source, without the type parsers (so they can go to a
 * worker thread; each side adds {@link postgresTypes}): read-only transactions, the
 * statement timeout, UTC.
 */
export function postgresClientConfig(
  config: Readonly<PostgresSourceConfig>,
  password: string | undefined,
  queryTimeoutMs: number,
): pg.ClientConfig {
  return {
    host: config.host,
    port: config.port,
    database: config.database,
    user: config.user,
    ...(password !== undefined ? { password } : {}),
    ssl: config.ssl,
    application_name: 'insitu-agent',
    connectionTimeoutMillis: 10_000,
    options: `-c default_transaction_read_only=on -c statement_timeout=${queryTimeoutMs} -c TimeZone=UTC`,
  };
}
