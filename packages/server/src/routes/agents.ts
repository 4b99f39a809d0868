import { InsituError, generateSecret, hashSecret, newId } from '@insitu/core';
import { agentOf, userOf, type App } from '../app.js';
import { requireOrgRole, rolesIn } from '../auth/principal.js';
import { AgentListQuery, AgentPage, AgentSchema, EnrolBody, EnrolResult, IdParams } from '../api-schemas.js';
import type { ServerContext } from '../context.js';
import { pageOf, pageRequest } from '../pagination.js';
import { presentAgent } from '../presenters.js';
import { NoContent } from '../openapi-responses.js';
import { notFound } from '../errors.js';

/** Agent enrolment (token → credential), and agents as their provider's organisation sees them. */
export function registerAgentRoutes(app: App, ctx: ServerContext): void {
  const { store } = ctx;

  app.post(
    '/api/v1/agents/enrol',
    {
      config: { auth: 'public', errors: [401] },
      schema: {
        tags: ['agents'],
        summary: 'Exchange a single-use enrolment token for a long-lived agent credential (only its hash is stored)',
        security: [],
        body: EnrolBody,
        response: { 201: EnrolResult },
      },
    },
    async (request, reply) => {
      const { token, name, hostname, version } = request.body;
      const credential = generateSecret('agt');
      const agent = await store.transaction(async (tx) => {
        const agentId = newId('agt');
        const used = await tx.providers.consumeToken(hashSecret(token), agentId);
        if (!used)
          throw new InsituError(
            'INSITU_TOKEN_INVALID',
            'the enrolment token is unknown, expired, revoked or used already',
          );
        return tx.providers.createAgent({
          id: agentId,
          providerId: used.provider_id,
          name,
          credentialHash: hashSecret(credential),
          hostname: hostname ?? '',
          version: version ?? '',
        });
      });
      request.log.info({ agentId: agent.id, providerId: agent.provider_id }, 'agent enrolled');
      return reply.status(201).send({ agent: presentAgent(agent), credential });
    },
  );

  app.get(
    '/api/v1/agents/self',
    {
      config: { auth: 'agent' },
      schema: { tags: ['agents'], summary: 'The calling agent (agent credential)', response: { 200: AgentSchema } },
    },
    async (request) => {
      const agent = await store.providers.getAgent(agentOf(request).agentId);
      if (!agent) throw new InsituError('INSITU_AGENT_NOT_FOUND', 'agent not found');
      await store.providers.touchAgent(agent.id);
      return presentAgent(agent);
    },
  );

  app.get(
    '/api/v1/agents',
    {
      config: { errors: [404] },
      schema: {
        tags: ['agents'],
        summary: "Agents: of one provider, or of all your organisations' providers (platform admins: all)",
        querystring: AgentListQuery,
        response: { 200: AgentPage },
      },
    },
    async (request) => {
      const principal = userOf(request);
      const { provider: providerId } = request.query;
      const page = pageRequest(request.query, { provider: providerId });
      let filter: { providerId?: string; orgIds?: string[] } = {};
      if (providerId) {
        const provider = await store.providers.get(providerId);
        if (!provider) throw notFound('provider', providerId);
        requireOrgRole(principal, provider.org_id, ['provider'], {
          notMember: new InsituError('INSITU_FORBIDDEN', "only the provider's organisation may list its agents"),
        });
        filter = { providerId };
      } else if (!principal.platformAdmin) {
        // The agents of every organisation where the caller holds the provider role.
        filter = { orgIds: [...principal.orgs.keys()].filter((orgId) => rolesIn(principal, orgId).has('provider')) };
      }
      const rows = await store.providers.listAgents({ ...filter, limit: page.limit + 1, offset: page.offset });
      const result = pageOf(rows, page);
      return { ...result, items: result.items.map(presentAgent) };
    },
  );

  app.get(
    '/api/v1/agents/:id',
    {
      schema: {
        tags: ['agents'],
        summary: 'One agent (its provider organisation)',
        params: IdParams,
        response: { 200: AgentSchema },
      },
    },
    async (request) => {
      const principal = userOf(request);
      const agent = await store.providers.getAgent(request.params.id);
      const provider = agent ? await store.providers.get(agent.provider_id) : undefined;
      if (!agent || !provider || !(principal.platformAdmin || principal.orgs.has(provider.org_id))) {
        throw new InsituError('INSITU_AGENT_NOT_FOUND', `no agent ${request.params.id}`);
      }
      return presentAgent(agent);
    },
  );

  app.delete(
    '/api/v1/agents/:id',
    {
      config: { errors: [409] },
      schema: {
        tags: ['agents'],
        summary: "Revoke an agent's credential (provider role)",
        params: IdParams,
        response: { 204: NoContent },
      },
    },
    async (request, reply) => {
      const principal = userOf(request);
      const agent = await store.providers.getAgent(request.params.id);
      const provider = agent ? await store.providers.get(agent.provider_id) : undefined;
      if (!agent || !provider || !(principal.platformAdmin || principal.orgs.has(provider.org_id))) {
        throw new InsituError('INSITU_AGENT_NOT_FOUND', `no agent ${request.params.id}`);
      }
      requireOrgRole(principal, provider.org_id, ['provider']);
      if (!(await store.providers.revokeAgent(agent.id)))
        throw new InsituError('INSITU_CONFLICT', 'the agent is revoked already');
      app.tunnel.closeAgent(agent.id);
      request.log.info({ agentId: agent.id }, 'agent revoked');
      return reply.status(204).send();
    },
  );
}
