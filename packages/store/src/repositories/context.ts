import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';
import type { HotStatements } from '../hot-statements.js';
import type { Database } from '../schema.js';

/**
 * What every repository needs: the executor (pool or transaction), the dialect, the clock,
 * and the store's prepared statements for the gateway's hot writes (hot-statements.ts).
 */
export interface RepositoryContext {
  db: Kysely<Database>;
  dialect: Dialect;
  now: () => number;
  hot: HotStatements;
}

/** True when a driver error is a unique-key violation (SQLite or MariaDB). */
export function isUniqueViolation(error: unknown): boolean {
  const e = error as { code?: unknown; errno?: unknown } | null;
  return (
    e?.code === 'SQLITE_CONSTRAINT_UNIQUE' ||
    e?.code === 'SQLITE_CONSTRAINT_PRIMARYKEY' ||
    e?.code === 'ER_DUP_ENTRY' ||
    e?.errno === 1062
  );
}

/** Number of rows an UPDATE or DELETE changed, for both drivers. */
export function affected(result: { numUpdatedRows?: bigint; numDeletedRows?: bigint }): number {
  return Number(result.numUpdatedRows ?? result.numDeletedRows ?? 0n);
}

/** Rows per multi-row INSERT of {@link insertRows}: under SQLite's oldest limit of 999 bound values for 29 columns. */
export const INSERT_CHUNK_ROWS = 32;

/**
 * Insert rows given as one flat list of values (`columns.length` per row, in column order)
 * through the store's prepared statements (hot-statements.ts), `suffix` (an upsert clause
 * of fixed text) after each VALUES list. Full chunks of {@link INSERT_CHUNK_ROWS} rows share
 * one statement shape; the rest go one row at a time on SQLite (where a prepared row costs
 * a few microseconds) and as one statement on MySQL (one round trip). So a batch of any
 * size stays under the bound-value limits and uses a handful of shapes. Call inside a
 * transaction.
 */
export async function insertRows(
  ctx: RepositoryContext,
  table: string,
  columns: readonly string[],
  values: readonly unknown[],
  suffix: { name: string; text: string } = { name: '', text: '' },
): Promise<void> {
  const { hot, db } = ctx;
  const width = columns.length;
  const rows = values.length / width;
  const shape = (count: number) =>
    hot.text(`insert ${table} ${count}${suffix.name}`, () => {
      const row = `(${columns.map(() => '?').join(', ')})`;
      const list = columns.map((c) => hot.quote(c)).join(', ');
      return `INSERT INTO ${hot.quote(table)} (${list}) VALUES ${Array.from({ length: count }, () => row).join(', ')}${suffix.text}`;
    });
  let done = 0;
  for (; done + INSERT_CHUNK_ROWS <= rows; done += INSERT_CHUNK_ROWS)
    await hot.run(db, shape(INSERT_CHUNK_ROWS), values.slice(done * width, (done + INSERT_CHUNK_ROWS) * width));
  if (done === rows) return;
  if (ctx.dialect === 'mysql') {
    await hot.run(db, shape(rows - done), values.slice(done * width));
    return;
  }
  for (; done < rows; done += 1) await hot.run(db, shape(1), values.slice(done * width, (done + 1) * width));
}
