import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InsituError } from '@insitu/core';
import { PrivacyBudget } from '../src/data-api/privacy-budget.js';

describe("privacy budget: the platform's provider-wide ledger decides, the agent's own count is a floor", () => {
  it('charges the ledger before counting locally; a refusal or an unreachable platform charges nothing here', async () => {
    const budget = new PrivacyBudget();
    const charged: Array<[string, string, number, number]> = [];
    let platformSpent = 0;
    budget.setLedger(async (caller, dataset, epsilon, total) => {
      // Another agent of the provider already spent 1.5 of this budget.
      if (1.5 + platformSpent + epsilon > total + 1e-9)
        throw new InsituError('INSITU_POLICY_BUDGET_SPENT', 'spent over all agents of the provider');
      platformSpent += epsilon;
      charged.push([caller, dataset, epsilon, total]);
    });
    await budget.charge('dep-a', 'sales', 0.5, 2);
    assert.deepEqual(charged, [['dep-a', 'sales', 0.5, 2]]);
    assert.equal(budget.spentBy('dep-a', 'sales'), 0.5);
    await assert.rejects(budget.charge('dep-a', 'sales', 0.5, 2), { code: 'INSITU_POLICY_BUDGET_SPENT' });
    assert.equal(budget.spentBy('dep-a', 'sales'), 0.5, 'alone this agent had budget left; the sum refused');

    budget.setLedger(() => Promise.reject(new Error('connect ECONNREFUSED')));
    await assert.rejects(budget.charge('dep-b', 'sales', 0.1, 2), /ECONNREFUSED/, 'no ledger, no noised answer');
    assert.equal(budget.spentBy('dep-b', 'sales'), 0);
  });

  it("the agent's own count still refuses what it alone answered past the budget, without asking", async () => {
    const budget = new PrivacyBudget();
    let asked = 0;
    budget.setLedger(async () => {
      asked++;
    });
    await budget.charge('dep-a', 'sales', 1, 1);
    await assert.rejects(budget.charge('dep-a', 'sales', 0.1, 1), { code: 'INSITU_POLICY_BUDGET_SPENT' });
    assert.equal(asked, 1);
  });
});
