import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { InsituError, createLogger, type Logger, type LogLevel } from '@insitu/core';
import type { StoreConfig } from '@insitu/store';
import { loadServerConfig, type ServerConfig } from '@insitu/server';
import type { CliIo } from './io.js';

/** Global options every command accepts. */
export interface DataDirOptions {
  dataDir?: string;
  config?: string;
}

/** The data directory: `--data-dir`, else `INSITU_DATA_DIR`, else `./.insitu`. */
export function dataDirOf(options: DataDirOptions, io: CliIo): string {
  const chosen = options.dataDir ?? io.env.INSITU_DATA_DIR ?? '.insitu';
  return isAbsolute(chosen) ? chosen : resolve(io.cwd, chosen);
}

/** The config file: `--config`, else `INSITU_CONFIG`, else `<data dir>/config.yaml`. */
export function configFileOf(options: DataDirOptions, io: CliIo, dataDir: string): string {
  const chosen = options.config ?? io.env.INSITU_CONFIG;
  if (chosen) return isAbsolute(chosen) ? chosen : resolve(io.cwd, chosen);
  return join(dataDir, 'config.yaml');
}

/** Load the server config from file + environment + flags; the file must exist when named explicitly. */
export function loadCliServerConfig(
  options: DataDirOptions,
  io: CliIo,
  dataDir: string,
  flags: Record<string, unknown>,
): Readonly<ServerConfig> {
  const file = configFileOf(options, io, dataDir);
  return loadServerConfig({ file, fileRequired: Boolean(options.config ?? io.env.INSITU_CONFIG), env: io.env, flags });
}

/** Create the data dir (mode 0700: it holds the database and credentials). */
export async function ensureDataDir(dataDir: string): Promise<void> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
}

/** True when `insitu init` has written the config file here. */
export function isInitialised(dataDir: string): boolean {
  return existsSync(join(dataDir, 'config.yaml'));
}

/** A logger writing JSON lines to `<data dir>/insitu.log`, for commands whose terminal output is for people. */
export function fileLogger(dataDir: string, level: LogLevel, name: string): Logger {
  return createLogger({ name, level, file: join(dataDir, 'insitu.log') });
}

/**
 * Refuse a SQLite platform database that does not exist yet: `insitu init` creates it, so a
 * missing file is a typo in `--data-dir` (or a data dir never initialised). Checked before
 * anything opens it, because opening would create an empty database and hide the typo.
 */
export function requireExistingDatabase(storeConfig: StoreConfig, dataDir: string): void {
  if (storeConfig.kind !== 'sqlite' || storeConfig.path === ':memory:' || existsSync(storeConfig.path)) return;
  throw new InsituError(
    'INSITU_NOT_INITIALISED',
    `no platform database at ${storeConfig.path}: is --data-dir right? (to create one, run: insitu init --data-dir ${dataDir})`,
  );
}

/** The file a running `insitu server`/`insitu up` writes, so commands on the same data dir find its real URL. */
export const RUN_FILE = 'run.json';

/** Record where this process serves (removed again by the returned function). */
export async function writeRunFile(dataDir: string, url: string): Promise<() => Promise<void>> {
  const file = join(dataDir, RUN_FILE);
  await writeFile(file, `${JSON.stringify({ url, pid: process.pid })}\n`, { mode: 0o600 });
  return async () => {
    // Only our own: a newer process on the same data dir may have replaced it.
    if (readRunFile(dataDir)?.pid === process.pid) await rm(file, { force: true });
  };
}

/** The URL of the platform process serving this data dir right now, if one is. */
export function runningUrl(dataDir: string): string | undefined {
  const run = readRunFile(dataDir);
  if (!run) return undefined;
  try {
    process.kill(run.pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return undefined;
  }
  return run.url;
}

function readRunFile(dataDir: string): { url: string; pid: number } | undefined {
  try {
    const parsed = JSON.parse(readFileSync(join(dataDir, RUN_FILE), 'utf8')) as { url?: unknown; pid?: unknown };
    return typeof parsed.url === 'string' && typeof parsed.pid === 'number'
      ? { url: parsed.url, pid: parsed.pid }
      : undefined;
  } catch {
    return undefined;
  }
}
