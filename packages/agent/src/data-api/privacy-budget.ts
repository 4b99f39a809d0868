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
  charge(caller: string, dataset: string, epsilon: number, budget: number): void {
    const key = PrivacyBudget.key(caller, dataset);
    const before = this.spent.get(key) ?? 0;
    // A tiny tolerance, so that e.g. ten charges of 0.1 fit a budget of 1.
    if (before + epsilon > budget + 1e-9)
      throw new InsituError(
        'INSITU_POLICY_BUDGET_SPENT',
        `the privacy budget on dataset ${dataset} is spent (${round(before)} of ${budget}; a query costs ${epsilon})`,
      );
    this.spent.set(key, before + epsilon);
    this.save();
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

function round(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}
