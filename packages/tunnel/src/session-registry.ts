import { InsituError, type Logger } from '@insitu/core';
import type { AgentSession } from './agent-session.js';
import type { DirectoryEntry, SessionDirectory } from './directory.js';
import type { TunnelMetrics } from './metrics.js';
import type { RoutingTable } from './routing-table.js';
import type { SessionInfo } from './server-types.js';

/** What {@link SessionRegistry} works with. */
export interface SessionRegistryOptions {
  nodeId: string;
  /** The routing table ready sessions join and closed ones leave. */
  table: RoutingTable;
  logger: Logger;
  metrics: TunnelMetrics | undefined;
  maxSessionsPerAgent: number | undefined;
  /** Cluster: where sessions are published. */
  directory: SessionDirectory | undefined;
}

/**
 * The sessions this node holds: by id and by agent, their life cycle (routable once
 * ready, published to the cluster's directory, removed when gone), the byte counts of
 * the metrics, and what is asked of an agent's sessions (commands, revocation, the list).
 */
export class SessionRegistry {
  readonly #o: SessionRegistryOptions;
  readonly #byAgent = new Map<string, AgentSession[]>();
  readonly #byId = new Map<string, AgentSession>();
  #bytesSeen = new WeakMap<AgentSession, { read: number; written: number }>();
  #bytesClosed = { toAgent: 0, fromAgent: 0 };

  constructor(options: SessionRegistryOptions) {
    this.#o = options;
  }

  get(sessionId: string): AgentSession | undefined {
    return this.#byId.get(sessionId);
  }

  /** Every session, ready or not. */
  all(): AgentSession[] {
    return [...this.#byAgent.values()].flat();
  }

  /** Socket bytes since the last call (read at scrape time). */
  bytesDelta(): { toAgent: number; fromAgent: number } {
    const delta = { ...this.#bytesClosed };
    this.#bytesClosed = { toAgent: 0, fromAgent: 0 };
    for (const session of this.#o.table.all()) {
      const seen = this.#bytesSeen.get(session) ?? { read: 0, written: 0 };
      const read = session.socket.bytesRead ?? 0;
      const written = session.socket.bytesWritten ?? 0;
      delta.fromAgent += read - seen.read;
      delta.toAgent += written - seen.written;
      this.#bytesSeen.set(session, { read, written });
    }
    return delta;
  }

  /** Take a new session in: routable once ready, published while it serves, forgotten when closed. */
  attach(session: AgentSession): void {
    const agentSessions = this.#byAgent.get(session.identity.agentId) ?? [];
    agentSessions.push(session);
    this.#byAgent.set(session.identity.agentId, agentSessions);
    const limit = this.#o.maxSessionsPerAgent ?? 4;
    while (agentSessions.length > limit) {
      // A flapping agent: its oldest sessions are the likeliest dead; bound them.
      agentSessions
        .shift()
        ?.destroy('INSITU_TUNNEL_TOO_MANY_SESSIONS', `agent has more than ${limit} sessions on this node`);
    }
    this.#byId.set(session.id, session);
    this.#o.metrics?.sessions.inc();
    const entry = (): DirectoryEntry => ({
      sessionId: session.id,
      nodeId: this.#o.nodeId,
      providerId: session.identity.providerId,
      agentId: session.identity.agentId,
      services: session.services.map((s) => s.key),
    });
    session.on('ready', () => {
      this.#o.table.add(session);
      this.#o.logger.info(
        { sessionId: session.id, agentId: session.identity.agentId, services: session.services.map((s) => s.key) },
        'agent session ready',
      );
    });
    session.on('services', () => {
      this.#o.directory?.publish(entry()).catch((error: unknown) => {
        this.#o.logger.warn({ err: (error as Error).message, sessionId: session.id }, 'could not publish the session');
      });
    });
    session.on('rtt', (ms: number) => this.#o.metrics?.rtt.observe(ms / 1000));
    session.on('missed-ping', () => {
      if (!session.isEjected()) {
        session.eject('missed PING');
        this.#o.metrics?.ejections.inc();
      }
    });
    session.once('gone', () => {
      this.#o.table.remove(session);
      this.#o.directory?.unpublish(entry()).catch(() => undefined);
    });
    session.once('closed', () => {
      this.#byId.delete(session.id);
      this.#o.table.remove(session);
      this.#o.metrics?.sessions.dec();
      const seen = this.#bytesSeen.get(session) ?? { read: 0, written: 0 };
      this.#bytesClosed.fromAgent += (session.socket.bytesRead ?? 0) - seen.read;
      this.#bytesClosed.toAgent += (session.socket.bytesWritten ?? 0) - seen.written;
      const list = this.#byAgent.get(session.identity.agentId);
      if (list) {
        const remaining = list.filter((s) => s !== session);
        if (remaining.length > 0) this.#byAgent.set(session.identity.agentId, remaining);
        else this.#byAgent.delete(session.identity.agentId);
      }
      this.#o.logger.info({ sessionId: session.id, agentId: session.identity.agentId }, 'agent session closed');
    });
  }

  /** Send a control command to one session of an agent (any of its sessions on this node). */
  async command(agentId: string, name: string, payload?: unknown, timeoutMs?: number): Promise<unknown> {
    const session = (this.#byAgent.get(agentId) ?? []).find((s) => s.open && s.ready);
    if (!session) throw new InsituError('INSITU_TUNNEL_NO_ROUTE', `agent ${agentId} has no session on this node`);
    return session.command(name, payload, timeoutMs);
  }

  /** Close every session of an agent at once (its credential was revoked). Returns how many. */
  closeAgent(agentId: string): number {
    const sessions = this.#byAgent.get(agentId) ?? [];
    for (const session of [...sessions]) session.destroy('INSITU_UNAUTHENTICATED', 'the agent credential was revoked');
    return sessions.length;
  }

  /** Sessions held by this node. */
  sessions(): SessionInfo[] {
    const now = Date.now();
    return [...this.#byAgent.values()].flat().map((s) => ({
      sessionId: s.id,
      agentId: s.identity.agentId,
      providerId: s.identity.providerId,
      nodeId: this.#o.nodeId,
      remoteAddress: s.remoteAddress,
      connectedAt: new Date(s.connectedAt).toISOString(),
      services: s.services.map((x) => ({ ...x })),
      inFlight: s.inFlight,
      rttMs: Math.round(s.rttMs * 1000) / 1000,
      ewmaMs: Math.round(s.ewmaMs(now) * 1000) / 1000,
      ejected: s.isEjected(now),
      requests: s.requests,
    }));
  }
}
