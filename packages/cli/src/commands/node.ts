import { writeFile } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { InsituError, createLogger, createMetricsRegistry, type LogLevel } from '@insitu/core';
import { createCoordinator, type Coordinator } from '@insitu/coord';
import { OperatorNode, createServerDeepProber, loadNodeConfig, systemdUnit, type NodeConfig } from '@insitu/operator';
import { line, untilAborted, type CliIo } from '../io.js';

/** The node config file: `--config`, else `INSITU_NODE_CONFIG`. */
export function nodeConfigFile(options: { config?: string }, io: CliIo): string {
  const chosen = options.config ?? io.env.INSITU_NODE_CONFIG;
  if (!chosen) throw new InsituError('INSITU_USAGE', 'needs the node config: --config node.yaml or INSITU_NODE_CONFIG');
  return isAbsolute(chosen) ? chosen : resolve(io.cwd, chosen);
}

/** Load `node.yaml` (file and flags). */
export function loadCliNodeConfig(
  options: { config?: string },
  io: CliIo,
  flags: Record<string, unknown> = {},
): Readonly<NodeConfig> {
  return loadNodeConfig({ file: nodeConfigFile(options, io), fileRequired: true, flags });
}

/** The etcd coordinator that the node config names. */
export function nodeCoordinator(config: Readonly<NodeConfig>, logger?: ReturnType<typeof createLogger>): Coordinator {
  return createCoordinator({
    kind: 'etcd',
    endpoints: config.coord.endpoints,
    namespace: config.coord.namespace,
    ...(logger ? { logger } : {}),
  });
}

/**
 * `insitu node`: run this management node until interrupted: join the cluster, supervise
 * this node's platform services, take part in the operator's leader election. JSON log
 * lines on stdout. On SIGTERM it resigns its leadership, stops its services and leaves.
 */
export async function runNode(
  options: { config?: string; logLevel?: LogLevel; json?: boolean },
  io: CliIo,
): Promise<void> {
  const config = loadCliNodeConfig(options, io, options.logLevel ? { log: { level: options.logLevel } } : {});
  const logger = createLogger({ name: 'operator', level: config.log.level, destination: io.stdout });
  const coordinator = nodeCoordinator(config, logger);
  const registry = createMetricsRegistry();
  const node = new OperatorNode({
    config,
    coordinator,
    logger,
    registry,
    deepProber: createServerDeepProber(config, logger),
  });
  try {
    await node.start();
    const ready = {
      node: config.node,
      pid: process.pid,
      services: Object.keys(config.services),
      coord: config.coord.endpoints,
    };
    logger.info(
      ready,
      options.json
        ? JSON.stringify(ready)
        : `node ${config.node} joined; it can run ${ready.services.join(', ') || 'nothing'}`,
    );
    await untilAborted(io.signal);
    logger.info('shutting down: resigning, stopping services');
  } finally {
    await node.close();
    await coordinator.close();
  }
}

/** `insitu node install --systemd`: write the unit file (and print where). */
export async function runNodeInstall(
  options: { config?: string; systemd?: boolean; unitFile: string; user?: string; json?: boolean },
  io: CliIo,
): Promise<void> {
  if (!options.systemd)
    throw new InsituError('INSITU_USAGE', 'say how to install: --systemd (the only supported way so far)');
  const config = loadCliNodeConfig(options, io);
  const unit = systemdUnit({
    insitu: [process.execPath, resolve(new URL('../../../bin/insitu.js', import.meta.url).pathname)],
    config: nodeConfigFile(options, io),
    ...(options.user ? { user: options.user } : {}),
  });
  const target = isAbsolute(options.unitFile) ? options.unitFile : resolve(io.cwd, options.unitFile);
  await writeFile(target, unit, { mode: 0o644 });
  if (options.json) line(io.stdout, JSON.stringify({ unitFile: target, node: config.node }));
  else {
    line(io.stdout, `wrote ${target} for node ${config.node}`);
    line(
      io.stdout,
      `then: systemctl daemon-reload && systemctl enable --now ${target.split('/').pop() ?? 'insitu-node.service'}`,
    );
  }
}
