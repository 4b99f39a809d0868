import type { Coordinator, WatchHandle } from '@insitu/coord';
import { isId, type Logger } from '@insitu/core';

const PREFIX = 'signals/';

/** What one node tells the others. */
export interface ClusterSignalHandlers {
  /** A provider's deployments changed: push the desired state to this node's agents of it. */
  deployments: (providerId: string) => void;
  /** Keys, services or grants changed: forget this node's gateway caches. */
  gateway: () => void;
}

export interface ClusterSignals {
  /** Announce a change made on this node to the other nodes. */
  announce(topic: 'deployments', providerId: string): void;
  announce(topic: 'gateway'): void;
  close(): Promise<void>;
}

/**
 * In a cluster, what one node changes must take effect on the others at once: a
 * deployment changed through node A must reach agents connected only to node B, and a
 * key revoked through A must stop working on B, not after B's caches expire. The node
 * that made the change puts `signals/<topic>/<id>` in coord (`deployments/<provider>` or
 * `gateway/all`); every node watches `signals/` and runs the handler for changes made by
 * another node. The periodic re-list of coord's watch catches a lost event. One node alone
 * (in-memory coordination) needs none of it.
 */
export async function createClusterSignals(
  coordinator: Coordinator,
  options: { nodeId: string; logger: Logger; handlers: ClusterSignalHandlers },
): Promise<ClusterSignals> {
  if (coordinator.kind !== 'etcd') return { announce: () => undefined, close: async () => undefined };
  const { nodeId, logger, handlers } = options;
  const watch: WatchHandle = await coordinator.watchPrefix(PREFIX, (event) => {
    if (event.type !== 'put') return;
    let from: unknown;
    try {
      from = (JSON.parse(event.value ?? '') as { node?: unknown }).node;
    } catch {
      return;
    }
    if (from === nodeId) return;
    const [topic, id] = event.key.slice(PREFIX.length).split('/');
    if (topic === 'deployments' && isId(id, 'prv')) handlers.deployments(id);
    else if (topic === 'gateway' && id === 'all') handlers.gateway();
  });
  return {
    announce(topic: 'deployments' | 'gateway', id: string = 'all') {
      coordinator
        .put(`${PREFIX}${topic}/${id}`, JSON.stringify({ node: nodeId, at: Date.now() }))
        .catch((error: unknown) => {
          logger.warn(
            { err: error, topic, id },
            'telling the other nodes about a change failed; their caches expire and their agents poll',
          );
        });
    },
    close: () => watch.close(),
  };
}
