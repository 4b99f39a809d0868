import type { Coordinator, WatchHandle } from '@insitu/coord';
import { isId, type Logger } from '@insitu/core';

const PREFIX = 'deployments/changed/';

/** Tells the other platform nodes that a provider's deployments changed, and hears them. */
export interface DesiredSignal {
  /** Announce a change made on this node. */
  announce(providerId: string): void;
  close(): Promise<void>;
}

/**
 * In a cluster, a provider's agents hold sessions with several nodes, and a deployment
 * changed through one node must reach agents connected only to another at once, not at
 * their next poll. The node that made the change puts `deployments/changed/<provider>`
 * in coord; every other node watches that prefix and runs `onChange` (push the desired
 * state to its own agents of that provider, drop its route cache). One node alone
 * (in-memory coordination) needs none of it.
 */
export async function createDesiredSignal(coordinator: Coordinator, options: { nodeId: string; logger: Logger; onChange: (providerId: string) => void }): Promise<DesiredSignal> {
  if (coordinator.kind !== 'etcd') return { announce: () => undefined, close: async () => undefined };
  const { nodeId, logger, onChange } = options;
  const watch: WatchHandle = await coordinator.watchPrefix(PREFIX, (event) => {
    if (event.type !== 'put') return;
    const providerId = event.key.slice(PREFIX.length);
    let from: unknown;
    try {
      from = (JSON.parse(event.value ?? '') as { node?: unknown }).node;
    } catch {
      from = undefined;
    }
    if (!isId(providerId, 'prv') || from === nodeId) return;
    onChange(providerId);
  });
  return {
    announce(providerId) {
      coordinator.put(`${PREFIX}${providerId}`, JSON.stringify({ node: nodeId, at: Date.now() })).catch((error: unknown) => {
        logger.warn({ err: error, providerId }, 'telling the other nodes about a deployment change failed; their agents will poll');
      });
    },
    close: () => watch.close(),
  };
}
