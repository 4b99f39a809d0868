import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { createLogger, type Logger, type LogLevel } from '@insitu/core';
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
export function loadCliServerConfig(options: DataDirOptions, io: CliIo, dataDir: string, flags: Record<string, unknown>): Readonly<ServerConfig> {
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

