import { sql, type CreateTableBuilder, type Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/**
 * Jobs are metered like calls: `jobs.cpu_ms` keeps the CPU time the agent measured for a
 * job, and `job_usage_hourly` sums ended jobs per hour, consumer organisation, provider,
 * version and final state (runs, wall time, CPU time, result files and bytes), incremented
 * in the same transaction as the job's audit record.
 */
export function jobUsage(dialect: Dialect) {
  const mysql = dialect === 'mysql';
  const table = <T extends string>(builder: CreateTableBuilder<T, never>) =>
    mysql ? builder.modifyEnd(sql`ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`) : builder;
  const id = (n = 40) => sql.raw(`varchar(${n})`);
  const big = sql.raw('bigint');
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema.alterTable('jobs').addColumn('cpu_ms', big).execute();
      let builder = db.schema
        .createTable('job_usage_hourly')
        .addColumn('hour', big, (c) => c.notNull())
        .addColumn('org_id', id(), (c) => c.notNull())
        .addColumn('provider_id', id(), (c) => c.notNull())
        .addColumn('app_id', id(), (c) => c.notNull())
        .addColumn('version_id', id(), (c) => c.notNull())
        .addColumn('state', id(16), (c) => c.notNull());
      for (const column of ['runs', 'wall_ms', 'cpu_ms', 'cpu_runs', 'result_files', 'result_bytes', 'args_bytes'])
        builder = builder.addColumn(column, big, (c) => c.notNull().defaultTo(0));
      await table(
        builder.addPrimaryKeyConstraint('job_usage_hourly_pk', [
          'hour',
          'org_id',
          'provider_id',
          'version_id',
          'state',
        ]),
      ).execute();
      await db.schema.createIndex('job_usage_org').on('job_usage_hourly').columns(['org_id', 'hour']).execute();
      await db.schema
        .createIndex('job_usage_provider')
        .on('job_usage_hourly')
        .columns(['provider_id', 'hour'])
        .execute();
    },
    async down(db: Kysely<unknown>): Promise<void> {
      await db.schema.dropTable('job_usage_hourly').execute();
      await db.schema.alterTable('jobs').dropColumn('cpu_ms').execute();
    },
  };
}
