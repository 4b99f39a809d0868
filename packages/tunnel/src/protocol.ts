import type { Http2Stream } from 'node:http2';
import Type, { type Static } from 'typebox';

/** The `Upgrade` token of an agent session. */
export const TUNNEL_PROTOCOL = 'insitu-tunnel/1';
/** The `Upgrade` token of a node-to-node forwarding connection. */
export const PEER_PROTOCOL = 'insitu-peer/1';
/** Default path of the tunnel endpoint on the platform's API port. */
export const TUNNEL_PATH = '/api/v1/tunnel';
/** Default path of the node-to-node endpoint. */
export const PEER_PATH = '/api/v1/tunnel/peer';
/** The `Upgrade` token of a work connection (the data plane, dialled by the agent). */
export const WORK_PROTOCOL = 'insitu-work/1';
/** Path of work connections on the platform's API port. */
export const WORK_PATH = '/api/v1/tunnel/work';
/** Header of a work connection's upgrade: the one-time token the platform handed over the control stream. */
export const WORK_TOKEN_HEADER = 'insitu-work-token';
/** Longest binding line (`<service key>\n`) the platform sends first on a work connection. */
export const MAX_BINDING_BYTES = 256;
/** Work connections an agent session may hold on one node (at most; the agent may ask for fewer). */
export const MAX_WORK_CONNECTIONS = 256;
/** Service keys: `app@version`. */
export const SERVICE_KEY_PATTERN = /^[A-Za-z0-9._~@+-]{1,200}$/;
/** Path of the control stream inside a session; never reaches the agent's handler. */
export const CONTROL_PATH = '/_insitu/control';

/** Response headers of a `101`. */
export const SESSION_HEADER = 'insitu-session';
export const NODE_HEADER = 'insitu-node';
/** Headers of a forwarded request (node to node). */
export const FORWARD_HEADERS = {
  provider: 'insitu-provider',
  service: 'insitu-service',
  deadline: 'insitu-deadline-ms',
  idempotent: 'insitu-idempotent',
  /** `1`: a request for the agent itself (`TunnelRequest.toAgent`). */
  toAgent: 'insitu-to-agent',
  /** Set on a response whose error came from the tunnel on the peer, not from the agent. */
  error: 'insitu-tunnel-error',
} as const;
/** Header carrying the node-to-node authentication. */
export const PEER_AUTH_HEADER = 'insitu-peer-auth';

/**
 * HTTP/2 windows. One stream may use the whole link (4 MiB stream window, 16 MiB for
 * the session) — frp's small windows are what cost it throughput. Windows are credit,
 * not buffers: an idle session allocates none of it.
 */
export const STREAM_WINDOW = 4 * 1024 * 1024;
export const SESSION_WINDOW = 16 * 1024 * 1024;
/** Largest HTTP/2 frame we accept (bigger frames mean fewer headers per byte). */
export const MAX_FRAME_SIZE = 64 * 1024;
/** Longest control frame (one JSON line). */
export const MAX_CONTROL_FRAME_BYTES = 64 * 1024;

/** Headers that HTTP/2 forbids or that describe one hop only. */
export const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'host',
  'te',
  'http2-settings',
  'proxy-authorization',
  'proxy-authenticate',
  'trailer',
]);

const ServiceKey = Type.String({ minLength: 1, maxLength: 200, pattern: '^[A-Za-z0-9._~@+-]+$' });

/** One service an agent serves: `app@version`, with its relative weight and capacity. */
export const ServiceAnnouncementSchema = Type.Object(
  {
    key: ServiceKey,
    weight: Type.Optional(Type.Number({ minimum: 0.01, maximum: 1000 })),
    capacity: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 })),
  },
  { additionalProperties: false },
);
export type ServiceAnnouncement = Static<typeof ServiceAnnouncementSchema>;

const Services = Type.Array(ServiceAnnouncementSchema, { maxItems: 1000 });

/** Frames the agent sends on the control stream. */
export const AgentFrameSchema = Type.Union([
  Type.Object(
    {
      type: Type.Literal('hello'),
      agentVersion: Type.String({ maxLength: 100 }),
      services: Services,
      /** Work connections the agent will dial on request (0 or absent: HTTP/2 streams only). */
      workConnections: Type.Optional(Type.Integer({ minimum: 0, maximum: 256 })),
    },
    { additionalProperties: false },
  ),
  Type.Object({ type: Type.Literal('announce'), services: Services }, { additionalProperties: false }),
  Type.Object(
    {
      type: Type.Literal('reply'),
      id: Type.Integer({ minimum: 1 }),
      ok: Type.Boolean(),
      result: Type.Optional(Type.Unknown()),
      error: Type.Optional(
        Type.Object(
          { code: Type.String({ maxLength: 100 }), message: Type.String({ maxLength: 4000 }) },
          { additionalProperties: false },
        ),
      ),
    },
    { additionalProperties: false },
  ),
]);
export type AgentFrame = Static<typeof AgentFrameSchema>;

/** Frames the platform sends on the control stream. */
export const PlatformFrameSchema = Type.Union([
  Type.Object(
    {
      type: Type.Literal('welcome'),
      sessionId: Type.String({ maxLength: 100 }),
      nodeId: Type.String({ maxLength: 100 }),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      type: Type.Literal('work'),
      /** One-time tokens, one per work connection to dial (32 random bytes, base64url). */
      tokens: Type.Array(Type.String({ pattern: '^[A-Za-z0-9_-]{43}$' }), { minItems: 1, maxItems: 64 }),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      type: Type.Literal('command'),
      id: Type.Integer({ minimum: 1 }),
      name: Type.String({ minLength: 1, maxLength: 100 }),
      payload: Type.Optional(Type.Unknown()),
    },
    { additionalProperties: false },
  ),
]);
export type PlatformFrame = Static<typeof PlatformFrameSchema>;

/**
 * Strip hop-by-hop and pseudo headers, lower-case names, keep strings and string arrays;
 * written into `out` when given (one object per hop instead of a copy and a spread). On
 * the hot path of every call: `for...in` and no entry arrays, to keep garbage down.
 */
export function forwardableHeaders<T extends Record<string, string | string[] | number>>(
  headers: Record<string, string | string[] | number | undefined>,
  out?: T,
): Record<string, string | string[]> & T {
  const into = (out ?? {}) as Record<string, string | string[] | number>;
  for (const rawName in headers) {
    const value = headers[rawName];
    if (value === undefined || rawName.charCodeAt(0) === 58 /* ':' */) continue;
    const name = rawName.toLowerCase();
    if (HOP_BY_HOP.has(name)) continue;
    into[name] = typeof value === 'number' ? String(value) : value;
  }
  return into as Record<string, string | string[]> & T;
}

/**
 * Break off an HTTP/2 stream whose body cannot be completed: RST_STREAM, never a clean
 * end. Not `close(code)`: while the stream's writable side is open it ends it first, and
 * its END_STREAM can reach the peer before the RST_STREAM (always with `NGHTTP2_CANCEL`,
 * which nghttp2 defers; with other codes when a write is in progress), so a truncated
 * body would pass for a complete one.
 */
export function breakOff(stream: Http2Stream): void {
  if (stream.destroyed) return;
  stream.on('error', () => undefined);
  stream.destroy(new Error('the body broke off'));
}

/** The first value of a header. */
export function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
