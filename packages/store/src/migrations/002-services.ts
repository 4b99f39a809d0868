import { sql, type CreateTableBuilder, type Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/**
 * Applications and their versions, bundles (content-addressed, in the database),
 * approvals, deployments with per-agent status, services and access grants, API keys,
 * hourly usage, the hash-chained audit log and the event log.
 */
export function services(dialect: Dialect) {
  const mysql = dialect === 'mysql';
  const table = <T extends string>(builder: CreateTableBuilder<T, never>) =>
    mysql ? builder.modifyEnd(sql`ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`) : builder;
  const id = (n = 40) => sql.raw(`varchar(${n})`);
  const text = mysql ? sql.raw('mediumtext') : sql.raw('text');
  const big = sql.raw('bigint');
  const seq = (b: CreateTableBuilder<string, never>) =>
    b.addColumn('seq', mysql ? sql.raw('bigint') : 'integer', (c) =>
      mysql ? c.primaryKey().autoIncrement() : c.primaryKey(),
    );

  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await table(
        db.schema
          .createTable('apps')
          .addColumn('id', id(), (c) => c.primaryKey())
          .addColumn('org_id', id(), (c) => c.notNull().references('orgs.id').onDelete('cascade'))
          .addColumn('name', id(64), (c) => c.notNull())
          .addColumn('description', text, (c) => c.notNull())
          .addColumn('created_by', id(), (c) => c.notNull())
          .addColumn('created_at', big, (c) => c.notNull())
          .addColumn('updated_at', big, (c) => c.notNull())
          .addUniqueConstraint('apps_org_name', ['org_id', 'name']),
      ).execute();

      await table(
        db.schema
          .createTable('app_versions')
          .addColumn('id', id(), (c) => c.primaryKey())
          .addColumn('app_id', id(), (c) => c.notNull().references('apps.id').onDelete('cascade'))
          .addColumn('version', id(128), (c) => c.notNull())
          .addColumn('major', 'integer', (c) => c.notNull())
          .addColumn('digest', id(64), (c) => c.notNull())
          .addColumn('size', big, (c) => c.notNull())
          .addColumn('manifest', text, (c) => c.notNull())
          .addColumn('files', text, (c) => c.notNull())
          .addColumn('state', id(16), (c) => c.notNull())
          .addColumn('submitted_by', id(), (c) => c.notNull())
          .addColumn('created_at', big, (c) => c.notNull())
          .addUniqueConstraint('app_versions_app_version', ['app_id', 'version']),
      ).execute();

      // Bundles in the database, in chunks: every platform node can serve every bundle,
      // and they are replicated and backed up with the rest of the platform's state.
      await table(
        db.schema
          .createTable('blob_chunks')
          .addColumn('digest', id(64), (c) => c.notNull())
          .addColumn('chunk', 'integer', (c) => c.notNull())
          .addColumn('data', mysql ? sql.raw('longblob') : 'blob', (c) => c.notNull())
          .addPrimaryKeyConstraint('blob_chunks_pk', ['digest', 'chunk']),
      ).execute();
      await table(
        db.schema
          .createTable('blobs')
          .addColumn('digest', id(64), (c) => c.primaryKey())
          .addColumn('size', big, (c) => c.notNull())
          .addColumn('chunks', 'integer', (c) => c.notNull())
          .addColumn('created_at', big, (c) => c.notNull()),
      ).execute();

      await table(
        db.schema
          .createTable('approvals')
          .addColumn('id', id(), (c) => c.primaryKey())
          .addColumn('version_id', id(), (c) => c.notNull().references('app_versions.id').onDelete('cascade'))
          .addColumn('provider_id', id(), (c) => c.notNull().references('providers.id').onDelete('cascade'))
          .addColumn('digest', id(64), (c) => c.notNull())
          .addColumn('state', id(16), (c) => c.notNull())
          .addColumn('reason', text, (c) => c.notNull())
          .addColumn('decided_by', id())
          .addColumn('decided_at', big)
          .addColumn('created_at', big, (c) => c.notNull())
          .addUniqueConstraint('approvals_version_provider', ['version_id', 'provider_id']),
      ).execute();
      await db.schema.createIndex('approvals_provider').on('approvals').columns(['provider_id', 'state']).execute();

      await table(
        db.schema
          .createTable('deployments')
          .addColumn('id', id(), (c) => c.primaryKey())
          .addColumn('app_id', id(), (c) => c.notNull().references('apps.id').onDelete('cascade'))
          .addColumn('version_id', id(), (c) => c.notNull().references('app_versions.id').onDelete('cascade'))
          .addColumn('provider_id', id(), (c) => c.notNull().references('providers.id').onDelete('cascade'))
          .addColumn('replicas', 'integer', (c) => c.notNull())
          .addColumn('state', id(16), (c) => c.notNull())
          .addColumn('created_by', id(), (c) => c.notNull())
          .addColumn('created_at', big, (c) => c.notNull())
          .addColumn('updated_at', big, (c) => c.notNull()),
      ).execute();
      await db.schema.createIndex('deployments_provider').on('deployments').columns(['provider_id', 'state']).execute();
      await db.schema.createIndex('deployments_app').on('deployments').columns(['app_id', 'state']).execute();

      await table(
        db.schema
          .createTable('deployment_agents')
          .addColumn('deployment_id', id(), (c) => c.notNull().references('deployments.id').onDelete('cascade'))
          .addColumn('agent_id', id(), (c) => c.notNull().references('agents.id').onDelete('cascade'))
          .addColumn('state', id(16), (c) => c.notNull())
          .addColumn('reason', text, (c) => c.notNull())
          .addColumn('ready', 'integer', (c) => c.notNull())
          .addColumn('desired', 'integer', (c) => c.notNull())
          .addColumn('updated_at', big, (c) => c.notNull())
          .addPrimaryKeyConstraint('deployment_agents_pk', ['deployment_id', 'agent_id']),
      ).execute();

      await table(
        db.schema
          .createTable('services')
          .addColumn('id', id(), (c) => c.primaryKey())
          .addColumn('name', id(64), (c) => c.notNull().unique())
          .addColumn('org_id', id(), (c) => c.notNull().references('orgs.id').onDelete('cascade'))
          .addColumn('app_id', id(), (c) => c.notNull().references('apps.id').onDelete('cascade'))
          .addColumn('description', text, (c) => c.notNull())
          .addColumn('access', id(16), (c) => c.notNull())
          .addColumn('rate_per_second', 'integer', (c) => c.notNull())
          .addColumn('burst', 'integer', (c) => c.notNull())
          .addColumn('daily_quota', 'integer', (c) => c.notNull())
          .addColumn('max_request_bytes', 'integer', (c) => c.notNull())
          .addColumn('max_response_bytes', big, (c) => c.notNull())
          .addColumn('timeout_ms', 'integer', (c) => c.notNull())
          .addColumn('created_at', big, (c) => c.notNull())
          .addColumn('updated_at', big, (c) => c.notNull()),
      ).execute();

      await table(
        db.schema
          .createTable('service_grants')
          .addColumn('service_id', id(), (c) => c.notNull().references('services.id').onDelete('cascade'))
          .addColumn('org_id', id(), (c) => c.notNull().references('orgs.id').onDelete('cascade'))
          .addColumn('created_at', big, (c) => c.notNull())
          .addPrimaryKeyConstraint('service_grants_pk', ['service_id', 'org_id']),
      ).execute();

      await table(
        db.schema
          .createTable('api_keys')
          .addColumn('id', id(), (c) => c.primaryKey())
          .addColumn('org_id', id(), (c) => c.notNull().references('orgs.id').onDelete('cascade'))
          .addColumn('user_id', id(), (c) => c.notNull().references('users.id').onDelete('cascade'))
          .addColumn('name', id(128), (c) => c.notNull())
          .addColumn('key_hash', id(64), (c) => c.notNull().unique())
          .addColumn('prefix', id(24), (c) => c.notNull())
          .addColumn('services', text, (c) => c.notNull())
          .addColumn('expires_at', big)
          .addColumn('revoked_at', big)
          .addColumn('created_at', big, (c) => c.notNull()),
      ).execute();
      await db.schema.createIndex('api_keys_org').on('api_keys').columns(['org_id']).execute();

      await table(
        db.schema
          .createTable('usage_hourly')
          .addColumn('hour', big, (c) => c.notNull())
          .addColumn('key_id', id(), (c) => c.notNull())
          .addColumn('service_id', id(), (c) => c.notNull())
          .addColumn('version', id(128), (c) => c.notNull())
          .addColumn('status_class', id(8), (c) => c.notNull())
          .addColumn('calls', big, (c) => c.notNull())
          .addColumn('bytes_in', big, (c) => c.notNull())
          .addColumn('bytes_out', big, (c) => c.notNull())
          .addColumn('duration_ms', big, (c) => c.notNull())
          .addPrimaryKeyConstraint('usage_hourly_pk', ['hour', 'key_id', 'service_id', 'version', 'status_class']),
      ).execute();
      await db.schema.createIndex('usage_hourly_service').on('usage_hourly').columns(['service_id', 'hour']).execute();
      await db.schema.createIndex('usage_hourly_key').on('usage_hourly').columns(['key_id', 'hour']).execute();

      await table(
        seq(db.schema.createTable('audit_log'))
          .addColumn('id', id(), (c) => c.notNull().unique())
          .addColumn('ts', big, (c) => c.notNull())
          .addColumn('request_id', id(), (c) => c.notNull())
          .addColumn('key_id', id(), (c) => c.notNull())
          .addColumn('caller_org_id', id(), (c) => c.notNull())
          .addColumn('service_id', id(), (c) => c.notNull())
          .addColumn('service_org_id', id(), (c) => c.notNull())
          .addColumn('service_name', id(64), (c) => c.notNull())
          .addColumn('version', id(128), (c) => c.notNull())
          .addColumn('provider_id', id(), (c) => c.notNull())
          .addColumn('agent_id', id(), (c) => c.notNull())
          .addColumn('method', id(16), (c) => c.notNull())
          .addColumn('status', 'integer', (c) => c.notNull())
          .addColumn('error_code', id(64), (c) => c.notNull())
          .addColumn('bytes_in', big, (c) => c.notNull())
          .addColumn('bytes_out', big, (c) => c.notNull())
          .addColumn('duration_ms', 'integer', (c) => c.notNull())
          .addColumn('prev_hash', id(64), (c) => c.notNull())
          .addColumn('hash', id(64), (c) => c.notNull()),
      ).execute();
      await db.schema.createIndex('audit_log_service').on('audit_log').columns(['service_org_id', 'seq']).execute();
      await db.schema.createIndex('audit_log_caller').on('audit_log').columns(['caller_org_id', 'seq']).execute();
      // The head of the chain: the last record's sequence number and hash, updated in the
      // same transaction, so deleting records at the end is detected too.
      await table(
        db.schema
          .createTable('audit_head')
          .addColumn('id', 'integer', (c) => c.primaryKey())
          .addColumn('seq', big, (c) => c.notNull())
          .addColumn('hash', id(64), (c) => c.notNull()),
      ).execute();

      await table(
        seq(db.schema.createTable('events'))
          .addColumn('id', id(), (c) => c.notNull().unique())
          .addColumn('ts', big, (c) => c.notNull())
          .addColumn('org_id', id())
          .addColumn('kind', id(64), (c) => c.notNull())
          .addColumn('subject', id(64), (c) => c.notNull())
          .addColumn('message', text, (c) => c.notNull())
          .addColumn('data', text, (c) => c.notNull()),
      ).execute();
      await db.schema.createIndex('events_org').on('events').columns(['org_id', 'seq']).execute();
    },
  };
}
