import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/**
 * What a provider lets leave of an approved version's jobs (core's `JobOutputPolicySchema`:
 * output lines shared or not, tighter result limits), set on its approval; null: nothing
 * beyond the agent's config, and no output lines.
 */
export function approvalJobPolicy(_dialect: Dialect) {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema.alterTable('approvals').addColumn('job_policy', 'text').execute();
    },
    async down(db: Kysely<unknown>): Promise<void> {
      await db.schema.alterTable('approvals').dropColumn('job_policy').execute();
    },
  };
}
