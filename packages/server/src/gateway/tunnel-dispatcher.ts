import { DEPLOYMENT_HEADER, InsituError } from '@insitu/core';
import type { TunnelServer } from '@insitu/tunnel';
import type { DispatchRequest, DispatchResult, ServiceDispatcher } from './dispatcher.js';

function shuffled<T>(items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

/**
 * The gateway's way to application instances: through the reverse tunnel, to a session
 * of an agent that announced the deployment (the tunnel balances, ejects and retries
 * between sessions). With several deployments of the chosen version (several providers),
 * one is picked at random, and the next is tried when no session serves the first.
 */
export function tunnelDispatcher(tunnel: () => TunnelServer): ServiceDispatcher {
  return {
    async dispatch(request: DispatchRequest): Promise<DispatchResult> {
      let lastError: unknown;
      for (const target of shuffled(request.targets)) {
        const remaining = request.deadline - Date.now();
        if (remaining <= 0) break;
        try {
          const response = await tunnel().request({
            providerId: target.providerId,
            service: target.deploymentId,
            method: request.method,
            path: request.path,
            headers: { ...request.headers, [DEPLOYMENT_HEADER]: target.deploymentId },
            ...(request.body ? { body: request.body } : {}),
            deadlineMs: remaining,
            idempotent: request.idempotent,
            signal: request.signal,
          });
          return {
            status: response.status,
            headers: response.headers,
            body: response.body,
            providerId: target.providerId,
            deploymentId: target.deploymentId,
            agentId: response.agentId,
          };
        } catch (error) {
          lastError = error;
          // Only "nobody serves it" lets us try another provider: the request was not sent.
          if (!(error instanceof InsituError) || error.code !== 'INSITU_TUNNEL_NO_ROUTE') break;
        }
      }
      if (lastError instanceof InsituError) {
        throw new InsituError(lastError.code, lastError.message, {
          details: { where: 'tunnel', ...(lastError.details as object | undefined) },
          ...(lastError.headers ? { headers: lastError.headers } : {}),
          cause: lastError,
        });
      }
      if (lastError instanceof Error) throw lastError;
      throw new InsituError('INSITU_GATEWAY_TIMEOUT', 'the deadline passed before the call could be sent', {
        details: { where: 'gateway' },
      });
    },
  };
}
