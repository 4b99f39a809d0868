import { Worker } from 'node:worker_threads';
import { InsituError, type Column } from '@insitu/core';
import type { DataValue } from '@insitu/sdk';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, SqliteDialect, sql } from 'kysely';
import type { SqliteSourceConfig } from '../config/agent-config.js';
import type { DataSource, DatasetMeta, QueryPlan } from './data-source.js';
import { describeDataset, selectTables } from './describe.js';
import { SqlCompiler, type AnyDatabase } from './sql-compiler.js';
import { convertRows, sqliteColumnType, wireConverter } from './values.js';

type WorkerReply = { type: 'rows'; rows: unknown[][]; done: boolean } | { type: 'text'; text: string; rows: number; done: boolean } | { type: 'error'; message: string };

const BATCH = 2000;

/** A small pool of worker threads, each with its own read-only connection. */
class WorkerPool {
  private readonly idle: Worker[] = [];
  private readonly waiting: Array<(worker: Worker) => void> = [];
  private count = 0;
  private closed = false;

  constructor(
    private readonly path: string,
    private readonly max: number,
  ) {}

  private spawn(): Worker {
    this.count++;
    const worker = new Worker(new URL('./sqlite-worker.js', import.meta.url), { workerData: { path: this.path } });
    worker.unref();
    worker.once('exit', () => {
      this.count--;
      const i = this.idle.indexOf(worker);
      if (i !== -1) this.idle.splice(i, 1);
    });
    return worker;
  }

  async acquire(): Promise<Worker> {
    if (this.closed) throw new InsituError('INSITU_DATA_SOURCE_UNAVAILABLE', 'the source is closed');
    const worker = this.idle.pop();
    if (worker) return worker;
    if (this.count < this.max) return this.spawn();
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** Give a worker back; a worker in an unknown state is terminated instead. */
  release(worker: Worker, healthy: boolean): void {
    if (!healthy || this.closed) {
      void worker.terminate();
      const next = this.waiting.shift();
      if (next && !this.closed) next(this.spawn());
      return;
    }
    const next = this.waiting.shift();
    if (next) next(worker);
    else this.idle.push(worker);
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.idle.splice(0).map((w) => w.terminate()));
  }
}

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
    this.pool = new WorkerPool(config.path, maxConcurrent);
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
      for (const table of selectTables(tables.map((t) => String(t.name)), this.config)) {
        const info = await this.db
          .selectFrom(tableInfo(table))
          .select(['name', 'type', 'notnull', 'pk'])
          .execute();
        const columns: Column[] = info.map((c) => ({
          name: String(c.name),
          type: sqliteColumnType(String(c.type)),
          sourceType: String(c.type),
          nullable: Number(c.notnull) === 0 && Number(c.pk) === 0,
        }));
        const count = await this.db.selectFrom(sqlTable(table)).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirst();
        out.push(describeDataset(this.config, table, table, columns, count ? Number(count.n) : null));
      }
      return out;
    } catch (error) {
      if (error instanceof InsituError) throw error;
      throw new InsituError('INSITU_DATA_SOURCE_UNAVAILABLE', `source ${this.name}: cannot read ${this.config.path}: ${(error as Error).message}`, { cause: error });
    }
  }

  async *query(plan: QueryPlan, signal: AbortSignal): AsyncGenerator<DataValue[][]> {
    const converters = plan.output.map((o) => (o.type === 'text' || o.type === 'number' ? null : wireConverter(o.type)));
    for await (const reply of this.run(plan, signal, false)) if (reply.type === 'rows') yield convertRows(reply.rows, converters);
  }

  async *queryLines(plan: QueryPlan, signal: AbortSignal): AsyncGenerator<{ text: string; rows: number }> {
    for await (const reply of this.run(plan, signal, true)) if (reply.type === 'text') yield { text: reply.text, rows: reply.rows };
  }

  /** Run a plan in a worker; with `lines`, the worker also converts and serialises the rows. */
  private async *run(plan: QueryPlan, signal: AbortSignal, lines: boolean): AsyncGenerator<WorkerReply> {
    const compiled = this.compiler.compile(plan, { name: plan.dataset.location });
    const worker = await this.pool.acquire();
    let healthy = false;
    const replies: WorkerReply[] = [];
    let wake: (() => void) | undefined;
    const onMessage = (reply: WorkerReply) => {
      replies.push(reply);
      wake?.();
    };
    const onAbort = () => wake?.();
    worker.on('message', onMessage);
    signal.addEventListener('abort', onAbort);
    try {
      worker.postMessage({ type: 'query', sql: compiled.sql, params: compiled.parameters, batch: BATCH, ...(lines ? { types: plan.output.map((o) => o.type) } : {}) });
      for (;;) {
        while (replies.length === 0 && !signal.aborted) await new Promise<void>((resolve) => (wake = resolve));
        if (signal.aborted) return;
        const reply = replies.shift() as WorkerReply;
        if (reply.type === 'error') {
          healthy = true;
          throw new InsituError('INSITU_DATA_SOURCE_UNAVAILABLE', `source ${this.name}: ${reply.message}`);
        }
        // Ask for the next batch before handing this one on, so the worker reads while we send.
        if (!reply.done) worker.postMessage({ type: 'pull' });
        yield reply;
        if (reply.done) {
          healthy = true;
          return;
        }
      }
    } finally {
      worker.off('message', onMessage);
      signal.removeEventListener('abort', onAbort);
      this.pool.release(worker, healthy);
    }
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
