import { fileURLToPath } from 'node:url';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createLogger, waitFor } from '@insitu/core';
import type { Coordinator } from '@insitu/coord';
import { applySpec, type NodeRecord, type ServiceStatus } from '../src/index.js';
import { KEYS, nodeKey } from '../src/keys.js';
import { parseRecord } from '../src/records.js';

export const FAKE_SERVICE = fileURLToPath(new URL('./fixtures/fake-service.js', import.meta.url));
export const NODE_PROCESS = fileURLToPath(new URL('./fixtures/node-process.js', import.meta.url));
export const quietLogger = () =>
  createLogger({ name: 'operator-test', level: process.env.TEST_LOG_LEVEL === 'debug' ? 'debug' : 'silent' });

/** A fake service's command for a node config. */
export function fakeService(port: number, env: Record<string, string> = {}) {
  return {
    command: [process.execPath, FAKE_SERVICE],
    env: { FAKE_PORT: String(port), ...env },
    health: `http://127.0.0.1:${port}`,
  };
}

export async function nodeRecord(coordinator: Coordinator, node: string): Promise<NodeRecord | undefined> {
  return parseRecord<NodeRecord>(await coordinator.get(nodeKey(node)));
}

export async function serviceOn(
  coordinator: Coordinator,
  node: string,
  service: string,
): Promise<ServiceStatus | undefined> {
  return (await nodeRecord(coordinator, node))?.services[service];
}

export async function applyYaml(coordinator: Coordinator, dir: string, yaml: string): Promise<void> {
  const file = join(dir, 'cluster.yaml');
  await writeFile(file, yaml);
  await applySpec(coordinator, yaml, { by: 'test', source: file });
}

/** Wait until the service reports `state` on `node` (and, when given, another pid than `notPid`). */
export function waitForState(
  coordinator: Coordinator,
  node: string,
  service: string,
  state: ServiceStatus['state'],
  options: { notPid?: number; timeoutMs?: number } = {},
): Promise<ServiceStatus> {
  return waitFor(
    async () => {
      const status = await serviceOn(coordinator, node, service);
      return status?.state === state &&
        (options.notPid === undefined || (status.pid !== undefined && status.pid !== options.notPid))
        ? status
        : undefined;
    },
    { timeoutMs: options.timeoutMs ?? 20_000, intervalMs: 50, what: `${service} ${state} on ${node}` },
  );
}

export { KEYS };
