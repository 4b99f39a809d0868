import { sql, type CreateTableBuilder, type Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/**
 * Compute jobs (an approved version run once at a provider) and their result files. A
 * result's bytes live in `job_results.data` on a single node, or in the configured
 * results directory of a cluster (then `data` is null and the file is named by the digest).
 * Number 005 is another change's.
 */
export function jobs(dialect: Dialect) {
  const mysql = dialect === 'mysql';
  const table = <T extends string>(builder: CreateTableBuilder<T, never>) =>
    mysql ? builder.modifyEnd(sql`ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`) : builder;
  const id = (n = 40) => sql.raw(`varchar(${n})`);
  const text = mysql ? sql.raw('mediumtext') : sql.raw('text');
  const big = sql.raw('bigint');
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await table(
        db.schema
          .createTable('jobs')
          .addColumn('id', id(), (c) => c.primaryKey())
          .addColumn('org_id', id(), (c) => c.notNull().references('orgs.id').onDelete('cascade'))
          .addColumn('app_id', id(), (c) => c.notNull().references('apps.id').onDelete('cascade'))
          .addColumn('version_id', id(), (c) => c.notNull().references('app_versions.id').onDelete('cascade'))
          .addColumn('provider_id', id(), (c) => c.notNull().references('providers.id').onDelete('cascade'))
          .addColumn('args', text, (c) => c.notNull())
          .addColumn('state', id(16), (c) => c.notNull())
          .addColumn('reason', text, (c) => c.notNull())
          .addColumn('agent_id', id())
          .addColumn('exit_code', 'integer')
          .addColumn('logs', text)
          .addColumn('wall_time_ms', big, (c) => c.notNull())
          .addColumn('created_by', id(), (c) => c.notNull())
          .addColumn('created_at', big, (c) => c.notNull())
          .addColumn('started_at', big)
          .addColumn('finished_at', big)
          .addColumn('expires_at', big)
          .addColumn('updated_at', big, (c) => c.notNull()),
      ).execute();
      await db.schema.createIndex('jobs_provider_state').on('jobs').columns(['provider_id', 'state']).execute();
      await db.schema.createIndex('jobs_org_state').on('jobs').columns(['org_id', 'state']).execute();
      await db.schema.createIndex('jobs_expires').on('jobs').columns(['expires_at']).execute();
      await table(
        db.schema
          .createTable('job_results')
          .addColumn('job_id', id(), (c) => c.notNull().references('jobs.id').onDelete('cascade'))
          .addColumn('name', id(128), (c) => c.notNull())
          .addColumn('size', big, (c) => c.notNull())
          .addColumn('digest', id(64), (c) => c.notNull())
          .addColumn('data', mysql ? sql.raw('longblob') : 'blob')
          .addColumn('created_at', big, (c) => c.notNull())
          .addPrimaryKeyConstraint('job_results_pk', ['job_id', 'name']),
      ).execute();
    },
  };
}
