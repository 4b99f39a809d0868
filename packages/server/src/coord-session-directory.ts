import type { Coordinator, Lease, WatchHandle } from '@insitu/coord';
import type { Logger } from '@insitu/core';
import type { DirectoryEntry, SessionDirectory } from '@insitu/tunnel';

const NODES = 'tunnel/nodes/';
const SESSIONS = 'tunnel/sessions/';

/** The tunnel's session directory kept in the coordination store. */
export interface CoordSessionDirectory extends SessionDirectory {
  close(): Promise<void>;
}

/**
 * Publish this node's sessions in the coordination store under the node's own lease
 * (`tunnel/nodes/<node>` and `tunnel/sessions/<provider>/<session>`), so they vanish
 * when the node dies, and keep a watched cache of every node's entries for lookups. A
 * lost lease is replaced and everything of this node published again.
 */
export async function createCoordSessionDirectory(
  coordinator: Coordinator,
  options: { nodeId: string; ttlMs?: number; logger: Logger },
): Promise<CoordSessionDirectory> {
  const ttlMs = options.ttlMs ?? 5000;
  const nodes = new Map<string, string>();
  const entries = new Map<string, DirectoryEntry>();
  const mine = new Map<string, string>();
  let closed = false;
  let lease: Lease | undefined;

  const apply = (key: string, value: string | undefined): void => {
    try {
      if (key.startsWith(NODES)) {
        const nodeId = key.slice(NODES.length);
        if (value === undefined) nodes.delete(nodeId);
        else nodes.set(nodeId, (JSON.parse(value) as { url: string }).url);
      } else if (key.startsWith(SESSIONS)) {
        if (value === undefined) entries.delete(key);
        else entries.set(key, JSON.parse(value) as DirectoryEntry);
      }
    } catch (error) {
      options.logger.warn({ key, err: (error as Error).message }, 'ignoring a malformed tunnel directory entry');
    }
  };

  const grant = async (): Promise<Lease> => {
    const granted = await coordinator.grantLease(ttlMs);
    granted.on('lost', () => {
      if (closed) return;
      options.logger.warn('tunnel directory lease lost; publishing again under a new one');
      lease = undefined;
      void republish();
    });
    return granted;
  };

  const republish = async (): Promise<void> => {
    for (let attempt = 0; !closed; attempt++) {
      try {
        lease = await grant();
        for (const [key, value] of mine) await coordinator.put(key, value, { lease });
        return;
      } catch (error) {
        options.logger.warn({ err: (error as Error).message }, 'cannot publish tunnel sessions yet; retrying');
        await new Promise((resolve) => setTimeout(resolve, Math.min(5000, 200 * 2 ** attempt)).unref());
      }
    }
  };

  const put = async (key: string, value: string): Promise<void> => {
    mine.set(key, value);
    apply(key, value);
    lease ??= await grant();
    await coordinator.put(key, value, { lease });
  };

  const watch: WatchHandle = await coordinator.watchPrefix('tunnel/', (event) =>
    apply(event.key, event.type === 'put' ? event.value : undefined),
  );
  for (const [key, value] of await coordinator.list('tunnel/')) apply(key, value);

  return {
    async registerNode(nodeId, url) {
      await put(`${NODES}${nodeId}`, JSON.stringify({ url }));
    },
    async publish(entry) {
      await put(`${SESSIONS}${entry.providerId}/${entry.sessionId}`, JSON.stringify(entry));
    },
    async unpublish(entry) {
      const key = `${SESSIONS}${entry.providerId}/${entry.sessionId}`;
      mine.delete(key);
      entries.delete(key);
      await coordinator.delete(key);
    },
    lookup(providerId) {
      return [...entries.values()].filter((entry) => entry.providerId === providerId && nodes.has(entry.nodeId));
    },
    nodeUrl(nodeId) {
      return nodes.get(nodeId);
    },
    async close() {
      closed = true;
      await watch.close();
      await lease?.revoke().catch(() => undefined);
    },
  };
}
