import { readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { InsituError, createLogger, type Logger } from '@insitu/core';
import { openStore, parseDatabaseUrl, type Store, type StoreConfig } from '@insitu/store';
import type { Coordinator } from '@insitu/coord';
import type { App } from './app.js';
import { buildServer } from './build-server.js';
import type { ServerConfig } from './config.js';

/** A running platform server. */
export interface RunningServer {
  app: App;
  store: Store;
  /** Base URL, e.g. `http://127.0.0.1:7070`. */
  url: string;
  port: number;
  /**
   * Readiness off (`/readyz` 503) while still serving, for `shutdown.drainDelayMs`, so load
   * balancers take this node out before {@link close}. Resolves after the delay.
   */
  drain(): Promise<void>;
  /** Stop accepting requests, finish the ones in flight, close the database. */
  close(): Promise<void>;
}

/** The store config for `config.database`, resolving relative SQLite paths against the data dir. */
export function storeConfigFor(config: Readonly<ServerConfig>, dataDir: string): StoreConfig {
  let password = config.database.password ?? process.env.INSITU_DATABASE_PASSWORD;
  if (config.database.passwordFile) {
    try {
      password = readFileSync(config.database.passwordFile, 'utf8').trim();
    } catch (error) {
      throw new InsituError('INSITU_CONFIG_INVALID', `cannot read database.passwordFile: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }
  const parsed = parseDatabaseUrl(config.database.url, password);
  if (parsed.kind === 'sqlite' && parsed.path !== ':memory:' && !isAbsolute(parsed.path)) {
    return { kind: 'sqlite', path: join(dataDir, parsed.path) };
  }
  return parsed;
}

/**
 * Open the database, build the server and listen. The caller owns the returned handle
 * and must `close()` it.
 */
export async function startServer(options: {
  config: Readonly<ServerConfig>;
  dataDir: string;
  logger?: Logger;
  store?: Store;
  coordinator?: Coordinator;
}): Promise<RunningServer> {
  const logger = options.logger ?? createLogger({ name: 'server', level: options.config.log.level });
  const store = options.store ?? (await openStore(storeConfigFor(options.config, options.dataDir)));
  let app: App | undefined;
  try {
    app = await buildServer({
      config: options.config,
      store,
      logger,
      dataDir: options.dataDir,
      ...(options.coordinator ? { coordinator: options.coordinator } : {}),
    });
    logger.debug({ sinceProcessStartMs: Math.round(performance.now()) }, 'start: server built');
    await app.listen({ host: options.config.listen.host, port: options.config.listen.port });
  } catch (error) {
    await app?.close().catch(() => undefined);
    if (!options.store) await store.close();
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
      throw new InsituError(
        'INSITU_CONFIG_INVALID',
        `cannot listen on ${options.config.listen.host}:${options.config.listen.port}: ${code}`,
        { cause: error },
      );
    }
    throw error;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : options.config.listen.port;
  const host = options.config.listen.host.includes(':')
    ? `[${options.config.listen.host}]`
    : options.config.listen.host;
  const url = `http${options.config.tls ? 's' : ''}://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`;
  logger.info({ url }, 'platform server listening');
  const running = app;
  return {
    app: running,
    store,
    url,
    port,
    async drain() {
      running.insitu.lifecycle.draining = true;
      const delay = options.config.shutdown.drainDelayMs;
      if (delay > 0) {
        logger.info({ drainDelayMs: delay }, 'draining: readiness off while still serving');
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    },
    async close() {
      await running.close();
      if (!options.store) await store.close();
    },
  };
}
