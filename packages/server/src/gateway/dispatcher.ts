import type { Readable } from 'node:stream';
import { InsituError } from '@insitu/core';

/** Where a call can go: a deployment at a provider. */
export interface DispatchTarget {
  providerId: string;
  deploymentId: string;
}

/** A call on its way to an application instance. */
export interface DispatchRequest {
  /** Deployments of the chosen version that run; the dispatcher picks (and may retry on another). */
  targets: readonly DispatchTarget[];
  method: string;
  /** Path and query inside the service, e.g. `/sales?city=Lyon`. */
  path: string;
  headers: Record<string, string>;
  body?: Readable;
  /** Safe to send twice (GET, HEAD, OPTIONS, or no body). */
  idempotent: boolean;
  /** Epoch ms after which the call must have failed. */
  deadline: number;
  requestId: string;
  signal: AbortSignal;
}

/** The application's answer, streaming. */
export interface DispatchResult {
  status: number;
  headers: Record<string, string | string[]>;
  body: Readable;
  providerId: string;
  deploymentId: string;
  agentId: string;
}

/**
 * How the gateway reaches application instances. The tunnel implements it in
 * production (through the agents' reverse sessions). Errors are `InsituError`s whose
 * `details.where` says where the call failed: `tunnel`, `agent` or `application`.
 */
export interface ServiceDispatcher {
  dispatch(request: DispatchRequest): Promise<DispatchResult>;
}

/** The dispatcher of a platform without a tunnel: every call is 503. */
export const NO_DISPATCHER: ServiceDispatcher = {
  async dispatch() {
    throw new InsituError('INSITU_SERVICE_UNAVAILABLE', 'no agent can be reached: the tunnel is not running', {
      details: { where: 'gateway' },
    });
  },
};
