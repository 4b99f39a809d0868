import { InsituError, type Column } from '@insitu/core';
import type { DataValue } from '@insitu/sdk';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, SqliteDialect, sql } from 'kysely';
import type { SqliteSourceConfig } from '../config/agent-config.js';
import type { DataSource, DatasetMeta, QueryPlan } from './data-source.js';
import { describeDataset, selectTables } from './describe.js';
import { SqlCompiler, type AnyDatabase } from './sql-compiler.js';
import { convertRows, sqliteColumnType, wireConverter } from './values.js';
import { WorkerPool, wireTypes } from './worker-pool.js';
import { dataSourceUnavailable } from '../errors.js';

const BATCH = 2000;

/** A SQLite file, opened read-only; queries run in worker threads. */
export class SqliteSource implements DataSource {
  readonly kind = 'sqlite' as const;
  readonly name: string;
  private readonly db: Kysely<AnyDatabase>;
  private readonly compiler: SqlCompiler;
  private readonly pool: WorkerPool;

  constructor(
    private readonly config: Readonly<SqliteSourceConfig>,
    maxConcurrent: number,
  ) {
    this.name = config.name;
    this.db = new Kysely<AnyDatabase>({
      dialect: new SqliteDialect({
        database: async () => {
          const db = new BetterSqlite3(config.path, { readonly: true, fileMustExist: true });
          db.pragma('query_only = ON');
          return db;
        },
      }),
    });
    this.compiler = new SqlCompiler(this.db, 'sqlite');
    this.pool = new WorkerPool(new URL('./sqlite-worker.js', import.meta.url), { path: config.path }, maxConcurrent);
  }

  async introspect(): Promise<DatasetMeta[]> {
    try {
      const tables = await this.db
        .selectFrom('sqlite_schema')
        .select('name')
        .where('type', 'in', ['table', 'view'])
        .where('name', 'not like', 'sqlite_%')
        .orderBy('name')
        .execute();
      const out: DatasetMeta[] = [];
      for (const table of selectTables(
        tables.map((t) => String(t.name)),
        this.config,
      )) {
        const info = await this.db.selectFrom(tableInfo(table)).select(['name', 'type', 'notnull', 'pk']).execute();
        const columns: Column[] = info.map((c) => ({
          name: String(c.name),
          type: sqliteColumnType(String(c.type)),
          sourceType: String(c.type),
          nullable: Number(c.notnull) === 0 && Number(c.pk) === 0,
        }));
        const count = await this.db
          .selectFrom(sqlTable(table))
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .executeTakeFirst();
        out.push(describeDataset(this.config, table, table, columns, count ? Number(count.n) : null));
      }
      return out;
    } catch (error) {
      if (error instanceof InsituError) throw error;
      throw dataSourceUnavailable(this.name, `cannot read ${this.config.path}: ${(error as Error).message}`, error);
    }
  }

  async *query(plan: QueryPlan, signal: AbortSignal): AsyncGenerator<DataValue[][]> {
    const converters = plan.output.map((o) =>
      o.type === 'text' || o.type === 'number' ? null : wireConverter(o.type),
    );
    for await (const reply of this.pool.run(this.workerQuery(plan), signal, this.name))
      if (reply.type === 'rows') yield convertRows(reply.rows, converters);
  }

  async *queryLines(plan: QueryPlan, signal: AbortSignal): AsyncGenerator<{ text: string; rows: number }> {
    const query = { ...this.workerQuery(plan), types: wireTypes(plan, ['text', 'number']) };
    for await (const reply of this.pool.run(query, signal, this.name))
      if (reply.type === 'text') yield { text: reply.text, rows: reply.rows };
  }

  private workerQuery(plan: QueryPlan) {
    const compiled = this.compiler.compile(plan, { name: plan.dataset.location });
    return { type: 'query' as const, sql: compiled.sql, params: compiled.parameters, batch: BATCH };
  }

  async close(): Promise<void> {
    await this.pool.close();
    await this.db.destroy();
  }
}

function sqlTable(table: string) {
  return sql`${sql.id(table)}`.as('t');
}

function tableInfo(table: string) {
  return sql<{ name: string; type: string; notnull: number; pk: number }>`pragma_table_info(${table})`.as('c');
}
