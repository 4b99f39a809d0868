import type { InsituError, Column } from '@insitu/core';
import type { DataValue } from '@insitu/sdk';
import { Kysely, MysqlDialect, sql } from 'kysely';
import { createPool, type Pool, type PoolConnection } from 'mysql2';
import type { MysqlSourceConfig } from '../config/agent-config.js';
import { sourceUnavailable, type DataSource, type DatasetMeta, type QueryPlan } from './data-source.js';
import { describeDataset, selectTables } from './describe.js';
import { sourcePassword } from './password.js';
import { SqlCompiler, type AnyDatabase } from './sql-compiler.js';
import { mysqlConnectionOptions, mysqlSessionStatements } from './mysql-session.js';
import { convertRows, mysqlColumnType, wireConverter } from './values.js';
import { WorkerPool, wireTypes } from './worker-pool.js';

const BATCH = 2000;

/** A MySQL or MariaDB database, read through a read-only account, with a statement time limit. */
export class MysqlSource implements DataSource {
  readonly kind = 'mysql' as const;
  readonly name: string;
  private readonly pool: Pool;
  private readonly db: Kysely<AnyDatabase>;
  private readonly compiler: SqlCompiler;
  /** Query workers for the data API's row lines, each with its own connection. */
  private readonly workers: WorkerPool;

  constructor(
    private readonly config: Readonly<MysqlSourceConfig>,
    options: { queryTimeoutMs: number; env?: NodeJS.ProcessEnv },
  ) {
    this.name = config.name;
    const password = sourcePassword(config, options.env);
    const connection = mysqlConnectionOptions(config, password);
    const session = mysqlSessionStatements(options.queryTimeoutMs);
    this.pool = createPool({ ...connection, connectionLimit: config.poolSize });
    this.pool.on('connection', (c) => {
      for (const statement of session) c.query(statement, () => undefined);
    });
    this.workers = new WorkerPool(
      new URL('./mysql-worker.js', import.meta.url),
      { connection, session },
      config.poolSize,
    );
    this.db = new Kysely<AnyDatabase>({ dialect: new MysqlDialect({ pool: this.pool }) });
    this.compiler = new SqlCompiler(this.db, 'mysql');
  }

  private unavailable(error: unknown): InsituError {
    return sourceUnavailable(this.name, error);
  }

  async introspect(): Promise<DatasetMeta[]> {
    try {
      const rows = await this.db
        .selectFrom('information_schema.COLUMNS')
        .select([
          'TABLE_NAME as table_name',
          'COLUMN_NAME as column_name',
          'DATA_TYPE as data_type',
          'COLUMN_TYPE as column_type',
          'IS_NULLABLE as is_nullable',
          'ORDINAL_POSITION as pos',
        ])
        .where('TABLE_SCHEMA', '=', this.config.database)
        .orderBy('TABLE_NAME')
        .orderBy('ORDINAL_POSITION')
        .execute();
      const byTable = new Map<string, Column[]>();
      for (const r of rows) {
        const list = byTable.get(String(r.table_name)) ?? [];
        list.push({
          name: String(r.column_name),
          type: mysqlColumnType(String(r.data_type), String(r.column_type)),
          sourceType: String(r.column_type).slice(0, 64),
          nullable: r.is_nullable === 'YES',
        });
        byTable.set(String(r.table_name), list);
      }
      const out: DatasetMeta[] = [];
      for (const table of selectTables([...byTable.keys()], this.config)) {
        const count = await this.db
          .selectFrom(sql`${sql.id(table)}`.as('t'))
          .select(sql<string>`count(*)`.as('n'))
          .executeTakeFirst();
        out.push(describeDataset(this.config, table, table, byTable.get(table) ?? [], count ? Number(count.n) : null));
      }
      return out;
    } catch (error) {
      throw this.unavailable(error);
    }
  }

  private connection(): Promise<PoolConnection> {
    return new Promise((resolve, reject) =>
      this.pool.getConnection((error, connection) => (error ? reject(this.unavailable(error)) : resolve(connection))),
    );
  }

  async *query(plan: QueryPlan, signal: AbortSignal): AsyncGenerator<DataValue[][]> {
    const compiled = this.compiler.compile(plan, { name: plan.dataset.location });
    const converters = plan.output.map((o) => (o.type === 'text' ? null : wireConverter(o.type)));
    const connection = await this.connection();
    let finished = false;
    const stream = connection
      .query({ sql: compiled.sql, values: compiled.parameters as unknown[], rowsAsArray: true })
      .stream({ highWaterMark: BATCH });
    const onAbort = () => stream.destroy();
    signal.addEventListener('abort', onAbort);
    try {
      let batch: unknown[][] = [];
      try {
        for await (const row of stream as AsyncIterable<unknown[]>) {
          batch.push(row);
          if (batch.length >= BATCH) {
            yield convertRows(batch, converters);
            batch = [];
          }
        }
      } catch (error) {
        if (signal.aborted) return;
        throw this.unavailable(error);
      }
      if (batch.length > 0) yield convertRows(batch, converters);
      finished = !signal.aborted;
    } finally {
      signal.removeEventListener('abort', onAbort);
      // A connection whose result was not read to the end cannot be reused.
      if (finished) connection.release();
      else connection.destroy();
    }
  }

  /** The data API's path: rows parsed, converted and serialised in a query worker. */
  async *queryLines(plan: QueryPlan, signal: AbortSignal): AsyncGenerator<{ text: string; rows: number }> {
    const compiled = this.compiler.compile(plan, { name: plan.dataset.location });
    const query = {
      type: 'query' as const,
      sql: compiled.sql,
      params: compiled.parameters,
      batch: BATCH,
      types: wireTypes(plan, ['text']),
    };
    for await (const reply of this.workers.run(query, signal, this.name))
      if (reply.type === 'text') yield { text: reply.text, rows: reply.rows };
  }

  async close(): Promise<void> {
    await this.workers.close();
    await this.db.destroy();
  }
}
