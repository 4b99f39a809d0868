import { InsituError } from '@insitu/core';
import { desiredFor, desiredStateFor } from '../apps/desired-state.js';
import { jobsFor } from './jobs.js';
import type { DeploymentReconciler } from '../apps/reconciler.js';
import { agentOf, type App } from '../app.js';
import { AgentDesiredSchema, AgentStatusBody, DigestParams } from '../api-schemas.js';
import type { ServerContext } from '../context.js';
import { Binary, NoContent } from '../openapi-responses.js';

/**
 * The agent's side of deployments: what to run, where to fetch the bundles, and the
 * status report. Agents call these with their credential; the tunnel pushes a nudge when
 * something changes so they need not wait for their next poll.
 */
export function registerAgentControlRoutes(app: App, ctx: ServerContext, reconciler: DeploymentReconciler): void {
  const { store } = ctx;

  app.get(
    '/api/v1/agents/self/desired',
    {
      config: { auth: 'agent' },
      schema: {
        tags: ['agents'],
        summary: "The deployments this agent's provider should run, and the output policies set on the platform",
        response: { 200: AgentDesiredSchema },
      },
    },
    async (request) => {
      const agent = agentOf(request);
      await store.providers.touchAgent(agent.agentId);
      return desiredStateFor(store, agent.providerId);
    },
  );

  app.put(
    '/api/v1/agents/self/status',
    {
      config: { auth: 'agent' },
      schema: {
        tags: ['agents'],
        summary: 'Report the state of every deployment this agent runs',
        body: AgentStatusBody,
        response: { 204: NoContent },
      },
    },
    async (request, reply) => {
      const agent = agentOf(request);
      await reconciler.report(agent.agentId, agent.providerId, request.body.deployments);
      return reply.status(204).send();
    },
  );

  app.get(
    '/api/v1/bundles/:digest',
    {
      config: { auth: 'agent' },
      schema: {
        tags: ['agents'],
        summary: "A bundle (canonical tarball) of a version deployed at this agent's provider",
        params: DigestParams,
        produces: ['application/x-tar'],
        response: { 200: Binary('application/x-tar', 'The canonical tarball') },
      },
    },
    async (request, reply) => {
      const agent = agentOf(request);
      const desired = await desiredFor(store, agent.providerId);
      const jobs = await jobsFor(ctx, agent.providerId, agent.agentId);
      if (![...desired, ...jobs].some((d) => d.digest === request.params.digest)) {
        throw new InsituError('INSITU_NOT_FOUND', `no bundle ${request.params.digest} is deployed at this provider`);
      }
      const data = await store.blobs.get(request.params.digest);
      if (!data) throw new InsituError('INSITU_NOT_FOUND', `bundle ${request.params.digest} is missing`);
      return reply.type('application/x-tar').header('insitu-digest', `sha256:${request.params.digest}`).send(data);
    },
  );
}
