import { isAbsolute, resolve } from 'node:path';
import { InsituError, createLogger, type LogLevel } from '@insitu/core';
import {
  createCoordinator,
  loadDbManagerConfig,
  startDbManager,
  type Coordinator,
  type DbManagerConfig,
} from '@insitu/dbmanager';
import { line, untilAborted, type CliIo } from '../io.js';

export interface DbManagerCommandOptions {
  config?: string;
  logLevel?: LogLevel;
  adminPort?: number;
  json?: boolean;
}

/** The dbmanager config file: `--config`, else `INSITU_DBMANAGER_CONFIG`. */
export function dbManagerConfigFile(options: { config?: string }, io: CliIo, required: boolean): string | undefined {
  const chosen = options.config ?? io.env.INSITU_DBMANAGER_CONFIG;
  if (!chosen) {
    if (required)
      throw new InsituError(
        'INSITU_USAGE',
        'the dbmanager needs a config file: --config FILE or INSITU_DBMANAGER_CONFIG',
      );
    return undefined;
  }
  return isAbsolute(chosen) ? chosen : resolve(io.cwd, chosen);
}

/** Load and validate the dbmanager config (file, INSITU_DBMANAGER_* variables, flags). */
export function loadCliDbManagerConfig(
  file: string,
  io: CliIo,
  flags: Record<string, unknown> = {},
): Readonly<DbManagerConfig> {
  return loadDbManagerConfig({ file, fileRequired: true, env: io.env, flags });
}

/** The coordinator the config names. */
export function coordinatorFor(config: Readonly<DbManagerConfig>): Promise<Coordinator> {
  return createCoordinator(config.coord);
}

/**
 * `insitu dbmanager`: run a MySQL-Manager until interrupted. Prints one line with its id
 * and admin URL (JSON with --json), then JSON log lines.
 */
export async function runDbManager(options: DbManagerCommandOptions, io: CliIo): Promise<void> {
  const file = dbManagerConfigFile(options, io, true) as string;
  const flags: Record<string, unknown> = {};
  if (options.logLevel) flags.log = { level: options.logLevel };
  if (options.adminPort !== undefined) flags.admin = { port: options.adminPort };
  const config = loadCliDbManagerConfig(file, io, flags);
  const logger = createLogger({ name: 'dbmanager', level: config.log.level, destination: io.stdout });
  const coordinator = await coordinatorFor(config);
  let running;
  try {
    running = await startDbManager(config, { coordinator, env: io.env, logger });
  } catch (error) {
    await coordinator.close().catch(() => undefined);
    throw error;
  }
  const ready = {
    manager: running.manager.id,
    cluster: config.cluster,
    adminUrl: running.adminUrl,
    coord: config.coord.kind,
  };
  line(
    io.stdout,
    options.json
      ? JSON.stringify(ready)
      : `dbmanager ${ready.manager} of cluster ${ready.cluster}: admin API at ${ready.adminUrl} (coord: ${ready.coord})`,
  );
  try {
    await untilAborted(io.signal);
    logger.info('shutting down');
  } finally {
    await running.close();
    await coordinator.close();
  }
}
