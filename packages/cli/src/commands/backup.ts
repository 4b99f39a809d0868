import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { chmod, cp, mkdir, mkdtemp, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { InsituError, VERSION } from '@insitu/core';
import { loadServerConfig, storeConfigFor } from '@insitu/server';
import { parseDatabaseUrl, type StoreConfig } from '@insitu/store';
import { parseDocument } from 'yaml';
import { create as createTar, extract as extractTar, list as listTar } from 'tar';
import {
  configFileOf,
  dataDirOf,
  isInitialised,
  loadCliServerConfig,
  requireExistingDatabase,
  runningUrl,
  type DataDirOptions,
} from '../data-dir.js';
import { line, type CliIo } from '../io.js';

/** What a backup holds besides the files, so a restore knows what it reads. */
const MANIFEST = 'insitu-backup.json';
const DATABASE = 'platform.db';
/** A MariaDB/MySQL platform database, as the SQL `mariadb-dump --single-transaction` writes. */
const DUMP = 'platform.sql';
/** The audit anchor's files in the data dir (the defaults of `audit.anchorKeyFile` and `audit.anchorFile`). */
const ANCHOR_FILES = ['audit-anchor.key', 'audit-anchor.json'];

interface BackupManifest {
  format: 1;
  insituVersion: string;
  createdAt: string;
  database: 'sqlite' | 'mysql';
  files: string[];
}

type MysqlConfig = Extract<StoreConfig, { kind: 'mysql' }>;

/**
 * Credentials for the mariadb client tools in a mode-0600 option file (never on the command
 * line, where `ps` shows them). Must be the first option of the tool.
 */
async function clientOptionFile(dir: string, db: MysqlConfig): Promise<string> {
  const file = join(dir, '.client.cnf');
  const value = (v: string) => `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
  await writeFile(
    file,
    `[client]\nuser=${value(db.user)}\npassword=${value(db.password ?? '')}\nhost=${value(db.host)}\nport=${db.port}\nprotocol=TCP\n`,
    { mode: 0o600 },
  );
  return file;
}

/** Run a mariadb client tool; stdin/stdout from/to files when given. Rejects with its stderr on failure. */
async function runClient(
  command: string,
  args: string[],
  io: { stdinFile?: string; stdoutFile?: string },
): Promise<string> {
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const done = new Promise<number>((resolveExit, reject) => {
    child.on('error', (error: NodeJS.ErrnoException) =>
      reject(
        error.code === 'ENOENT'
          ? new InsituError('INSITU_USAGE', `${command} is not installed; it is needed for a MariaDB backup/restore`)
          : error,
      ),
    );
    child.on('close', (code) => resolveExit(code ?? 1));
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-4000)));
  let written: Promise<void> = Promise.resolve();
  if (io.stdoutFile) {
    const out = createWriteStream(io.stdoutFile, { mode: 0o600 });
    written = new Promise((resolveWrite, reject) => {
      out.on('finish', resolveWrite);
      out.on('error', reject);
    });
    child.stdout.pipe(out);
  } else child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  if (io.stdinFile)
    createReadStream(io.stdinFile)
      .on('error', (e) => child.stdin.destroy(e))
      .pipe(child.stdin);
  else child.stdin.end();
  const code = await done;
  await written;
  if (code !== 0)
    throw new InsituError('INSITU_DATABASE_UNAVAILABLE', `${command} failed (exit ${code}): ${stderr.trim()}`);
  return stdout;
}

/** The tables of the database the client options name. */
async function tablesOf(optionFile: string, db: MysqlConfig): Promise<string[]> {
  const out = await runClient(
    'mariadb',
    [
      `--defaults-extra-file=${optionFile}`,
      '--batch',
      '--skip-column-names',
      '-e',
      'SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()',
      db.database,
    ],
    {},
  );
  return out.split('\n').filter(Boolean);
}

/**
 * `insitu backup --to FILE`: the platform database (a consistent SQLite online backup, taken
 * while the platform runs), the config and `tls/` (the CA agents pin) as one gzip tar, mode 0600
 * (it holds the CA key and password hashes).
 */
export async function runBackup(options: DataDirOptions & { to: string; json?: boolean }, io: CliIo): Promise<void> {
  const dataDir = dataDirOf(options, io);
  const config = loadCliServerConfig(options, io, dataDir, {});
  const storeConfig = storeConfigFor(config, dataDir);
  requireExistingDatabase(storeConfig, dataDir);
  const target = resolve(io.cwd, options.to);
  const progress = options.json ? () => undefined : (text: string) => line(io.stderr, `… ${text}`);
  const staging = await mkdtemp(join(tmpdir(), 'insitu-backup-'));
  try {
    let files: string[];
    if (storeConfig.kind === 'sqlite') {
      progress(`copying the database ${storeConfig.path} (online backup)`);
      const source = new Database(storeConfig.path, { readonly: true, fileMustExist: true });
      try {
        await source.backup(join(staging, DATABASE));
      } finally {
        source.close();
      }
      files = [DATABASE];
    } else {
      const optionFile = await clientOptionFile(staging, storeConfig);
      const tables = await tablesOf(optionFile, storeConfig);
      if (tables.length === 0)
        throw new InsituError(
          'INSITU_NOT_INITIALISED',
          `the database ${storeConfig.database} on ${storeConfig.host}:${storeConfig.port} has no tables; nothing to back up`,
        );
      progress(
        `dumping ${tables.length} tables of ${storeConfig.database} on ${storeConfig.host}:${storeConfig.port} (mariadb-dump --single-transaction)`,
      );
      // One REPEATABLE READ snapshot (--single-transaction) while the platform writes; no table
      // locks and no tablespaces, so SELECT, SHOW VIEW and TRIGGER are the grants it needs.
      await runClient(
        'mariadb-dump',
        [
          `--defaults-extra-file=${optionFile}`,
          '--single-transaction',
          '--skip-lock-tables',
          '--no-tablespaces',
          '--hex-blob',
          '--triggers',
          '--skip-comments',
          storeConfig.database,
        ],
        { stdoutFile: join(staging, DUMP) },
      );
      await rm(optionFile);
      progress(`dumped ${(await stat(join(staging, DUMP))).size} bytes of SQL`);
      files = [DUMP];
    }
    const configFile = configFileOf(options, io, dataDir);
    const fromDataDir: string[] = [];
    if (existsSync(configFile)) {
      if (dirname(configFile) !== dataDir)
        throw new InsituError(
          'INSITU_USAGE',
          `the config ${configFile} is outside the data dir; back it up yourself, or keep it as ${join(dataDir, 'config.yaml')}`,
        );
      fromDataDir.push(relative(dataDir, configFile));
    }
    if (existsSync(join(dataDir, 'tls'))) fromDataDir.push('tls');
    // The audit anchor's signing key and its record of signed chain heads (their default places):
    // without them a restored platform cannot prove its chain was not rewritten before the backup.
    for (const name of ANCHOR_FILES) if (existsSync(join(dataDir, name))) fromDataDir.push(name);
    const manifest: BackupManifest = {
      format: 1,
      insituVersion: VERSION,
      createdAt: new Date().toISOString(),
      database: storeConfig.kind,
      files: [...files, ...fromDataDir],
    };
    await writeFile(join(staging, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
    progress(`writing ${target}`);
    await mkdir(dirname(target), { recursive: true });
    const partial = `${target}.partial`;
    for (const entry of fromDataDir)
      await cp(join(dataDir, entry), join(staging, entry), { recursive: true, preserveTimestamps: true });
    await createTar({ gzip: true, file: partial, cwd: staging, portable: true }, [MANIFEST, ...files, ...fromDataDir]);
    await rename(partial, target);
    await chmod(target, 0o600);
    const size = (await stat(target)).size;
    if (options.json) line(io.stdout, JSON.stringify({ file: target, bytes: size, ...manifest }));
    else line(io.stdout, `backed up ${manifest.files.join(', ')} of ${dataDir} to ${target} (${size} bytes)`);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/**
 * `insitu restore FILE [--data-dir D] [--force]`: put a backup into a data dir. Refuses a data
 * dir a running platform serves, and an initialised one unless `--force` (which replaces its
 * database, config and tls/, keeping the rest).
 */
export async function runRestore(
  file: string,
  options: DataDirOptions & { force?: boolean; json?: boolean; databaseUrl?: string },
  io: CliIo,
): Promise<void> {
  const dataDir = dataDirOf(options, io);
  const source = resolve(io.cwd, file);
  if (!existsSync(source)) throw new InsituError('INSITU_NOT_FOUND', `no backup file ${source}`);
  if (runningUrl(dataDir))
    throw new InsituError(
      'INSITU_CONFLICT',
      `a platform is running on ${dataDir} (${runningUrl(dataDir)}): stop it before restoring`,
    );
  if (isInitialised(dataDir) && !options.force)
    throw new InsituError(
      'INSITU_ALREADY_INITIALISED',
      `${dataDir} holds a platform already; restore into an empty data dir, or replace it with --force`,
    );
  const entries: string[] = [];
  try {
    await listTar({ file: source, onReadEntry: (entry) => void entries.push(entry.path) });
  } catch (error) {
    throw new InsituError('INSITU_VALIDATION', `${source} is not an insitu backup: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const allowed = (path: string) =>
    path === MANIFEST ||
    path === DATABASE ||
    path === DUMP ||
    path === 'config.yaml' ||
    ANCHOR_FILES.includes(path) ||
    path === 'tls' ||
    path === 'tls/' ||
    /^tls\/[^/]+$/.test(path);
  const isDump = entries.includes(DUMP);
  if (!entries.includes(MANIFEST) || entries.includes(DATABASE) === isDump)
    throw new InsituError(
      'INSITU_VALIDATION',
      `${source} is not an insitu backup (needs ${MANIFEST} and one of ${DATABASE}, ${DUMP})`,
    );
  if (options.databaseUrl && !isDump)
    throw new InsituError('INSITU_USAGE', '--database-url is for a MariaDB backup; this one holds a SQLite database');
  const strange = entries.filter((p) => !allowed(p));
  if (strange.length)
    throw new InsituError('INSITU_VALIDATION', `${source} holds unexpected entries: ${strange.slice(0, 5).join(', ')}`);
  const progress = options.json ? () => undefined : (text: string) => line(io.stderr, `… ${text}`);
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const staging = await mkdtemp(join(dataDir, '.restore-'));
  try {
    progress(`unpacking ${source}`);
    await extractTar({ file: source, cwd: staging, strict: true, filter: (path) => allowed(path) });
    let database: string | undefined;
    if (isDump) database = await restoreDump(staging, dataDir, options, io, progress);
    else {
      // Quick integrity check of the database before it replaces anything.
      const db = new Database(join(staging, DATABASE), { readonly: true, fileMustExist: true });
      try {
        const check = db.pragma('quick_check', { simple: true });
        if (check !== 'ok')
          throw new InsituError('INSITU_VALIDATION', `the database in ${source} is damaged: ${String(check)}`);
      } finally {
        db.close();
      }
    }
    const restored: string[] = [];
    for (const name of await readdir(staging)) {
      // The integrity check's own -wal/-shm files are no part of the backup; a dump went into the database.
      if (name === MANIFEST || name === DUMP || name.startsWith('.') || name.endsWith('-wal') || name.endsWith('-shm'))
        continue;
      await rm(join(dataDir, name), { recursive: true, force: true });
      for (const suffix of ['-wal', '-shm'])
        if (name === DATABASE) await rm(join(dataDir, `${name}${suffix}`), { force: true });
      await rename(join(staging, name), join(dataDir, name));
      if (name === DATABASE) await chmod(join(dataDir, name), 0o600);
      restored.push(name);
    }
    if (database) restored.unshift(database);
    if (options.json) line(io.stdout, JSON.stringify({ dataDir, restored }));
    else
      line(
        io.stdout,
        `restored ${restored.join(', ')} into ${dataDir}; start it with: insitu server --data-dir ${dataDir}`,
      );
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/**
 * Load a MariaDB dump into the platform database: the one `--database-url` names (the restored
 * config is pointed at it), else the one the backed-up config names (environment overrides
 * apply). Refuses a database with tables unless `--force`, which drops them first.
 * Returns `mysql://HOST:PORT/DB` of the database it filled.
 */
async function restoreDump(
  staging: string,
  dataDir: string,
  options: DataDirOptions & { force?: boolean; databaseUrl?: string },
  io: CliIo,
  progress: (text: string) => void,
): Promise<string> {
  const configFile = join(staging, 'config.yaml');
  let target: StoreConfig;
  if (options.databaseUrl) {
    target = parseDatabaseUrl(options.databaseUrl, io.env.INSITU_DATABASE_PASSWORD);
    if (existsSync(configFile)) {
      const document = parseDocument(await readFile(configFile, 'utf8'));
      document.setIn(['database', 'url'], options.databaseUrl);
      await writeFile(configFile, document.toString(), { mode: 0o600 });
    }
  } else {
    if (!existsSync(configFile))
      throw new InsituError('INSITU_USAGE', 'this backup has no config.yaml; name the database with --database-url');
    target = storeConfigFor(
      loadServerConfig({ file: configFile, fileRequired: true, env: io.env, flags: {} }),
      dataDir,
    );
  }
  if (target.kind !== 'mysql')
    throw new InsituError('INSITU_USAGE', 'a MariaDB backup restores into a MariaDB/MySQL database (mysql://...)');
  const where = `mysql://${target.host}:${target.port}/${target.database}`;
  const optionFile = await clientOptionFile(staging, target);
  const tables = await tablesOf(optionFile, target);
  if (tables.length > 0) {
    if (!options.force)
      throw new InsituError(
        'INSITU_ALREADY_INITIALISED',
        `the database ${where} has ${tables.length} tables; restore into an empty database, or replace them with --force`,
      );
    progress(`dropping the ${tables.length} tables of ${where} (--force)`);
    const quoted = tables.map((t) => `\`${t.replace(/`/g, '``')}\``).join(', ');
    await runClient(
      'mariadb',
      [
        `--defaults-extra-file=${optionFile}`,
        '-e',
        `SET FOREIGN_KEY_CHECKS = 0; DROP TABLE ${quoted}`,
        target.database,
      ],
      {},
    );
  }
  progress(`loading the dump into ${where}`);
  await runClient('mariadb', [`--defaults-extra-file=${optionFile}`, '--binary-mode', target.database], {
    stdinFile: join(staging, DUMP),
  });
  progress(`loaded ${(await tablesOf(optionFile, target)).length} tables into ${where}`);
  await rm(optionFile);
  return where;
}
