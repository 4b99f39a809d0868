import type BetterSqlite3 from 'better-sqlite3';
import { CompiledQuery, type Kysely } from 'kysely';
import type { Dialect } from './dialect.js';
import type { Database } from './schema.js';

/**
 * The few statements the gateway runs on every metering and audit batch, without Kysely's
 * per-query work. Kysely builds and compiles a query tree each time, and its SQLite driver
 * prepares the SQL again each time; for a batch of a few hundred audit records that was
 * most of the server's SQLite time (issue 12). Here each statement shape is written once as
 * SQL text: on SQLite it is prepared once per shape and the prepared statement is reused
 * (better-sqlite3 is synchronous and the transaction holds Kysely's only connection, so
 * nothing else runs in between); on MySQL/MariaDB the cached text goes to the connection
 * as is. Only for statements built from fixed column lists: every value is a bound
 * parameter, never part of the text. Everything else keeps using Kysely.
 */
export class HotStatements {
  private readonly prepared = new Map<string, BetterSqlite3.Statement>();
  private readonly texts = new Map<string, string>();

  constructor(
    readonly dialect: Dialect,
    private readonly sqlite: BetterSqlite3.Database | undefined,
  ) {}

  /** Quote an identifier for the dialect (only our own fixed column and table names reach here). */
  quote(name: string): string {
    return this.dialect === 'mysql' ? `\`${name}\`` : `"${name}"`;
  }

  /** The SQL text of a shape, built once by `build` and kept under `key`. */
  text(key: string, build: () => string): string {
    let text = this.texts.get(key);
    if (text === undefined) {
      text = build();
      this.texts.set(key, text);
    }
    return text;
  }

  /** Number of SQLite statements prepared so far (one per shape; tests check that batches reuse them). */
  get preparedCount(): number {
    return this.prepared.size;
  }

  /**
   * Run a statement that returns no rows. `trx` must be a transaction: on SQLite the
   * prepared statement runs directly on the connection that transaction holds.
   */
  async run(trx: Kysely<Database>, text: string, params: readonly unknown[]): Promise<void> {
    if (this.sqlite) {
      assertTransaction(trx);
      this.statement(text).run(params);
      return;
    }
    await trx.executeQuery(CompiledQuery.raw(text, [...params]));
  }

  /** Run a query and return its rows (see {@link run} for `trx`). */
  async all<Row>(trx: Kysely<Database>, text: string, params: readonly unknown[]): Promise<Row[]> {
    if (this.sqlite) {
      assertTransaction(trx);
      return this.statement(text).all(params) as Row[];
    }
    return (await trx.executeQuery<Row>(CompiledQuery.raw(text, [...params]))).rows;
  }

  private statement(text: string): BetterSqlite3.Statement {
    let statement = this.prepared.get(text);
    if (!statement) {
      statement = (this.sqlite as BetterSqlite3.Database).prepare(text);
      this.prepared.set(text, statement);
    }
    return statement;
  }
}

function assertTransaction(trx: Kysely<Database>): void {
  // Outside a transaction the connection is not ours: another caller's transaction may be open on it.
  if (!trx.isTransaction) throw new Error('HotStatements: SQLite statements must run inside a transaction');
}
