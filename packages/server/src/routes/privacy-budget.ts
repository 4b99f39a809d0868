import Type from 'typebox';
import { InsituError } from '@insitu/core';
import { agentOf, type App } from '../app.js';
import type { ServerContext } from '../context.js';
import { NoContent } from '../openapi-responses.js';

const ChargeBody = Type.Object(
  {
    key: Type.String({ minLength: 1, maxLength: 200, description: 'Whose budget: a deployment id or a job version' }),
    dataset: Type.String({ minLength: 1, maxLength: 128 }),
    epsilon: Type.Number({ exclusiveMinimum: 0, maximum: 1_000_000 }),
    budget: Type.Number({ exclusiveMinimum: 0, maximum: 1_000_000, description: "The dataset's effective budget" }),
  },
  { additionalProperties: false },
);

/**
 * The provider-wide privacy budget: an agent charges a noised answer here before it runs
 * the query, so every agent of a provider draws on one budget per key and dataset (each
 * agent's own file only remembers what it charged).
 */
export function registerPrivacyBudgetRoutes(app: App, ctx: ServerContext): void {
  app.post(
    '/api/v1/agents/self/privacy-budget/charge',
    {
      config: { auth: 'agent', errors: [403] },
      schema: {
        tags: ['agents'],
        summary:
          "Charge epsilon of a noised answer to the provider's privacy budget (403 INSITU_POLICY_BUDGET_SPENT when it would pass the budget; nothing is charged then)",
        body: ChargeBody,
        response: { 204: NoContent },
      },
    },
    async (request, reply) => {
      const agent = agentOf(request);
      const { key, dataset, epsilon, budget } = request.body;
      await ctx.store.privacyBudget.ensure({ providerId: agent.providerId, key, dataset });
      const result = await ctx.store.transaction((tx) =>
        tx.privacyBudget.charge({ providerId: agent.providerId, key, dataset, epsilon, budget }),
      );
      if (!result.charged)
        throw new InsituError(
          'INSITU_POLICY_BUDGET_SPENT',
          `the privacy budget on dataset ${dataset} is spent over all agents of the provider (${Math.round(result.spentBefore * 1e6) / 1e6} of ${budget}; a query costs ${epsilon})`,
        );
      return reply.status(204).send();
    },
  );
}
