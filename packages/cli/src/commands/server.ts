import { InsituError, createLogger, type LogLevel } from '@insitu/core';
import { openStore } from '@insitu/store';
import { startServer, storeConfigFor } from '@insitu/server';
import { dataDirOf, ensureDataDir, loadCliServerConfig, type DataDirOptions } from '../data-dir.js';
import { untilAborted, type CliIo } from '../io.js';

export interface ServerOptions extends DataDirOptions {
  host?: string;
  port?: number;
  logLevel?: LogLevel;
}

/** Run the platform server until the signal aborts. Logs are JSON lines on standard output. */
export async function runServer(options: ServerOptions, io: CliIo): Promise<void> {
  const dataDir = dataDirOf(options, io);
  const flags: Record<string, unknown> = {};
  if (options.host !== undefined || options.port !== undefined) flags.listen = { ...(options.host ? { host: options.host } : {}), ...(options.port !== undefined ? { port: options.port } : {}) };
  if (options.logLevel) flags.log = { level: options.logLevel };
  const config = loadCliServerConfig(options, io, dataDir, flags);
  await ensureDataDir(dataDir);
  const logger = createLogger({ name: 'server', level: config.log.level, destination: io.stdout });
  const store = await openStore(storeConfigFor(config, dataDir));
  if (!(await store.orgs.platform())) {
    await store.close();
    throw new InsituError('INSITU_NOT_INITIALISED', `the platform has no administrator yet; run: insitu init --data-dir ${dataDir}`);
  }
  const server = await startServer({ config, dataDir, logger, store });
  try {
    await untilAborted(io.signal);
    logger.info('shutting down');
  } finally {
    await server.close();
    await store.close();
  }
}
