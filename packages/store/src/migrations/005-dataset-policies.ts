import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/**
 * Output policies of datasets (issue 18), as JSON text (core's `OutputPolicySchema`;
 * null = no restriction):
 * - `datasets.agent_policy`: what the provider's agent config says, written by the agent
 *   at every metadata sync; the agent enforces it whatever the platform says.
 * - `datasets.platform_policy`: what the provider's organisation set on the platform
 *   (`PUT /api/v1/datasets/{id}/policy`); pushed to the agents, which apply the stricter
 *   of the two. A metadata sync never touches it.
 */
export function datasetPolicies(dialect: Dialect) {
  const text = dialect === 'mysql' ? sql.raw('mediumtext') : sql.raw('text');
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema.alterTable('datasets').addColumn('agent_policy', text).execute();
      await db.schema.alterTable('datasets').addColumn('platform_policy', text).execute();
    },
  };
}
