import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/**
 * `deployments.app_logs`: whether the application's developers may read its output
 * (`insitu app logs`). The provider owns the setting; a new deployment starts with it on
 * when the application's organisation is the provider's own, off otherwise. Deployments
 * made before this migration start off: nobody agreed to show their output.
 */
export function appLogs(_dialect: Dialect) {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .alterTable('deployments')
        .addColumn('app_logs', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
    },
  };
}
