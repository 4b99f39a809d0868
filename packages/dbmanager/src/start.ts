import { InsituError, createLogger, type Logger } from '@insitu/core';
import type { Notifier } from '@insitu/notify';
import { startAdminServer } from './admin-server.js';
import { resolveSecrets, type DbManagerConfig } from './config.js';
import type { Coordinator } from './coord-port.js';
import { MemberGuard } from './guard.js';
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
  /** The self-fencing guard, when `guard.member` is set. */
  guard: MemberGuard | undefined;
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
export async function startDbManager(
  config: Readonly<DbManagerConfig>,
  options: StartDbManagerOptions,
): Promise<RunningDbManager> {
  const env = options.env ?? process.env;
  const secrets = resolveSecrets(config, env);
  if (secrets.adminToken === undefined) {
    throw new InsituError(
      'INSITU_CONFIG_INVALID',
      'the dbmanager needs an admin token: set admin.tokenFile or INSITU_DBMANAGER_TOKEN (16+ characters)',
    );
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
  const guarded =
    config.guard.member === undefined ? undefined : config.members.find((m) => m.name === config.guard.member);
  const login = guarded === undefined ? undefined : secrets.members.get(guarded.name);
  const guard =
    guarded === undefined || login === undefined
      ? undefined
      : new MemberGuard({
          cluster: config.cluster,
          member: guarded.name,
          endpoint: {
            name: guarded.name,
            host: guarded.host,
            port: guarded.port,
            login,
            ...(config.guard.socket === undefined ? {} : { socket: config.guard.socket }),
          },
          coordinator: options.coordinator,
          leaseTtlMs: config.guard.leaseTtlMs,
          intervalMs: config.guard.intervalMs,
          spareUsers: [
            'system user',
            'event_scheduler',
            secrets.replication.user,
            ...new Set([...secrets.members.values()].map((l) => l.user)),
          ],
          logger,
        });
  guard?.start();
  const admin = await startAdminServer({
    manager,
    token: secrets.adminToken,
    host: config.admin.host,
    port: config.admin.port,
    logger,
  });
  const adminUrl = config.admin.advertiseUrl ?? admin.url;
  manager.setAdminUrl(adminUrl);
  try {
    await manager.start();
  } catch (error) {
    await admin.close();
    await manager.stop().catch(() => undefined);
    await guard?.stop();
    throw error;
  }
  return {
    manager,
    adminUrl,
    guard,
    async close() {
      await guard?.stop();
      await manager.stop();
      await admin.close();
    },
  };
}
