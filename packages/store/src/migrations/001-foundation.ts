import { sql, type Kysely, type CreateTableBuilder } from 'kysely';
import type { Dialect } from '../dialect.js';

/**
 * Organisations, users, memberships, sessions, providers, enrolment tokens, agents and
 * the data catalog with its search index (FTS5 on SQLite, InnoDB FULLTEXT on MariaDB).
 */
export function foundation(dialect: Dialect) {
  const mysql = dialect === 'mysql';
  // MariaDB: binary collation so comparisons and ordering match SQLite's BINARY.
  const table = <T extends string>(builder: CreateTableBuilder<T, never>) =>
    mysql ? builder.modifyEnd(sql`ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`) : builder;
  const id = (n = 40) => sql.raw(`varchar(${n})`);
  const text = mysql ? sql.raw('mediumtext') : sql.raw('text');
  const time = sql.raw('bigint');

  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await table(
        db.schema
          .createTable('orgs')
          .addColumn('id', id(), (c) => c.primaryKey())
          .addColumn('name', id(64), (c) => c.notNull().unique())
          .addColumn('display_name', id(200), (c) => c.notNull())
          .addColumn('kind', id(16), (c) => c.notNull())
          .addColumn('status', id(16), (c) => c.notNull())
          .addColumn('created_at', time, (c) => c.notNull())
          .addColumn('updated_at', time, (c) => c.notNull()),
      ).execute();

      await table(
        db.schema
          .createTable('users')
          .addColumn('id', id(), (c) => c.primaryKey())
          .addColumn('email', id(254), (c) => c.notNull().unique())
          .addColumn('name', id(200), (c) => c.notNull())
          .addColumn('password_hash', id(255), (c) => c.notNull())
          .addColumn('status', id(16), (c) => c.notNull())
          .addColumn('created_at', time, (c) => c.notNull())
          .addColumn('updated_at', time, (c) => c.notNull()),
      ).execute();

      await table(
        db.schema
          .createTable('memberships')
          .addColumn('org_id', id(), (c) => c.notNull().references('orgs.id').onDelete('cascade'))
          .addColumn('user_id', id(), (c) => c.notNull().references('users.id').onDelete('cascade'))
          .addColumn('role', id(16), (c) => c.notNull())
          .addColumn('created_at', time, (c) => c.notNull())
          .addPrimaryKeyConstraint('memberships_pk', ['org_id', 'user_id', 'role']),
      ).execute();
      await db.schema.createIndex('memberships_user').on('memberships').columns(['user_id']).execute();

      await table(
        db.schema
          .createTable('sessions')
          .addColumn('id', id(), (c) => c.primaryKey())
          .addColumn('token_hash', id(64), (c) => c.notNull().unique())
          .addColumn('user_id', id(), (c) => c.notNull().references('users.id').onDelete('cascade'))
          .addColumn('created_at', time, (c) => c.notNull())
          .addColumn('expires_at', time, (c) => c.notNull())
          .addColumn('revoked_at', time),
      ).execute();
      await db.schema.createIndex('sessions_user').on('sessions').columns(['user_id']).execute();

      await table(
        db.schema
          .createTable('providers')
          .addColumn('id', id(), (c) => c.primaryKey())
          .addColumn('org_id', id(), (c) => c.notNull().references('orgs.id').onDelete('cascade'))
          .addColumn('name', id(64), (c) => c.notNull().unique())
          .addColumn('display_name', id(200), (c) => c.notNull())
          .addColumn('description', text, (c) => c.notNull())
          .addColumn('created_at', time, (c) => c.notNull())
          .addColumn('updated_at', time, (c) => c.notNull()),
      ).execute();
      await db.schema.createIndex('providers_org').on('providers').columns(['org_id']).execute();

      await table(
        db.schema
          .createTable('enrolment_tokens')
          .addColumn('id', id(), (c) => c.primaryKey())
          .addColumn('provider_id', id(), (c) => c.notNull().references('providers.id').onDelete('cascade'))
          .addColumn('token_hash', id(64), (c) => c.notNull().unique())
          .addColumn('note', id(200), (c) => c.notNull())
          .addColumn('created_by', id(), (c) => c.notNull())
          .addColumn('created_at', time, (c) => c.notNull())
          .addColumn('expires_at', time, (c) => c.notNull())
          .addColumn('used_at', time)
          .addColumn('agent_id', id())
          .addColumn('revoked_at', time),
      ).execute();
      await db.schema
        .createIndex('enrolment_tokens_provider')
        .on('enrolment_tokens')
        .columns(['provider_id'])
        .execute();

      await table(
        db.schema
          .createTable('agents')
          .addColumn('id', id(), (c) => c.primaryKey())
          .addColumn('provider_id', id(), (c) => c.notNull().references('providers.id').onDelete('cascade'))
          .addColumn('name', id(128), (c) => c.notNull())
          .addColumn('credential_hash', id(64), (c) => c.notNull().unique())
          .addColumn('hostname', id(255), (c) => c.notNull())
          .addColumn('version', id(64), (c) => c.notNull())
          .addColumn('created_at', time, (c) => c.notNull())
          .addColumn('last_seen_at', time)
          .addColumn('revoked_at', time),
      ).execute();
      await db.schema.createIndex('agents_provider').on('agents').columns(['provider_id']).execute();

      await table(
        db.schema
          .createTable('datasets')
          .addColumn('seq', mysql ? sql.raw('bigint') : 'integer', (c) =>
            mysql ? c.primaryKey().autoIncrement() : c.primaryKey(),
          )
          .addColumn('id', id(), (c) => c.notNull().unique())
          .addColumn('provider_id', id(), (c) => c.notNull().references('providers.id').onDelete('cascade'))
          // The provider's organisation, copied here (it never changes) so visibility filters need no join.
          .addColumn('org_id', id(), (c) => c.notNull())
          .addColumn('name', id(128), (c) => c.notNull())
          .addColumn('description', text, (c) => c.notNull())
          .addColumn('tags', text, (c) => c.notNull())
          .addColumn('source_kind', id(16), (c) => c.notNull())
          .addColumn('visibility', id(16), (c) => c.notNull())
          .addColumn('columns', text, (c) => c.notNull())
          .addColumn('row_count', sql.raw('bigint'))
          .addColumn('synced_at', time, (c) => c.notNull())
          .addColumn('created_at', time, (c) => c.notNull())
          .addColumn('updated_at', time, (c) => c.notNull())
          .addUniqueConstraint('datasets_provider_name', ['provider_id', 'name']),
      ).execute();
      await db.schema.createIndex('datasets_name').on('datasets').columns(['name', 'seq']).execute();
      await db.schema.createIndex('datasets_visibility').on('datasets').columns(['visibility', 'org_id']).execute();

      await table(
        db.schema
          .createTable('dataset_tags')
          .addColumn('seq', sql.raw('bigint'), (c) => c.notNull().references('datasets.seq').onDelete('cascade'))
          .addColumn('tag', id(48), (c) => c.notNull())
          .addPrimaryKeyConstraint('dataset_tags_pk', ['seq', 'tag']),
      ).execute();
      await db.schema.createIndex('dataset_tags_tag').on('dataset_tags').columns(['tag', 'seq']).execute();

      await table(
        db.schema
          .createTable('dataset_columns')
          .addColumn('seq', sql.raw('bigint'), (c) => c.notNull().references('datasets.seq').onDelete('cascade'))
          .addColumn('name_lc', id(128), (c) => c.notNull())
          .addPrimaryKeyConstraint('dataset_columns_pk', ['seq', 'name_lc']),
      ).execute();
      await db.schema.createIndex('dataset_columns_name').on('dataset_columns').columns(['name_lc', 'seq']).execute();

      if (mysql) {
        await sql`CREATE TABLE dataset_search (
          seq BIGINT NOT NULL PRIMARY KEY,
          name_norm VARCHAR(255) NOT NULL,
          name_doc TEXT NOT NULL,
          ntc_doc MEDIUMTEXT NOT NULL,
          doc MEDIUMTEXT NOT NULL,
          KEY dataset_search_name_norm (name_norm),
          FULLTEXT KEY dataset_search_name (name_doc),
          FULLTEXT KEY dataset_search_ntc (ntc_doc),
          FULLTEXT KEY dataset_search_doc (doc)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`.execute(db);
      } else {
        // `meta` holds hashed filter tokens (visibility, organisation, provider, tags, exact
        // column names) so a whole search, filters included, is one FTS5 query.
        await sql`CREATE VIRTUAL TABLE dataset_fts USING fts5(
          name, tags, columns, description, meta,
          tokenize = 'unicode61 remove_diacritics 2', prefix = '3'
        )`.execute(db);
        // The same without descriptions: the name and name/tags/columns tiers query it, so
        // words common in descriptions do not make those tiers scan long doclists.
        await sql`CREATE VIRTUAL TABLE dataset_fts_near USING fts5(
          name, tags, columns, meta,
          tokenize = 'unicode61 remove_diacritics 2', prefix = '3'
        )`.execute(db);
      }
    },
  };
}
