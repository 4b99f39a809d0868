import type { HttpMetrics, Logger, Registry } from '@insitu/core';
import type { Store } from '@insitu/store';
import type { ServerConfig } from './config.js';

/** What routes need, handed to each route module (no request decorations with shared objects). */
export interface ServerContext {
  config: Readonly<ServerConfig>;
  store: Store;
  logger: Logger;
  registry: Registry;
  http: HttpMetrics;
  now: () => number;
  /** This node's identity, as shown in `/api/v1/cluster`. */
  node: { id: string; startedAt: number; version: string };
  /** scrypt cost for new password hashes. */
  passwordCost: { N: number; r: number; p: number };
  /** Set when the node is shutting down: `/readyz` answers 503 from then on. */
  lifecycle: { draining: boolean };
}
