/** One session as other nodes see it. */
export interface DirectoryEntry {
  sessionId: string;
  nodeId: string;
  providerId: string;
  agentId: string;
  /** Service keys it serves. */
  services: string[];
}

/**
 * Where the nodes of a cluster publish the sessions they hold, so a node without a
 * session for a provider can forward to one that has it. The tunnel does not depend on
 * the coordination package: the server implements this on a `Coordinator` (entries
 * under the node's lease, a watched cache for `lookup`). {@link createLocalDirectory}
 * serves nodes in one process.
 */
export interface SessionDirectory {
  /** Announce this node's base URL for node-to-node forwarding. */
  registerNode(nodeId: string, url: string): Promise<void>;
  publish(entry: DirectoryEntry): Promise<void>;
  unpublish(entry: DirectoryEntry): Promise<void>;
  /** Entries of every node for a provider (from a cache: must be cheap). */
  lookup(providerId: string): DirectoryEntry[];
  /** Base URL of a node, if it is known and alive. */
  nodeUrl(nodeId: string): string | undefined;
}

/** A directory shared by tunnel servers in one process (tests, benchmarks). */
export function createLocalDirectory(): SessionDirectory & { removeNode(nodeId: string): void } {
  const entries = new Map<string, DirectoryEntry>();
  const nodes = new Map<string, string>();
  return {
    async registerNode(nodeId, url) {
      nodes.set(nodeId, url);
    },
    async publish(entry) {
      entries.set(entry.sessionId, { ...entry, services: [...entry.services] });
    },
    async unpublish(entry) {
      entries.delete(entry.sessionId);
    },
    lookup(providerId) {
      return [...entries.values()].filter((entry) => entry.providerId === providerId && nodes.has(entry.nodeId));
    },
    nodeUrl(nodeId) {
      return nodes.get(nodeId);
    },
    removeNode(nodeId) {
      nodes.delete(nodeId);
      for (const [id, entry] of entries) if (entry.nodeId === nodeId) entries.delete(id);
    },
  };
}
