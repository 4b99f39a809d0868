import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { trackDir } from './cleanup-registry.js';
import { startMariaDb, type MariaDbInstance } from './start-mariadb.js';
import { makeTempDir, removeDir } from './temp-dir.js';

/** Connection settings of a fresh, empty database (the shape of `@insitu/store`'s StoreConfig). */
export type DatabaseTargetConfig =
  | { kind: 'sqlite'; path: string }
  | { kind: 'mysql'; host: string; port: number; user: string; password: string; database: string };

/** One engine the platform database runs on; `create()` gives a fresh empty database. */
export interface DatabaseTarget {
  readonly dialect: 'sqlite' | 'mysql';
  create(): Promise<{ config: DatabaseTargetConfig; drop(): Promise<void> }>;
}

// One private MariaDB per test process, started on first use, killed and deleted when
// the process exits (cleanup registry); each test gets its own database inside it.
let shared: Promise<MariaDbInstance> | undefined;

function sharedMariaDb(): Promise<MariaDbInstance> {
  shared ??= startMariaDb({ database: 'insitu_shared' });
  return shared;
}

const sqliteTarget: DatabaseTarget = {
  dialect: 'sqlite',
  async create() {
    const dir = await makeTempDir('insitu-sqlite-');
    trackDir(dir);
    return { config: { kind: 'sqlite', path: join(dir, 'platform.db') }, drop: () => removeDir(dir) };
  },
};

const mysqlTarget: DatabaseTarget = {
  dialect: 'mysql',
  async create() {
    const server = await sharedMariaDb();
    const database = `t_${randomBytes(6).toString('hex')}`;
    await server.query(`CREATE DATABASE ${database} CHARACTER SET utf8mb4`);
    return {
      config: {
        kind: 'mysql',
        host: server.host,
        port: server.port,
        user: server.user,
        password: server.password,
        database,
      },
      drop: async () => {
        await server.query(`DROP DATABASE IF EXISTS ${database}`);
      },
    };
  },
};

/**
 * The engines every store and API test runs on: SQLite (a file in a temp dir) and
 * MariaDB (a private server started by this process). `INSITU_TEST_MARIADB=0` drops
 * MariaDB for a quick local run; CI runs both.
 *
 * @example
 * for (const target of databaseTargets()) describe(target.dialect, () => { ... target.create() ... });
 */
export function databaseTargets(env: NodeJS.ProcessEnv = process.env): DatabaseTarget[] {
  return env.INSITU_TEST_MARIADB === '0' ? [sqliteTarget] : [sqliteTarget, mysqlTarget];
}

/** Stop the shared MariaDB of this process now (optional: process exit does it too). */
export async function stopSharedDatabases(): Promise<void> {
  const server = shared;
  shared = undefined;
  if (server) await (await server).stop();
}
