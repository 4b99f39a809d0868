import type { AgentLimits, SourceConfig } from '../config/agent-config.js';
import { CsvSource } from './csv-source.js';
import type { DataSource } from './data-source.js';
import { MysqlSource } from './mysql-source.js';
import { PostgresSource } from './postgres-source.js';
import { SqliteSource } from './sqlite-source.js';

/** The connector for one configured source. Connecting is lazy: nothing is opened before the first use. */
export function openSource(
  config: Readonly<SourceConfig>,
  limits: Readonly<AgentLimits>,
  env: NodeJS.ProcessEnv = process.env,
): DataSource {
  switch (config.kind) {
    case 'sqlite':
      return new SqliteSource(config, limits.maxConcurrentQueries);
    case 'csv':
      return new CsvSource(config, { maxSortRows: limits.maxSortRows, maxConcurrent: limits.maxConcurrentQueries });
    case 'postgres':
      return new PostgresSource(config, { queryTimeoutMs: limits.queryTimeoutMs, env });
    case 'mysql':
      return new MysqlSource(config, { queryTimeoutMs: limits.queryTimeoutMs, env });
  }
}
