import { InsituError, createLogger, type LogLevel } from '@insitu/core';
import type { Coordinator } from '@insitu/coord';
import type { PrimaryFollower } from '@insitu/dbmanager';
import { openStore, type Store } from '@insitu/store';
import { coordinatorFor, startServer, storeConfigFor } from '@insitu/server';
import {
  dataDirOf,
  ensureDataDir,
  loadCliServerConfig,
  requireExistingDatabase,
  writeRunFile,
  type DataDirOptions,
} from '../data-dir.js';
import { untilAborted, type CliIo } from '../io.js';

/** When this module's imports (the server, the store, Fastify…) were loaded, in ms since the process started. */
const modulesLoadedAt = performance.now();

export interface ServerOptions extends DataDirOptions {
  host?: string;
  port?: number;
  logLevel?: LogLevel;
}

/**
 * Run the platform server until the signal aborts. Logs are JSON lines on standard
 * output. With `database.followPrimary`, the store follows the primary that the
 * dbmanager publishes in coord, so writes resume on a new primary after a failover.
 */
export async function runServer(options: ServerOptions, io: CliIo): Promise<void> {
  const dataDir = dataDirOf(options, io);
  const flags: Record<string, unknown> = {};
  if (options.host !== undefined || options.port !== undefined)
    flags.listen = {
      ...(options.host ? { host: options.host } : {}),
      ...(options.port !== undefined ? { port: options.port } : {}),
    };
  if (options.logLevel) flags.log = { level: options.logLevel };
  const config = loadCliServerConfig(options, io, dataDir, flags);
  const storeConfig = storeConfigFor(config, dataDir);
  // Before anything is created: a typo in --data-dir must not leave an empty platform behind.
  requireExistingDatabase(storeConfig, dataDir);
  await ensureDataDir(dataDir);
  const logger = createLogger({ name: 'server', level: config.log.level, destination: io.stdout });
  // Each start step at debug, in ms since the process started (bench/RESULTS.md: `insitu server` start).
  const step = (what: string, at = performance.now()) =>
    logger.debug({ sinceProcessStartMs: Math.round(at) }, `start: ${what}`);
  step('modules loaded', modulesLoadedAt);
  let coordinator: Coordinator | undefined;
  let follower: PrimaryFollower | undefined;
  let store: Store | undefined;
  try {
    if (config.database.followPrimary) {
      if (storeConfig.kind !== 'mysql')
        throw new InsituError('INSITU_CONFIG_INVALID', 'database.followPrimary needs a mysql:// database.url');
      coordinator = coordinatorFor(config, { logger });
      // The dbmanager's client is loaded only by the nodes that follow a published primary.
      const { followPrimary } = await import('@insitu/dbmanager');
      follower = await followPrimary(coordinator, config.database.followPrimary, {
        onError: (error) => logger.warn({ err: error }, 'bad primary record in coord'),
      });
      const current = follower.current();
      logger.info(
        {
          cluster: config.database.followPrimary,
          primary: current ?? `${storeConfig.host}:${storeConfig.port} (none published yet)`,
        },
        'following the published primary',
      );
      follower.onChange((address) => logger.info({ primary: address }, 'the primary moved; the store follows'));
      store = await openStore({ ...storeConfig, primary: follower });
    } else {
      store = await openStore(storeConfig);
    }
    step('database open');
    if (!(await store.orgs.platform())) {
      throw new InsituError(
        'INSITU_NOT_INITIALISED',
        `the platform has no administrator yet; run: insitu init --data-dir ${dataDir}`,
      );
    }
    const server = await startServer({ config, dataDir, logger, store, ...(coordinator ? { coordinator } : {}) });
    const removeRunFile = await writeRunFile(dataDir, server.url);
    step('listening, run file written');
    try {
      await untilAborted(io.signal);
      logger.info('shutting down');
      await server.drain();
    } finally {
      await removeRunFile();
      await server.close();
    }
  } finally {
    await store?.close();
    await follower?.close();
    await coordinator?.close();
  }
}
