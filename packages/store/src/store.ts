import BetterSqlite3 from 'better-sqlite3';
import { Kysely, Migrator, MysqlDialect, SqliteDialect, sql } from 'kysely';
import type { Dialect } from './dialect.js';
import { mysql2 } from './mysql2.js';
import { FollowingPool, type PrimarySource } from './following-pool.js';
import { HotStatements } from './hot-statements.js';
import { migrationProvider } from './migrations/index.js';
import type { RepositoryContext } from './repositories/context.js';
import { AppRepository } from './repositories/app-repository.js';
import { AuditRepository } from './repositories/audit-repository.js';
import { BlobRepository } from './repositories/blob-repository.js';
import { DatasetRepository } from './repositories/dataset-repository.js';
import { DeploymentRepository } from './repositories/deployment-repository.js';
import { EventRepository } from './repositories/event-repository.js';
import { JobRepository } from './repositories/job-repository.js';
import { JobUsageRepository } from './repositories/job-usage-repository.js';
import { PrivacyBudgetRepository } from './repositories/privacy-budget-repository.js';
import { OrgRepository } from './repositories/org-repository.js';
import { ProviderRepository } from './repositories/provider-repository.js';
import { ServiceRepository } from './repositories/service-repository.js';
import { SessionRepository } from './repositories/session-repository.js';
import { UsageRepository } from './repositories/usage-repository.js';
import { UserRepository } from './repositories/user-repository.js';
import type { Database } from './schema.js';
import { databaseUnavailable, databaseUrlInvalid } from './errors.js';

/** Where the platform database lives. */
export type StoreConfig =
  | { kind: 'sqlite'; /** File path, or `:memory:` */ path: string }
  | {
      kind: 'mysql';
      host: string;
      port: number;
      user: string;
      password: string;
      database: string;
      poolSize?: number;
      /**
       * Follow the primary of a replicated cluster: connections go to `primary.current()`
       * (host and port above are the fallback until it knows one) and move on each change.
       */
      primary?: PrimarySource;
    };

/** Options for {@link openStore}. */
export interface OpenStoreOptions {
  /** Run pending migrations before returning (default true). */
  migrate?: boolean;
  /** Clock in epoch ms; tests move it to expire tokens. */
  now?: () => number;
}

/** The repositories over one executor: the pool, or a transaction. */
export class Repositories {
  readonly orgs: OrgRepository;
  readonly users: UserRepository;
  readonly sessions: SessionRepository;
  readonly providers: ProviderRepository;
  readonly datasets: DatasetRepository;
  readonly apps: AppRepository;
  readonly blobs: BlobRepository;
  readonly deployments: DeploymentRepository;
  readonly services: ServiceRepository;
  readonly usage: UsageRepository;
  readonly audit: AuditRepository;
  readonly events: EventRepository;
  readonly jobs: JobRepository;
  readonly jobUsage: JobUsageRepository;
  readonly privacyBudget: PrivacyBudgetRepository;

  constructor(readonly ctx: RepositoryContext) {
    this.orgs = new OrgRepository(ctx);
    this.users = new UserRepository(ctx);
    this.sessions = new SessionRepository(ctx);
    this.providers = new ProviderRepository(ctx);
    this.datasets = new DatasetRepository(ctx);
    this.apps = new AppRepository(ctx);
    this.blobs = new BlobRepository(ctx);
    this.deployments = new DeploymentRepository(ctx);
    this.services = new ServiceRepository(ctx);
    this.usage = new UsageRepository(ctx);
    this.audit = new AuditRepository(ctx);
    this.events = new EventRepository(ctx);
    this.jobs = new JobRepository(ctx);
    this.jobUsage = new JobUsageRepository(ctx);
    this.privacyBudget = new PrivacyBudgetRepository(ctx);
  }

  get dialect(): Dialect {
    return this.ctx.dialect;
  }
}

/**
 * The platform database: Kysely over SQLite (`better-sqlite3`, the embedded default)
 * or MySQL/MariaDB (`mysql2`), one schema and one set of migrations for both.
 *
 * @example
 * const store = await openStore({ kind: 'sqlite', path: '.insitu/platform.db' });
 * const org = await store.orgs.getByName('acme');
 * await store.transaction(async (tx) => { await tx.datasets.upsert(...); });
 * await store.close();
 */
export class Store extends Repositories {
  constructor(
    readonly db: Kysely<Database>,
    dialect: Dialect,
    now: () => number,
    /** The SQLite connection under `db`, for statements prepared once (hot-statements.ts). */
    sqlite?: BetterSqlite3.Database,
  ) {
    super({ db, dialect, now, hot: new HotStatements(dialect, sqlite) });
  }

  /** Run `fn` in one transaction; it commits when `fn` resolves and rolls back when it throws. */
  transaction<T>(fn: (tx: Repositories) => Promise<T>): Promise<T> {
    return this.db.transaction().execute((trx) => fn(new Repositories({ ...this.ctx, db: trx })));
  }

  /**
   * Apply every pending migration (or those up to and including `to`, which tests of a
   * migration use to build the state before it). Safe to call from several processes
   * (the migrator locks).
   */
  async migrate(options: { to?: string } = {}): Promise<string[]> {
    const migrator = new Migrator({ db: this.db, provider: migrationProvider(this.dialect) });
    const { error, results } =
      options.to === undefined ? await migrator.migrateToLatest() : await migrator.migrateTo(options.to);
    if (error) {
      throw databaseUnavailable(`database migration failed: ${(error as Error).message}`, error);
    }
    return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
  }

  /** Resolves when the database answers a query; throws `INSITU_DATABASE_UNAVAILABLE` otherwise. */
  async ping(): Promise<void> {
    try {
      await sql`SELECT 1`.execute(this.db);
    } catch (error) {
      throw databaseUnavailable(`database unreachable: ${(error as Error).message}`, error);
    }
  }

  async close(): Promise<void> {
    await this.db.destroy();
  }
}

function sqliteDatabase(path: string): BetterSqlite3.Database {
  const database = new BetterSqlite3(path);
  database.pragma('journal_mode = WAL');
  database.pragma('synchronous = NORMAL');
  database.pragma('foreign_keys = ON');
  database.pragma('busy_timeout = 5000');
  return database;
}

/** Open (and by default migrate) the platform database. */
export async function openStore(config: StoreConfig, options: OpenStoreOptions = {}): Promise<Store> {
  const now = options.now ?? Date.now;
  let store: Store;
  if (config.kind === 'sqlite') {
    let database: BetterSqlite3.Database;
    try {
      database = sqliteDatabase(config.path);
    } catch (error) {
      throw databaseUnavailable(`cannot open SQLite database ${config.path}: ${(error as Error).message}`, error);
    }
    store = new Store(new Kysely<Database>({ dialect: new SqliteDialect({ database }) }), 'sqlite', now, database);
  } else {
    const poolOptions = {
      user: config.user,
      password: config.password,
      database: config.database,
      connectionLimit: config.poolSize ?? 10,
      charset: 'utf8mb4',
      timezone: 'Z',
      connectTimeout: 5000,
      enableKeepAlive: true,
    };
    const source = config.primary;
    const pool = source
      ? new FollowingPool(poolOptions, {
          current: () => source.current() ?? { host: config.host, port: config.port },
          onChange: (listener) => source.onChange(listener),
        })
      : mysql2().createPool({ host: config.host, port: config.port, ...poolOptions });
    store = new Store(new Kysely<Database>({ dialect: new MysqlDialect({ pool }) }), 'mysql', now);
  }
  try {
    await store.ping();
    if (options.migrate !== false) await store.migrate();
  } catch (error) {
    await store.close().catch(() => undefined);
    throw error;
  }
  return store;
}

/**
 * Parse `sqlite:PATH`, `sqlite::memory:` or `mysql://USER[:PASSWORD]@HOST[:PORT]/DATABASE`.
 * A password given separately wins over one in the URL.
 */
export function parseDatabaseUrl(url: string, password?: string): StoreConfig {
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '');
    if (path === '') throw databaseUrlInvalid('database url sqlite: needs a path, e.g. sqlite:./platform.db');
    return { kind: 'sqlite', path };
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw databaseUrlInvalid(
      `database url "${url.replace(/:[^:@/]*@/, ':***@')}" is not a URL; use sqlite:PATH or mysql://USER@HOST:PORT/DB`,
    );
  }
  if (parsed.protocol !== 'mysql:' && parsed.protocol !== 'mariadb:') {
    throw databaseUrlInvalid(`database url scheme ${parsed.protocol} is not supported; use sqlite: or mysql:`);
  }
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
  if (!parsed.hostname || !database || !parsed.username) {
    throw databaseUrlInvalid('a mysql database url needs a user, a host and a database: mysql://USER@HOST:PORT/DB');
  }
  return {
    kind: 'mysql',
    host: parsed.hostname,
    port: parsed.port ? Number(parsed.port) : 3306,
    user: decodeURIComponent(parsed.username),
    password: password ?? decodeURIComponent(parsed.password),
    database,
  };
}
