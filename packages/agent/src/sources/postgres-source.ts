import type { InsituError, Column } from '@insitu/core';
import type { DataValue } from '@insitu/sdk';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import Cursor from 'pg-cursor';
import type { PostgresSourceConfig } from '../config/agent-config.js';
import { sourceUnavailable, type DataSource, type DatasetMeta, type QueryPlan } from './data-source.js';
import { describeDataset, selectTables } from './describe.js';
import { sourcePassword } from './password.js';
import { SqlCompiler, type AnyDatabase } from './sql-compiler.js';
import { postgresClientConfig, postgresTypes } from './postgres-session.js';
import { convertRows, postgresColumnType, wireConverter } from './values.js';
import { WorkerPool, wireTypes } from './worker-pool.js';

const BATCH = 2000;

/** A PostgreSQL schema, read through a read-only role, in read-only transactions with a statement timeout. */
export class PostgresSource implements DataSource {
  readonly kind = 'postgres' as const;
  readonly name: string;
  private readonly pool: pg.Pool;
  private readonly db: Kysely<AnyDatabase>;
  private readonly compiler: SqlCompiler;
  /** Query workers for the data API's row lines, each with its own connection. */
  private readonly workers: WorkerPool;

  constructor(
    private readonly config: Readonly<PostgresSourceConfig>,
    options: { queryTimeoutMs: number; env?: NodeJS.ProcessEnv },
  ) {
    this.name = config.name;
    const password = sourcePassword(config, options.env);
    const client = postgresClientConfig(config, password, options.queryTimeoutMs);
    this.pool = new pg.Pool({ ...client, max: config.poolSize, types: postgresTypes });
    this.workers = new WorkerPool(new URL('./postgres-worker.js', import.meta.url), { client }, config.poolSize);
    this.pool.on('error', () => undefined);
    this.db = new Kysely<AnyDatabase>({ dialect: new PostgresDialect({ pool: this.pool, cursor: Cursor }) });
    this.compiler = new SqlCompiler(this.db, 'postgres');
  }

  private unavailable(error: unknown): InsituError {
    return sourceUnavailable(this.name, error);
  }

  async introspect(): Promise<DatasetMeta[]> {
    try {
      const rows = await this.db
        .selectFrom('information_schema.columns')
        .select(['table_name', 'column_name', 'udt_name', 'data_type', 'is_nullable', 'ordinal_position'])
        .where('table_schema', '=', this.config.schema)
        .orderBy('table_name')
        .orderBy('ordinal_position')
        .execute();
      const byTable = new Map<string, Column[]>();
      for (const r of rows) {
        const list = byTable.get(String(r.table_name)) ?? [];
        list.push({
          name: String(r.column_name),
          type: postgresColumnType(String(r.udt_name)),
          sourceType: String(r.data_type).slice(0, 64),
          nullable: r.is_nullable === 'YES',
        });
        byTable.set(String(r.table_name), list);
      }
      const out: DatasetMeta[] = [];
      for (const table of selectTables([...byTable.keys()], this.config)) {
        const count = await this.db
          .selectFrom(sql`${sql.id(this.config.schema, table)}`.as('t'))
          .select(sql<string>`count(*)`.as('n'))
          .executeTakeFirst();
        out.push(describeDataset(this.config, table, table, byTable.get(table) ?? [], count ? Number(count.n) : null));
      }
      return out;
    } catch (error) {
      throw this.unavailable(error);
    }
  }

  async *query(plan: QueryPlan, signal: AbortSignal): AsyncGenerator<DataValue[][]> {
    const compiled = this.compiler.compile(plan, { schema: this.config.schema, name: plan.dataset.location });
    const converters = plan.output.map((o) =>
      o.type === 'text' || o.type === 'number' || o.type === 'boolean' ? null : wireConverter(o.type),
    );
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error) {
      throw this.unavailable(error);
    }
    let broken = false;
    let finished = false;
    const onAbort = () => {
      broken = true;
      // Dropping the connection ends the query on the server side too.
      (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
    };
    signal.addEventListener('abort', onAbort);
    try {
      const cursor = client.query(new Cursor(compiled.sql, compiled.parameters as unknown[], { rowMode: 'array' }));
      for (;;) {
        let rows: unknown[][];
        try {
          rows = (await cursor.read(BATCH)) as unknown[][];
        } catch (error) {
          if (signal.aborted) return;
          broken = true;
          throw this.unavailable(error);
        }
        if (rows.length === 0) break;
        yield convertRows(rows, converters);
        if (signal.aborted) return;
      }
      await cursor.close();
      finished = true;
    } finally {
      signal.removeEventListener('abort', onAbort);
      client.release(broken || !finished);
    }
  }

  /** The data API's path: rows parsed, converted and serialised in a query worker. */
  async *queryLines(plan: QueryPlan, signal: AbortSignal): AsyncGenerator<{ text: string; rows: number }> {
    const compiled = this.compiler.compile(plan, { schema: this.config.schema, name: plan.dataset.location });
    const query = {
      type: 'query' as const,
      sql: compiled.sql,
      params: compiled.parameters,
      batch: BATCH,
      types: wireTypes(plan, ['text', 'number', 'boolean']),
    };
    for await (const reply of this.workers.run(query, signal, this.name))
      if (reply.type === 'text') yield { text: reply.text, rows: reply.rows };
  }

  async close(): Promise<void> {
    await this.workers.close();
    await this.db.destroy();
  }
}
