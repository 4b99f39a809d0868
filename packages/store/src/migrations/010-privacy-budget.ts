import { sql, type CreateTableBuilder, type Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/**
 * The privacy budget of noised answers, kept by the platform for all agents of a provider
 * together: epsilon spent per provider, budget key (a deployment, or a job version's
 * digest) and dataset. Each agent charges here before it answers, so two agents of one
 * provider draw on one budget instead of one each.
 */
export function privacyBudget(dialect: Dialect) {
  const mysql = dialect === 'mysql';
  const table = <T extends string>(builder: CreateTableBuilder<T, never>) =>
    mysql ? builder.modifyEnd(sql`ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`) : builder;
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await table(
        db.schema
          .createTable('privacy_budget')
          .addColumn('provider_id', sql.raw('varchar(40)'), (c) => c.notNull())
          .addColumn('budget_key', sql.raw('varchar(200)'), (c) => c.notNull())
          .addColumn('dataset', sql.raw('varchar(128)'), (c) => c.notNull())
          .addColumn('spent', 'double precision', (c) => c.notNull())
          .addColumn('updated_at', sql.raw('bigint'), (c) => c.notNull())
          .addPrimaryKeyConstraint('privacy_budget_pk', ['provider_id', 'budget_key', 'dataset']),
      ).execute();
    },
    async down(db: Kysely<unknown>): Promise<void> {
      await db.schema.dropTable('privacy_budget').execute();
    },
  };
}
