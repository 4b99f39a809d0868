import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { InsituError } from '@insitu/core';

/**
 * The epsilon each caller has spent on each dataset with a noise policy. The caller is the
 * data API's identity (a deployment), not the API key of whoever called the service: keys
 * are cheap to mint and the application sees every caller's answers, so a budget per key
 * could be multiplied at will. With a file, every charge is written (and fsynced) before
 * the query runs, so a restarted agent does not forget what was spent.
 */
export class PrivacyBudget {
  private readonly spent = new Map<string, number>();
  /**
   * The provider-wide budget at the platform (every agent of the provider charges there);
   * unset without a platform (`insitu app dev`). A charge it refuses, or cannot make, is
   * not answered: without the platform no noised answer leaves.
   */
  private ledger: BudgetLedger | undefined;

  constructor(private readonly file?: string) {
    if (!file) return;
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    const parsed = JSON.parse(text) as { spent?: Record<string, unknown> };
    for (const [key, value] of Object.entries(parsed.spent ?? {}))
      if (typeof value === 'number' && Number.isFinite(value) && value >= 0) this.spent.set(key, value);
  }

  private static key(caller: string, dataset: string): string {
    return JSON.stringify([caller, dataset]);
  }

  /** Epsilon spent so far by `caller` on `dataset`. */
  spentBy(caller: string, dataset: string): number {
    return this.spent.get(PrivacyBudget.key(caller, dataset)) ?? 0;
  }

  /**
   * Charge `epsilon` to `caller` on `dataset`, or throw `INSITU_POLICY_BUDGET_SPENT` when
   * the charge would go beyond `budget` (nothing is charged then).
   */
  async charge(caller: string, dataset: string, epsilon: number, budget: number): Promise<void> {
    const key = PrivacyBudget.key(caller, dataset);
    const check = () => {
      const before = this.spent.get(key) ?? 0;
      // A tiny tolerance, so that e.g. ten charges of 0.1 fit a budget of 1.
      if (before + epsilon > budget + 1e-9)
        throw new InsituError(
          'INSITU_POLICY_BUDGET_SPENT',
          `the privacy budget on dataset ${dataset} is spent (${round(before)} of ${budget}; a query costs ${epsilon})`,
        );
      return before;
    };
    check();
    // The platform's sum over all agents of the provider decides; this agent's own count stays a floor.
    if (this.ledger) await this.ledger(caller, dataset, epsilon, budget);
    this.spent.set(key, check() + epsilon);
    this.save();
  }

  /** Charge the platform's provider-wide budget too (set once the agent has a platform). */
  setLedger(ledger: BudgetLedger | undefined): void {
    this.ledger = ledger;
  }

  private save(): void {
    if (!this.file) return;
    const tmp = `${this.file}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, JSON.stringify({ spent: Object.fromEntries(this.spent) }));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.file);
  }
}

/** Charges the platform's budget of the provider; throws (`INSITU_POLICY_BUDGET_SPENT` or any failure) to refuse. */
export type BudgetLedger = (caller: string, dataset: string, epsilon: number, budget: number) => Promise<void>;

function round(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}
