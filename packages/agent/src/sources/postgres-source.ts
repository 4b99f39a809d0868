import { InsituError, type Column } from '@insitu/core';
import type { DataValue } from '@insitu/sdk';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import Cursor from 'pg-cursor';
import type { PostgresSourceConfig } from '../config/agent-config.js';
import type { DataSource, DatasetMeta, QueryPlan } from './data-source.js';
import { describeDataset, selectTables } from './describe.js';
import { sourcePassword } from './password.js';
import { SqlCompiler, type AnyDatabase } from './sql-compiler.js';
import { convertRows, postgresColumnType, wireConverter } from './values.js';

const BATCH = 2000;

// Type parsers for this pool only (pg's global parsers stay untouched): dates and
// timestamps as the server prints them, 64-bit integers and numerics as text, so the
// agent converts them without losing precision or shifting time zones.
const RAW_TYPES = new Set([20, 1082, 1114, 1184, 1700, 1083, 1266]);
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary'): (value: string) => unknown {
    if (RAW_TYPES.has(oid)) return (value: string) => value;
    return format === 'binary' ? (pg.types.getTypeParser(oid, 'binary') as (value: string) => unknown) : (pg.types.getTypeParser(oid, 'text') as (value: string) => unknown);
  },
};

/** A PostgreSQL schema, read through a read-only role, in read-only transactions with a statement timeout. */
export class PostgresSource implements DataSource {
  readonly kind = 'postgres' as const;
  readonly name: string;
  private readonly pool: pg.Pool;
  private readonly db: Kysely<AnyDatabase>;
  private readonly compiler: SqlCompiler;

  constructor(
    private readonly config: Readonly<PostgresSourceConfig>,
    options: { queryTimeoutMs: number; env?: NodeJS.ProcessEnv },
  ) {
    this.name = config.name;
    const password = sourcePassword(config, options.env);
    this.pool = new pg.Pool({
      host: config.host,
      port: config.port,
      database: config.database,
      user: config.user,
      ...(password !== undefined ? { password } : {}),
      ssl: config.ssl,
      max: config.poolSize,
      types,
      application_name: 'insitu-agent',
      connectionTimeoutMillis: 10_000,
      options: `-c default_transaction_read_only=on -c statement_timeout=${options.queryTimeoutMs} -c TimeZone=UTC`,
    });
    this.pool.on('error', () => undefined);
    this.db = new Kysely<AnyDatabase>({ dialect: new PostgresDialect({ pool: this.pool, cursor: Cursor }) });
    this.compiler = new SqlCompiler(this.db, 'postgres');
  }

  private unavailable(error: unknown): InsituError {
    if (error instanceof InsituError) return error;
    return new InsituError('INSITU_DATA_SOURCE_UNAVAILABLE', `source ${this.name}: ${(error as Error).message}`, { cause: error });
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
        list.push({ name: String(r.column_name), type: postgresColumnType(String(r.udt_name)), sourceType: String(r.data_type).slice(0, 64), nullable: r.is_nullable === 'YES' });
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
    const converters = plan.output.map((o) => (o.type === 'text' || o.type === 'number' || o.type === 'boolean' ? null : wireConverter(o.type)));
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

  async close(): Promise<void> {
    await this.db.destroy();
  }
}
