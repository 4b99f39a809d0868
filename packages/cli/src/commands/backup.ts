import { existsSync } from 'node:fs';
import { chmod, cp, mkdir, mkdtemp, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { InsituError, VERSION } from '@insitu/core';
import { storeConfigFor } from '@insitu/server';
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

interface BackupManifest {
  format: 1;
  insituVersion: string;
  createdAt: string;
  database: 'sqlite';
  files: string[];
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
  if (storeConfig.kind !== 'sqlite') {
    throw new InsituError(
      'INSITU_USAGE',
      'insitu backup copies a SQLite platform database; for MariaDB/MySQL take a consistent dump (mariadb-dump --single-transaction) and back up the config and tls/ beside it',
    );
  }
  requireExistingDatabase(storeConfig, dataDir);
  const target = resolve(io.cwd, options.to);
  const progress = options.json ? () => undefined : (text: string) => line(io.stderr, `… ${text}`);
  const staging = await mkdtemp(join(tmpdir(), 'insitu-backup-'));
  try {
    progress(`copying the database ${storeConfig.path} (online backup)`);
    const source = new Database(storeConfig.path, { readonly: true, fileMustExist: true });
    try {
      await source.backup(join(staging, DATABASE));
    } finally {
      source.close();
    }
    const files = [DATABASE];
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
    const manifest: BackupManifest = {
      format: 1,
      insituVersion: VERSION,
      createdAt: new Date().toISOString(),
      database: 'sqlite',
      files: [...files, ...fromDataDir],
    };
    await writeFile(join(staging, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
    progress(`writing ${target}`);
    await mkdir(dirname(target), { recursive: true });
    const partial = `${target}.partial`;
    for (const entry of fromDataDir)
      await cp(join(dataDir, entry), join(staging, entry), { recursive: true, preserveTimestamps: true });
    await createTar({ gzip: true, file: partial, cwd: staging, portable: true }, [MANIFEST, DATABASE, ...fromDataDir]);
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
  options: DataDirOptions & { force?: boolean; json?: boolean },
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
    path === 'config.yaml' ||
    path === 'tls' ||
    path === 'tls/' ||
    /^tls\/[^/]+$/.test(path);
  if (!entries.includes(MANIFEST) || !entries.includes(DATABASE))
    throw new InsituError('INSITU_VALIDATION', `${source} is not an insitu backup (no ${MANIFEST} or ${DATABASE})`);
  const strange = entries.filter((p) => !allowed(p));
  if (strange.length)
    throw new InsituError('INSITU_VALIDATION', `${source} holds unexpected entries: ${strange.slice(0, 5).join(', ')}`);
  const progress = options.json ? () => undefined : (text: string) => line(io.stderr, `… ${text}`);
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const staging = await mkdtemp(join(dataDir, '.restore-'));
  try {
    progress(`unpacking ${source}`);
    await extractTar({ file: source, cwd: staging, strict: true, filter: (path) => allowed(path) });
    // Quick integrity check of the database before it replaces anything.
    const db = new Database(join(staging, DATABASE), { readonly: true, fileMustExist: true });
    try {
      const check = db.pragma('quick_check', { simple: true });
      if (check !== 'ok')
        throw new InsituError('INSITU_VALIDATION', `the database in ${source} is damaged: ${String(check)}`);
    } finally {
      db.close();
    }
    const restored: string[] = [];
    for (const name of await readdir(staging)) {
      // The integrity check's own -wal/-shm files are no part of the backup.
      if (name === MANIFEST || name.endsWith('-wal') || name.endsWith('-shm')) continue;
      await rm(join(dataDir, name), { recursive: true, force: true });
      for (const suffix of ['-wal', '-shm'])
        if (name === DATABASE) await rm(join(dataDir, `${name}${suffix}`), { force: true });
      await rename(join(staging, name), join(dataDir, name));
      if (name === DATABASE) await chmod(join(dataDir, name), 0o600);
      restored.push(name);
    }
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
