import { InsituError, type Logger } from '@insitu/core';
import type { AgentSession } from './agent-session.js';
import { AttemptFailure, IDEMPOTENT_METHODS, type AttemptContext } from './attempt-failure.js';
import type { BalancerPolicy, RoutingTable } from './routing-table.js';
import type { TunnelRequest, TunnelResponse } from './server-types.js';
import { attemptStream } from './stream-attempt.js';
import { attemptWork } from './work-attempt.js';

/** What {@link LocalDispatch} works with. */
export interface LocalDispatchOptions extends AttemptContext {
  table: RoutingTable;
  logger: Logger;
  /** Streams in flight a session may hold before it counts as busy. */
  maxStreams: number;
  balancer: BalancerPolicy | undefined;
  /** The server's default deadline (for messages). */
  deadlineMs: number | undefined;
  /** Cluster: send the request to another node when no session here is left after a failure. */
  forward?: (request: TunnelRequest, deadline: number) => Promise<TunnelResponse>;
}

/**
 * Local dispatch: picks one of this node's sessions for a request (the balancer), sends
 * it over a work connection or an HTTP/2 stream, ejects failing sessions and retries
 * once on another session what is safe to retry.
 */
export class LocalDispatch {
  readonly #o: LocalDispatchOptions;

  constructor(options: LocalDispatchOptions) {
    this.#o = options;
  }

  /** Send a request through one of this node's sessions (never forwarding, unless every session failed). */
  async request(request: TunnelRequest, deadline: number): Promise<TunnelResponse> {
    const policy = this.#o.balancer ?? 'p2c';
    const method = request.method.toUpperCase();
    const idempotent = request.idempotent ?? IDEMPOTENT_METHODS.has(method);
    const replayable = request.body === undefined || typeof request.body === 'string' || Buffer.isBuffer(request.body);
    let excluded: AgentSession | undefined;
    for (let attempt = 0; attempt < 2; attempt++) {
      const candidates = this.#o.table.candidates(request.providerId, request.service);
      const chosen = this.#o.table.pick(candidates, policy, excluded);
      if (!chosen) {
        if (attempt > 0 && this.#o.forward) return this.#o.forward(request, deadline);
        throw new InsituError(
          'INSITU_TUNNEL_NO_ROUTE',
          `no live agent session serves ${request.service ?? 'any service'} of provider ${request.providerId}${attempt > 0 ? ' (after a retry)' : ''}`,
          { details: { providerId: request.providerId, service: request.service }, headers: { 'retry-after': '1' } },
        );
      }
      try {
        return await this.attempt(chosen.session, request, method, deadline);
      } catch (error) {
        if (!(error instanceof AttemptFailure)) throw error;
        const session = chosen.session;
        if (error.kind !== 'aborted' && !error.busy) {
          session.recordFailure();
          if (session.open && (session.consecutiveFailures >= 3 || error.kind === 'refused') && !session.isEjected()) {
            session.eject(error.message);
            this.#o.metrics?.ejections.inc();
          }
        }
        const retryable =
          attempt === 0 &&
          !error.bodyStarted &&
          (error.kind === 'refused' || (error.kind === 'died' && idempotent)) &&
          (replayable || !error.bodyStarted) &&
          Date.now() < deadline;
        if (retryable) {
          this.#o.metrics?.retries.inc({ reason: error.kind });
          excluded = session;
          continue;
        }
        if (error.kind === 'timeout') {
          throw new InsituError(
            'INSITU_TUNNEL_TIMEOUT',
            `provider ${request.providerId} did not answer within ${request.deadlineMs ?? this.#o.deadlineMs ?? 30_000} ms`,
            {
              details: { providerId: request.providerId, service: request.service },
            },
          );
        }
        if (error.kind === 'aborted')
          throw new InsituError('INSITU_TUNNEL_UPSTREAM_FAILED', 'the request was aborted by its caller');
        if (error.busy) {
          throw new InsituError(
            'INSITU_TUNNEL_UNAVAILABLE',
            `every session of provider ${request.providerId} is at its stream limit`,
            {
              headers: { 'retry-after': '1' },
              details: { providerId: request.providerId, service: request.service },
            },
          );
        }
        throw new InsituError(
          'INSITU_TUNNEL_UPSTREAM_FAILED',
          `the agent session failed before answering: ${error.message}`,
          {
            details: { providerId: request.providerId, service: request.service, retried: attempt > 0 },
          },
        );
      }
    }
    throw new InsituError('INSITU_TUNNEL_UPSTREAM_FAILED', 'no session answered');
  }

  attempt(session: AgentSession, request: TunnelRequest, method: string, deadline: number): Promise<TunnelResponse> {
    if (session.inFlight >= this.#o.maxStreams) {
      return Promise.reject(
        new AttemptFailure('refused', `session ${session.id} has ${session.inFlight} streams in flight`, false, true),
      );
    }
    const service = request.service;
    if (service !== undefined && session.work && !request.toAgent) {
      if (session.work.canServe(service))
        return attemptWork(this.#o, session, session.work, service, request, method, deadline).catch(
          (error: unknown) => {
            if (!(error instanceof AttemptFailure && error.stale)) throw error;
            // Not the session's fault, and not a retry on another session: the same
            // session takes the request over its HTTP/2 connection.
            this.#o.metrics?.retries.inc({ reason: 'stale_work_connection' });
            this.#o.logger.debug(
              { sessionId: session.id, reason: error.message },
              'work connection was stale: retrying',
            );
            return attemptStream(this.#o, session, request, method, deadline);
          },
        );
      session.work.refill();
    }
    return attemptStream(this.#o, session, request, method, deadline);
  }
}
