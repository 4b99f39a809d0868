import type { RepositoryContext } from './context.js';

/** The result of a charge: whether it fitted, and what was spent before it. */
export interface BudgetCharge {
  charged: boolean;
  spentBefore: number;
}

/** Epsilon spent per provider, budget key and dataset, summed over all the provider's agents. */
export class PrivacyBudgetRepository {
  constructor(private readonly ctx: RepositoryContext) {}

  /**
   * Create the row of a budget at 0 if it does not exist yet. Call it before the charge's
   * transaction, on its own: then the charge only locks an existing row (a locking read of
   * a missing one takes gap locks on MySQL, where concurrent first charges deadlock).
   */
  async ensure(input: { providerId: string; key: string; dataset: string }): Promise<void> {
    const insert = this.ctx.db.insertInto('privacy_budget').values({
      provider_id: input.providerId,
      budget_key: input.key,
      dataset: input.dataset,
      spent: 0,
      updated_at: this.ctx.now(),
    });
    await (this.ctx.dialect === 'mysql' ? insert.ignore() : insert.onConflict((oc) => oc.doNothing())).execute();
  }

  /**
   * Charge `epsilon` unless the total would pass `budget` (a tiny tolerance lets ten charges
   * of 0.1 fit a budget of 1). Call inside a transaction: the row is locked (MySQL) or the
   * database is (SQLite) from the read to the write, so concurrent charges add up. Call
   * {@link ensure} first.
   */
  async charge(input: {
    providerId: string;
    key: string;
    dataset: string;
    epsilon: number;
    budget: number;
  }): Promise<BudgetCharge> {
    let read = this.ctx.db
      .selectFrom('privacy_budget')
      .select('spent')
      .where('provider_id', '=', input.providerId)
      .where('budget_key', '=', input.key)
      .where('dataset', '=', input.dataset);
    if (this.ctx.dialect === 'mysql') read = read.forUpdate();
    const row = await read.executeTakeFirst();
    const spentBefore = Number(row?.spent ?? 0);
    if (spentBefore + input.epsilon > input.budget + 1e-9) return { charged: false, spentBefore };
    await this.ctx.db
      .updateTable('privacy_budget')
      .set({ spent: spentBefore + input.epsilon, updated_at: this.ctx.now() })
      .where('provider_id', '=', input.providerId)
      .where('budget_key', '=', input.key)
      .where('dataset', '=', input.dataset)
      .execute();
    return { charged: true, spentBefore };
  }
}
