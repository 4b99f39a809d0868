import { Counter, Gauge, Histogram, type Registry } from '@insitu/core';

/** The tunnel's metrics, registered on the server's registry. */
export interface TunnelMetrics {
  sessions: Gauge;
  streamsActive: Gauge;
  streams: Counter<'outcome'>;
  workRequests: Counter;
  bytes: Counter<'direction'>;
  rtt: Histogram;
  retries: Counter<'reason'>;
  ejections: Counter;
  forwarded: Counter<'direction'>;
  rejected: Counter<'code'>;
}

/**
 * Register the tunnel metrics. `bytesSource` is read at scrape time: bytes moved by the
 * sessions' sockets since the last scrape (counted per socket, not per chunk, so the
 * data path pays nothing for it).
 */
export function createTunnelMetrics(
  registry: Registry,
  bytesSource: () => { toAgent: number; fromAgent: number },
): TunnelMetrics {
  const registers = [registry];
  const bytes = new Counter({
    name: 'insitu_tunnel_bytes_total',
    help: 'Bytes through agent sessions, by direction (to_agent, from_agent), TLS and HTTP/2 framing included',
    labelNames: ['direction'] as const,
    registers,
    collect() {
      const delta = bytesSource();
      if (delta.toAgent > 0) this.inc({ direction: 'to_agent' }, delta.toAgent);
      if (delta.fromAgent > 0) this.inc({ direction: 'from_agent' }, delta.fromAgent);
    },
  });
  return {
    sessions: new Gauge({ name: 'insitu_tunnel_sessions', help: 'Agent sessions held by this node', registers }),
    streamsActive: new Gauge({
      name: 'insitu_tunnel_streams_active',
      help: 'Requests in flight through agent sessions of this node',
      registers,
    }),
    streams: new Counter({
      name: 'insitu_tunnel_streams_total',
      help: 'Requests sent through agent sessions, by outcome (ok, refused, failed, timeout)',
      labelNames: ['outcome'] as const,
      registers,
    }),
    workRequests: new Counter({
      name: 'insitu_tunnel_work_requests_total',
      help: 'Requests sent over work connections (the others went as HTTP/2 streams)',
      registers,
    }),
    bytes,
    rtt: new Histogram({
      name: 'insitu_tunnel_rtt_seconds',
      help: 'Round-trip time of HTTP/2 PINGs on agent sessions',
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers,
    }),
    retries: new Counter({
      name: 'insitu_tunnel_retries_total',
      help: 'Requests retried on another session, by reason',
      labelNames: ['reason'] as const,
      registers,
    }),
    ejections: new Counter({
      name: 'insitu_tunnel_ejections_total',
      help: 'Sessions ejected from load balancing (failures, missed PINGs)',
      registers,
    }),
    forwarded: new Counter({
      name: 'insitu_tunnel_forwarded_total',
      help: 'Requests forwarded between platform nodes, by direction (out: sent to a peer, in: served for a peer)',
      labelNames: ['direction'] as const,
      registers,
    }),
    rejected: new Counter({
      name: 'insitu_tunnel_rejected_total',
      help: 'Upgrades and sessions refused or closed, by error code',
      labelNames: ['code'] as const,
      registers,
    }),
  };
}
