import type { ConnectionOptions } from 'mysql2';
import type { MysqlSourceConfig } from '../config/agent-config.js';

/** mysql2 connection settings of a source (the pool and the query workers use the same). */
export function mysqlConnectionOptions(
  config: Readonly<MysqlSourceConfig>,
  password: string | undefined,
): ConnectionOptions {
  return {
    ...(config.socket ? { socketPath: config.socket } : { host: config.host, port: config.port }),
    database: config.database,
    user: config.user,
    ...(password !== undefined ? { password } : {}),
    ...(config.ssl ? { ssl: {} } : {}),
    charset: 'utf8mb4',
    dateStrings: true,
    supportBigNumbers: true,
    bigNumberStrings: false,
    decimalNumbers: false,
    timezone: 'Z',
    connectTimeout: 10_000,
  };
}

/**
 * Run on every new connection: a read-only session with a statement time limit. MariaDB
 * spells it max_statement_time (seconds), MySQL max_execution_time (milliseconds); one of
 * the two fails, which is fine.
 */
export function mysqlSessionStatements(queryTimeoutMs: number): string[] {
  const seconds = Math.max(1, Math.ceil(queryTimeoutMs / 1000));
  return [
    'SET SESSION TRANSACTION READ ONLY',
    `SET SESSION max_statement_time = ${seconds}`,
    `SET SESSION max_execution_time = ${seconds * 1000}`,
    "SET SESSION time_zone = '+00:00'",
  ];
}
