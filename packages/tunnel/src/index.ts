/**
 * @insitu/tunnel — the reverse tunnel between the platform and providers' agents.
 *
 * The agent dials out ({@link TunnelClient}): an HTTP/1.1 upgrade carrying its
 * credential, then HTTP/2 with roles reversed — the platform is the client and opens
 * a stream per request, the agent serves them to a local handler. The platform side
 * ({@link createTunnelServer}) keeps the routing table (provider → service →
 * sessions), balances requests (power of two choices over in-flight × EWMA latency),
 * ejects failing sessions, retries what is safe, and forwards to the node holding a
 * session through a {@link SessionDirectory}. A control stream in each session carries
 * the agent's service announcements and the platform's commands.
 *
 * Start with `createTunnelServer({ nodeId, authenticate })` and `tunnel.request(...)`.
 */
export { createTunnelServer, TunnelServer, bodyFrom } from './tunnel-server.js';
export type { TunnelServerOptions, TunnelRequest, TunnelResponse, SessionInfo } from './tunnel-server.js';
export { TunnelClient, backoffDelay, RAW_STREAM_HANDLER, WORK_TARGET } from './tunnel-client.js';
export type {
  TunnelClientOptions,
  TunnelHandler,
  RawStreamHandler,
  RawStreamCapable,
  WorkTarget,
  WorkTargetCapable,
  CommandHandler,
  BackoffOptions,
  ClientSessionInfo,
} from './tunnel-client.js';
export type { AgentIdentity, SessionTimings } from './agent-session.js';
export type { BalancerPolicy } from './routing-table.js';
export { createLocalDirectory } from './directory.js';
export type { DirectoryEntry, SessionDirectory } from './directory.js';
export { peerToken, verifyPeerToken } from './peer.js';
export { createHttpProxyHandler } from './http-proxy-handler.js';
export type { HttpProxyTarget } from './http-proxy-handler.js';
export {
  TUNNEL_PATH,
  TUNNEL_PROTOCOL,
  PEER_PATH,
  PEER_PROTOCOL,
  CONTROL_PATH,
  WORK_PATH,
  WORK_PROTOCOL,
  STREAM_WINDOW,
  SESSION_WINDOW,
  ServiceAnnouncementSchema,
  AgentFrameSchema,
  PlatformFrameSchema,
} from './protocol.js';
export type { ServiceAnnouncement, AgentFrame, PlatformFrame } from './protocol.js';
export { createPlatformCa, issueServerCertificate } from './tls.js';
export type { CertificateAndKey } from './tls.js';
