import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, chown, realpath, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { waitFor } from '@insitu/core';
import { trackDir, untrackDir } from './cleanup-registry.js';
import { freePort } from './free-port.js';
import { ManagedProcess } from './managed-process.js';
import { ManagedServer } from './managed-server.js';
import { findCommand, requireCommand } from './require-command.js';
import { runChecked, runCommand } from './run-command.js';
import { makeTempDir, removeDir } from './temp-dir.js';

/** Options for {@link startPostgres}. */
export interface PostgresOptions {
  /** Database created at start; default `insitu_test`. */
  database?: string;
  /** Superuser created by initdb; default `insitu`. */
  user?: string;
  /** Its password (required for TCP logins, which use scram-sha-256); default random. */
  password?: string;
  /** Loopback address to listen on; default `127.0.0.1`. */
  host?: string;
  /** TCP port; default a free port. */
  port?: number;
  /** How long to wait for the server to answer a query; default 30 s. */
  startTimeoutMs?: number;
  /**
   * Run the postmaster inside `ip netns exec NAME` (the namespace must exist; needs root and
   * `setpriv`); give `host` as its address there and a `port` (default 5432).
   */
  netns?: string;
}

/** A private PostgreSQL server started by {@link startPostgres}. */
export interface PostgresInstance {
  readonly host: string;
  readonly port: number;
  /** Superuser; trusted on the Unix socket, password-checked over TCP. */
  readonly user: string;
  readonly password: string;
  readonly database: string;
  /** `postgres://USER:PASSWORD@HOST:PORT/DATABASE` */
  readonly url: string;
  /** Directory holding the Unix socket (`psql -h socketDir -p port`). */
  readonly socketDir: string;
  readonly dataDir: string;
  readonly logFile: string;
  /** PID of the postmaster, `undefined` while it is not running. */
  readonly pid: number | undefined;
  readonly running: boolean;
  /** Run SQL with `psql` over the socket (unaligned, tuples only); returns stdout. For test setup only. */
  query(sql: string): Promise<string>;
  /** Fast shutdown, wait for the exit, then delete the data. */
  stop(): Promise<void>;
  /**
   * Send `signal` (default SIGKILL, which also kills the postmaster's children) without
   * cleanup; resolves when it exited. {@link PostgresInstance.start} restarts it.
   */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Start again on the same data dir and port; resolves when it answers queries. */
  start(): Promise<void>;
}

interface Identity {
  uid: number;
  gid: number;
}

/**
 * PostgreSQL will not run as root. As root we run it as `nobody`, which exists on every
 * Debian system, owns nothing, and needs no account to be created on the machine.
 */
async function unprivilegedIdentity(): Promise<Identity | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  let entry: string;
  try {
    entry = await runChecked('getent', ['passwd', 'nobody']);
  } catch (error) {
    throw new Error(
      'PostgreSQL refuses to run as root, and the user `nobody` to run it as was not found ' +
        `(getent passwd nobody: ${error instanceof Error ? error.message : String(error)}). ` +
        'Run the tests as an ordinary user, or create `nobody`.',
      { cause: error },
    );
  }
  const [, , uid, gid] = entry.trim().split(':');
  const identity = { uid: Number(uid), gid: Number(gid) };
  if (!Number.isInteger(identity.uid) || !Number.isInteger(identity.gid)) {
    throw new Error(`PostgreSQL refuses to run as root, and \`getent passwd nobody\` gave no usable uid/gid: ${entry}`);
  }
  return identity;
}

function checkName(kind: string, name: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name))
    throw new Error(`${kind} must be a lower-case SQL name, got ${JSON.stringify(name)}`);
  return name;
}

class PostgresServer extends ManagedServer implements PostgresInstance {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly database: string;
  readonly url: string;
  readonly socketDir: string;
  readonly dataDir: string;
  readonly logFile: string;
  readonly #psql: string;
  readonly #startTimeoutMs: number;

  constructor(init: {
    host: string;
    port: number;
    user: string;
    password: string;
    database: string;
    dir: string;
    psql: string;
    postgres: string;
    identity: Identity | undefined;
    setpriv: string | undefined;
    startTimeoutMs: number;
    ip?: string | undefined;
    netns?: string | undefined;
  }) {
    // SIGINT is PostgreSQL's "fast" shutdown: it does not wait for clients to leave.
    super(init.dir, { signal: 'SIGINT', graceMs: 30_000, exitWaitMs: 120_000 });
    this.host = init.host;
    this.port = init.port;
    this.user = init.user;
    this.password = init.password;
    this.database = init.database;
    this.url = `postgres://${init.user}:${encodeURIComponent(init.password)}@${init.host}:${init.port}/${init.database}`;
    this.socketDir = init.dir;
    this.dataDir = join(init.dir, 'data');
    this.logFile = join(init.dir, 'postgres.log');
    this.#psql = init.psql;
    this.#startTimeoutMs = init.startTimeoutMs;
    const serverArgs = [
      '-D',
      this.dataDir,
      '-p',
      String(init.port),
      '-k',
      this.socketDir,
      '-c',
      `listen_addresses=${init.host}`,
      // Only an OS crash could lose data then; tests kill processes, not machines.
      '-c',
      'fsync=off',
    ];
    if (init.netns !== undefined && init.ip !== undefined) {
      // `ip netns exec` needs root: enter the namespace first, then drop to the identity.
      const drop =
        init.identity === undefined || init.setpriv === undefined
          ? []
          : [
              init.setpriv,
              '--reuid',
              String(init.identity.uid),
              '--regid',
              String(init.identity.gid),
              '--clear-groups',
              '--pdeathsig',
              'KILL',
              '--',
            ];
      this.attach(
        new ManagedProcess({
          name: `postgres ${init.host}:${init.port} in ${init.netns}`,
          command: init.ip,
          args: ['netns', 'exec', init.netns, ...drop, init.postgres, ...serverArgs],
          logFile: this.logFile,
          cwd: init.dir,
        }),
      );
    } else {
      this.attach(
        new ManagedProcess({
          name: `postgres ${init.host}:${init.port}`,
          command: init.postgres,
          args: serverArgs,
          logFile: this.logFile,
          cwd: init.dir,
          ...(init.identity ?? {}),
          ...(init.setpriv === undefined ? {} : { setpriv: init.setpriv }),
        }),
      );
    }
  }

  /** SQL goes in on stdin so psql variables (`:'name'`, `:"name"`) quote values for us. */
  async psql(sql: string, database: string, variables: Record<string, string> = {}): Promise<string> {
    return runChecked(
      this.#psql,
      [
        '--no-psqlrc',
        '--quiet',
        '--tuples-only',
        '--no-align',
        '--host',
        this.socketDir,
        '--port',
        String(this.port),
        '--username',
        this.user,
        '--dbname',
        database,
        '--set',
        'ON_ERROR_STOP=1',
        ...Object.entries(variables).flatMap(([name, value]) => ['--set', `${name}=${value}`]),
        '--file',
        '-',
      ],
      { input: sql, timeoutMs: 60_000 },
    );
  }

  async query(sql: string): Promise<string> {
    return this.psql(sql, this.database);
  }

  async start(): Promise<void> {
    if (this.stopped)
      throw new Error(`PostgreSQL ${this.host}:${this.port} was stopped and its data deleted; start a new one`);
    if (this.process.running) throw new Error(`PostgreSQL ${this.host}:${this.port} is already running`);
    this.process.start();
    try {
      await waitFor(async () => (await this.psql('SELECT 1', 'postgres')).trim() === '1', {
        timeoutMs: this.#startTimeoutMs,
        intervalMs: 25,
        what: `PostgreSQL on ${this.host}:${this.port} to answer a query (log: ${this.logFile})`,
        signal: this.process.exitSignal,
      });
    } catch (error) {
      await this.process.kill();
      throw error;
    }
  }
}

/**
 * Start a private PostgreSQL: initdb into a temp dir, listening on a free loopback port
 * and a socket in that dir, `fsync=off`. The superuser `user` is trusted on the socket
 * and needs `password` over TCP; `database` is created. As root, the server runs as
 * `nobody` because PostgreSQL refuses to run as root.
 *
 * @example
 * const pg = await startPostgres();
 * await pg.query('CREATE TABLE t (id int PRIMARY KEY)');
 * // connect the code under test to pg.url
 * await pg.stop();
 */
export async function startPostgres(options: PostgresOptions = {}): Promise<PostgresInstance> {
  // Through a symlink such as /usr/local/bin/initdb, the real bin dir has the matching postgres.
  const initdb = await realpath(await requireCommand('initdb', 'postgresql'));
  const postgresNextToInitdb = join(dirname(initdb), 'postgres');
  const postgres = await access(postgresNextToInitdb, constants.X_OK).then(
    () => postgresNextToInitdb,
    () => requireCommand('postgres', 'postgresql'),
  );
  const psql = await requireCommand('psql', 'postgresql-client');
  const setpriv = await findCommand('setpriv');
  const identity = await unprivilegedIdentity();
  const user = checkName('user', options.user ?? 'insitu');
  const database = checkName('database', options.database ?? 'insitu_test');
  const password = options.password ?? randomBytes(16).toString('hex');
  if (/[\n\r]/.test(password)) throw new Error('password cannot contain line breaks');
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? (options.netns === undefined ? await freePort(host) : 5432);
  const ip = options.netns === undefined ? undefined : await requireCommand('ip', 'iproute2');

  const dir = await makeTempDir('insitu-postgres-');
  trackDir(dir);
  let server: PostgresServer | undefined;
  try {
    const passwordFile = join(dir, 'password');
    await writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
    if (identity !== undefined) {
      await chown(dir, identity.uid, identity.gid);
      await chown(passwordFile, identity.uid, identity.gid);
    }
    const initResult = await runCommand(
      initdb,
      [
        '--pgdata',
        join(dir, 'data'),
        '--username',
        user,
        `--pwfile=${passwordFile}`,
        '--auth-local=trust',
        '--auth-host=scram-sha-256',
        '--encoding=UTF8',
        '--locale=C',
        '--no-sync',
      ],
      { cwd: dir, timeoutMs: 120_000, ...(identity ?? {}) },
    );
    if (initResult.code !== 0) {
      const asWhom =
        identity === undefined ? '' : ` (run as uid ${identity.uid}, because PostgreSQL refuses to run as root)`;
      throw new Error(`initdb failed${asWhom}: ${(initResult.stderr || initResult.stdout).trim().slice(-2000)}`);
    }
    server = new PostgresServer({
      host,
      port,
      user,
      password,
      database,
      dir,
      psql,
      postgres,
      identity,
      setpriv,
      ip,
      netns: options.netns,
      startTimeoutMs: options.startTimeoutMs ?? 30_000,
    });
    await server.start();
    await server.psql('CREATE DATABASE :"database"', 'postgres', { database });
    return server;
  } catch (error) {
    if (server === undefined) {
      await removeDir(dir);
      untrackDir(dir);
    } else {
      await server.stop();
    }
    throw error;
  }
}
