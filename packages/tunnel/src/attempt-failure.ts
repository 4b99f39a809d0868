import type { TunnelMetrics } from './metrics.js';

/** Methods safe to send twice when the caller does not say. */
export const IDEMPOTENT_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export type FailureKind = 'refused' | 'died' | 'timeout' | 'aborted';

/** Why one attempt failed, and whether another session may take the request. */
export class AttemptFailure extends Error {
  constructor(
    readonly kind: FailureKind,
    message: string,
    readonly bodyStarted: boolean,
    /** Refused by our own per-session stream limit: busy, not failing. */
    readonly busy = false,
    /**
     * A work connection failed under the request before any byte of an answer, in a way
     * that lets the same session take it again over an HTTP/2 stream (see `attemptWork`).
     */
    readonly stale = false,
  ) {
    super(message);
  }
}

/** What an attempt needs besides the session and the request. */
export interface AttemptContext {
  nodeId: string;
  metrics: TunnelMetrics | undefined;
  /** A response body idle this long is cut. */
  idleTimeoutMs: number;
}
