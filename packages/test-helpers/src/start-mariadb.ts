import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { waitFor } from '@insitu/core';
import { trackDir, untrackDir } from './cleanup-registry.js';
import { freePort } from './free-port.js';
import { ManagedProcess } from './managed-process.js';
import { ManagedServer } from './managed-server.js';
import { mariaDbTemplate } from './mariadb-template.js';
import { parseBatchRows, sqlIdentifier, sqlString } from './mariadb-sql.js';
import { findCommand, requireCommand } from './require-command.js';
import { runChecked } from './run-command.js';
import { makeTempDir, removeDir } from './temp-dir.js';

/** Options for {@link startMariaDb}. */
export interface MariaDbOptions {
  /** `server_id`; default 1. */
  serverId?: number;
  /** Database created at start and used by {@link MariaDbInstance.query}; default `insitu_test`. */
  database?: string;
  /** `bind-address` and the returned `host`; default `127.0.0.1`. */
  bindAddress?: string;
  /** TCP port; default a free port. */
  port?: number;
  /**
   * More `[mariadbd]` options, overriding ours. `true` writes a bare flag
   * (`skip-slave-start`), `false` removes one of our defaults, anything else `key=value`.
   */
  extraConfig?: Record<string, string | number | boolean>;
  /** Start with `read_only=ON`. */
  readOnly?: boolean;
  /** Run mariadbd inside `ip netns exec NAME` (the namespace must exist; needs root). */
  netns?: string;
  /** Password of `root` for TCP and socket logins; default random. */
  rootPassword?: string;
  /** How long to wait for the server to answer a query; default 30 s. */
  startTimeoutMs?: number;
}

/** A private MariaDB server started by {@link startMariaDb}. */
export interface MariaDbInstance {
  /** Address clients connect to (the bind address, or loopback for a wildcard bind). */
  readonly host: string;
  readonly port: number;
  /** Unix socket path. */
  readonly socket: string;
  readonly user: 'root';
  readonly password: string;
  readonly database: string;
  /** `mysql://root:PASSWORD@HOST:PORT/DATABASE` */
  readonly url: string;
  readonly serverId: number;
  readonly dataDir: string;
  /** The server's `--defaults-file`. */
  readonly configFile: string;
  /** The server's error log. */
  readonly errorLog: string;
  /** PID of mariadbd, `undefined` while it is not running. */
  readonly pid: number | undefined;
  readonly running: boolean;
  /**
   * Run SQL through the `mariadb` CLI (`--batch --skip-column-names`) over the socket, in
   * `database`; returns stdout. For test setup and checks only, never for code under test.
   */
  query(sql: string): Promise<string>;
  /** Like {@link MariaDbInstance.query} but keeps column names: one record per row (NULL reads as 'NULL'). */
  queryRows(sql: string): Promise<Array<Record<string, string>>>;
  /** Graceful shutdown, wait for the exit, then delete the data. The instance cannot be started again. */
  stop(): Promise<void>;
  /**
   * Send `signal` (default SIGKILL) without any cleanup; resolves when mariadbd has exited
   * (for SIGSTOP/SIGCONT, once sent). The data stays: {@link MariaDbInstance.start} restarts it.
   */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Start again on the same datadir and port after {@link MariaDbInstance.kill}; resolves when it answers queries. */
  start(): Promise<void>;
}

/** Option names that MariaDB treats as equal (`log-error` = `log_error`). */
function optionKey(name: string): string {
  if (!/^[A-Za-z0-9_-]+$/.test(name)) throw new Error(`not a MariaDB option name: ${JSON.stringify(name)}`);
  return name.replace(/-/g, '_');
}

function optionValue(value: string | number): string {
  const text = String(value);
  if (/[\n\r]/.test(text)) throw new Error(`MariaDB option values cannot contain line breaks: ${JSON.stringify(text)}`);
  return text;
}

/** Passwords go into an option file and a URL; keep to characters that need no quoting there. */
function checkPassword(password: string): string {
  if (!/^[A-Za-z0-9_.~!@%^*+=,:-]{1,80}$/.test(password)) {
    throw new Error('rootPassword may only contain letters, digits and _.~!@%^*+=,:- (1 to 80 characters)');
  }
  return password;
}

function renderOptions(group: string, options: ReadonlyMap<string, string | true>): string {
  const lines = [`[${group}]`];
  for (const [key, value] of options) lines.push(value === true ? key : `${key}=${value}`);
  return `${lines.join('\n')}\n`;
}

function urlHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

interface MariaDbPaths {
  dir: string;
  dataDir: string;
  configFile: string;
  clientConfigFile: string;
  socket: string;
  errorLog: string;
}

class MariaDbServer extends ManagedServer implements MariaDbInstance {
  readonly host: string;
  readonly port: number;
  readonly socket: string;
  readonly user = 'root' as const;
  readonly password: string;
  readonly database: string;
  readonly url: string;
  readonly serverId: number;
  readonly dataDir: string;
  readonly configFile: string;
  readonly errorLog: string;
  readonly #paths: MariaDbPaths;
  readonly #client: string;
  readonly #startTimeoutMs: number;

  constructor(init: {
    host: string;
    port: number;
    password: string;
    database: string;
    serverId: number;
    paths: MariaDbPaths;
    process: ManagedProcess;
    client: string;
    startTimeoutMs: number;
  }) {
    super(init.paths.dir, { signal: 'SIGTERM', graceMs: 30_000, exitWaitMs: 120_000 });
    this.host = init.host;
    this.port = init.port;
    this.password = init.password;
    this.database = init.database;
    this.serverId = init.serverId;
    this.#paths = init.paths;
    this.socket = init.paths.socket;
    this.dataDir = init.paths.dataDir;
    this.configFile = init.paths.configFile;
    this.errorLog = init.paths.errorLog;
    this.attach(init.process);
    this.#client = init.client;
    this.#startTimeoutMs = init.startTimeoutMs;
    this.url = `mysql://root:${encodeURIComponent(init.password)}@${urlHost(init.host)}:${init.port}/${init.database}`;
  }

  async query(sql: string): Promise<string> {
    return this.#run(sql, { columnNames: false, inDatabase: true });
  }

  async queryRows(sql: string): Promise<Array<Record<string, string>>> {
    return parseBatchRows(await this.#run(sql, { columnNames: true, inDatabase: true }));
  }

  async #run(sql: string, how: { columnNames: boolean; inDatabase: boolean }): Promise<string> {
    return runChecked(
      this.#client,
      [
        // Must come first; it also keeps ~/.my.cnf and /etc/mysql out.
        `--defaults-file=${this.#paths.clientConfigFile}`,
        '--batch',
        ...(how.columnNames ? [] : ['--skip-column-names']),
        ...(how.inDatabase ? [`--database=${this.database}`] : []),
        '--execute',
        sql,
      ],
      { timeoutMs: 60_000 },
    );
  }

  async start(): Promise<void> {
    if (this.stopped)
      throw new Error(`MariaDB ${this.host}:${this.port} was stopped and its data deleted; start a new one`);
    if (this.process.running) throw new Error(`MariaDB ${this.host}:${this.port} is already running`);
    this.process.start();
    try {
      await waitFor(
        async () => {
          await this.#run('SELECT 1', { columnNames: false, inDatabase: false });
          return true;
        },
        {
          timeoutMs: this.#startTimeoutMs,
          intervalMs: 25,
          what: `MariaDB on ${this.host}:${this.port} to answer a query (log: ${this.errorLog})`,
          signal: this.process.exitSignal,
        },
      );
    } catch (error) {
      await this.process.kill();
      throw error;
    }
  }

  /** First start only: passwords, the `root@'%'` account and the database, kept out of the binlog. */
  async initialize(): Promise<void> {
    const hosts = await this.#run("SELECT Host FROM mysql.user WHERE User = 'root' AND Host <> 'localhost'", {
      columnNames: false,
      inDatabase: false,
    });
    const extraRoots = hosts
      .split('\n')
      .filter((host) => host.length > 0)
      .map((host) => `'root'@${sqlString(host)}`);
    const password = sqlString(this.password);
    await this.#run(
      [
        // Replicas replay the primary's binlog from the start: setup must not be in it.
        'SET SESSION sql_log_bin = 0',
        // root@'%' replaces root@127.0.0.1/::1/hostname so that TCP logins from any
        // address (other network namespaces too) use one account and one password.
        ...(extraRoots.length > 0 ? [`DROP USER ${extraRoots.join(', ')}`] : []),
        `CREATE USER 'root'@'%' IDENTIFIED BY ${password}`,
        "GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION",
        `ALTER USER 'root'@'localhost' IDENTIFIED BY ${password}`,
        `CREATE DATABASE IF NOT EXISTS ${sqlIdentifier(this.database)}`,
      ].join(';\n'),
      { columnNames: false, inDatabase: false },
    );
    await writeClientConfig(this.#paths, this.password);
  }
}

async function writeClientConfig(paths: MariaDbPaths, password: string | undefined): Promise<void> {
  const options = new Map<string, string | true>([
    ['socket', paths.socket],
    ['protocol', 'SOCKET'],
    ['user', 'root'],
  ]);
  if (password !== undefined) options.set('password', password);
  await writeFile(paths.clientConfigFile, renderOptions('client', options), { mode: 0o600 });
}

/**
 * Start a private MariaDB server: a copy of a once-per-process template datadir in a
 * fresh temp dir, on a free loopback port, with binlog and GTID settings ready for
 * replication. `root` has a random password for TCP; a database is created.
 *
 * @example
 * const db = await startMariaDb();
 * await db.query('CREATE TABLE t (id INT PRIMARY KEY)');
 * // connect the code under test to db.url
 * await db.stop();
 */
export async function startMariaDb(options: MariaDbOptions = {}): Promise<MariaDbInstance> {
  const mariadbd = await requireCommand('mariadbd', 'mariadb-server');
  const client = await requireCommand('mariadb', 'mariadb-client');
  const ip = options.netns === undefined ? undefined : await requireCommand('ip', 'iproute2');
  const setpriv = await findCommand('setpriv');
  const database = options.database ?? 'insitu_test';
  sqlIdentifier(database);
  const password = checkPassword(options.rootPassword ?? randomBytes(16).toString('hex'));
  const serverId = options.serverId ?? 1;
  const bindAddress = options.bindAddress ?? '127.0.0.1';
  const host = bindAddress === '0.0.0.0' ? '127.0.0.1' : bindAddress === '::' ? '::1' : bindAddress;
  const port = options.port ?? (await freePort());
  const template = await mariaDbTemplate();

  const dir = await makeTempDir('insitu-mariadb-');
  trackDir(dir);
  const paths: MariaDbPaths = {
    dir,
    dataDir: join(dir, 'data'),
    configFile: join(dir, 'my.cnf'),
    clientConfigFile: join(dir, 'client.cnf'),
    socket: join(dir, 'mariadbd.sock'),
    errorLog: join(dir, 'error.log'),
  };
  let server: MariaDbServer | undefined;
  try {
    await runChecked('cp', ['-a', template, paths.dataDir]);
    await mkdir(join(dir, 'tmp'));
    const settings = new Map<string, string | true>([
      ['datadir', paths.dataDir],
      // A private tmpdir: servers of parallel test processes never share temporary tables.
      ['tmpdir', join(dir, 'tmp')],
      ['socket', paths.socket],
      ['pid_file', join(dir, 'mariadbd.pid')],
      ['log_error', paths.errorLog],
      ['port', String(port)],
      ['bind_address', bindAddress],
      ['server_id', String(serverId)],
      ['report_host', host],
      ['report_port', String(port)],
      ['log_bin', 'mariadb-bin'],
      ['relay_log', 'relay-bin'],
      ['log_slave_updates', 'ON'],
      ['gtid_strict_mode', 'ON'],
      ['binlog_format', 'ROW'],
      ['skip_name_resolve', true],
      ['innodb_buffer_pool_size', '64M'],
      ['innodb_log_file_size', '8M'],
      ['character_set_server', 'utf8mb4'],
      ['read_only', options.readOnly === true ? 'ON' : 'OFF'],
    ]);
    // mariadbd refuses to run as root unless told to.
    if (process.getuid?.() === 0) settings.set('user', 'root');
    for (const [name, value] of Object.entries(options.extraConfig ?? {})) {
      const key = optionKey(name);
      if (value === false) settings.delete(key);
      else settings.set(key, value === true ? true : optionValue(value));
    }
    await writeFile(paths.configFile, renderOptions('mariadbd', settings));
    await writeClientConfig(paths, undefined);

    const serverArgs = [`--defaults-file=${paths.configFile}`];
    const serverProcess = new ManagedProcess({
      name: `mariadbd ${host}:${port}`,
      command: ip ?? mariadbd,
      args:
        ip === undefined || options.netns === undefined
          ? serverArgs
          : ['netns', 'exec', options.netns, mariadbd, ...serverArgs],
      logFile: join(dir, 'stdout.log'),
      cwd: dir,
      ...(setpriv === undefined ? {} : { setpriv }),
    });
    server = new MariaDbServer({
      host,
      port,
      password,
      database,
      serverId,
      paths,
      process: serverProcess,
      client,
      startTimeoutMs: options.startTimeoutMs ?? 30_000,
    });
    await server.start();
    await server.initialize();
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
