import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';
import type { Database } from '../schema.js';

/** What every repository needs: the executor (pool or transaction), the dialect and the clock. */
export interface RepositoryContext {
  db: Kysely<Database>;
  dialect: Dialect;
  now: () => number;
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
