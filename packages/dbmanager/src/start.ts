import { InsituError, createLogger, type Logger } from '@insitu/core';
import type { Notifier } from '@insitu/notify';
import { startAdminServer } from './admin-server.js';
import { resolveSecrets, type DbManagerConfig } from './config.js';
import type { Coordinator } from './coord-port.js';
import { DbManager } from './manager.js';

/** Options of {@link startDbManager}. */
export interface StartDbManagerOptions {
  coordinator: Coordinator;
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
  notifier?: Notifier;
  now?: () => number;
}

/** A running manager with its admin API. */
export interface RunningDbManager {
  manager: DbManager;
  adminUrl: string;
  /** Stop the manager (resigning its leadership) and the admin API. */
  close(): Promise<void>;
}

/**
 * Resolve the secrets, start the admin API, publish its URL, and start the manager.
 *
 * @example
 * const config = loadDbManagerConfig({ file: 'dbmanager.yaml', env: process.env });
 * const running = await startDbManager(config, { coordinator: createEtcdCoordinator({ endpoints }) });
 */
export async function startDbManager(config: Readonly<DbManagerConfig>, options: StartDbManagerOptions): Promise<RunningDbManager> {
  const env = options.env ?? process.env;
  const secrets = resolveSecrets(config, env);
  if (secrets.adminToken === undefined) {
    throw new InsituError('INSITU_CONFIG_INVALID', 'the dbmanager needs an admin token: set admin.tokenFile or INSITU_DBMANAGER_TOKEN (16+ characters)');
  }
  const logger = options.logger ?? createLogger({ name: 'dbmanager', level: config.log.level });
  const manager = new DbManager({
    config,
    secrets,
    coordinator: options.coordinator,
    logger,
    ...(options.notifier ? { notifier: options.notifier } : {}),
    ...(options.now ? { now: options.now } : {}),
  });
  const admin = await startAdminServer({ manager, token: secrets.adminToken, host: config.admin.host, port: config.admin.port, logger });
  const adminUrl = config.admin.advertiseUrl ?? admin.url;
  manager.setAdminUrl(adminUrl);
  try {
    await manager.start();
  } catch (error) {
    await admin.close();
    await manager.stop().catch(() => undefined);
    throw error;
  }
  return {
    manager,
    adminUrl,
    async close() {
      await manager.stop();
      await admin.close();
    },
  };
}
