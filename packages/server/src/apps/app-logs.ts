import { AGENT_LOGS_PATH, DEPLOYMENT_HEADER, InsituError } from '@insitu/core';
import type { TunnelServer } from '@insitu/tunnel';
import type { Readable } from 'node:stream';

/**
 * Ask the provider's agent, through the tunnel, for what a deployment's instances wrote
 * (the agent answers `AGENT_LOGS_PATH` itself): first an agent that announced the
 * deployment (it runs there), else any agent of the provider (a crash-looping deployment
 * announces nothing). Returns the agent's stream of JSON lines.
 */
export async function readAppLogs(
  tunnel: TunnelServer,
  request: { providerId: string; deploymentId: string; lines: number; follow: boolean; signal: AbortSignal },
): Promise<Readable> {
  const path = `${AGENT_LOGS_PATH}/${encodeURIComponent(request.deploymentId)}?lines=${request.lines}${request.follow ? '&follow=1' : ''}`;
  const ask = (service?: string) =>
    tunnel.request({
      providerId: request.providerId,
      ...(service ? { service } : {}),
      method: 'GET',
      path,
      headers: { [DEPLOYMENT_HEADER]: request.deploymentId },
      deadlineMs: 10_000,
      idempotent: true,
      // The agent answers it, not the deployment's application: never over a work connection.
      toAgent: true,
      signal: request.signal,
    });
  let response;
  try {
    response = await ask(request.deploymentId);
  } catch (error) {
    if (!(error instanceof InsituError) || error.code !== 'INSITU_TUNNEL_NO_ROUTE') throw error;
    response = await ask();
  }
  if (response.status !== 200) {
    response.body.resume();
    throw new InsituError(
      'INSITU_APP_UNAVAILABLE',
      `deployment ${request.deploymentId} does not run on the agent that answered (${response.agentId}); try again when it runs`,
    );
  }
  return response.body;
}
