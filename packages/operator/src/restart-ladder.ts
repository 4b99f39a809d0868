/** The restart policy of one service (the cluster spec's `restart:`). */
export interface LadderPolicy {
  backoffInitialMs: number;
  backoffMaxMs: number;
  /** ±fraction of each back-off (0.25: ±25 %). */
  jitter: number;
  /** Healthy this long: the next crash restarts at once again. */
  resetAfterMs: number;
  /** Restarts allowed within `windowMs`. */
  budget: number;
  windowMs: number;
}

/** What to do after an exit: restart after `delayMs`, or give up (the budget ran out). */
export type LadderDecision =
  { action: 'restart'; delayMs: number; attempt: number } | { action: 'fail'; restartsInWindow: number };

/**
 * The recovery ladder of one service on one node: the first crash restarts at once, then
 * the back-off doubles from `backoffInitialMs` to `backoffMaxMs` with ±`jitter`; a service
 * healthy for `resetAfterMs` starts again from the bottom. More than `budget` restarts
 * within `windowMs` fails it. Pure: the clock and the random source are passed in.
 */
export class RestartLadder {
  #step = 0;
  #restarts: number[] = [];

  constructor(
    private readonly policy: LadderPolicy,
    private readonly random: () => number = Math.random,
  ) {}

  /** The service exited (or was killed as hung) at `now`; `healthySince` is when it last became healthy, if it did. */
  onExit(now: number, healthySince: number | undefined): LadderDecision {
    if (healthySince !== undefined && now - healthySince >= this.policy.resetAfterMs) this.#step = 0;
    this.#restarts = this.#restarts.filter((at) => now - at < this.policy.windowMs);
    if (this.#restarts.length >= this.policy.budget) return { action: 'fail', restartsInWindow: this.#restarts.length };
    this.#restarts.push(now);
    const step = this.#step;
    this.#step += 1;
    if (step === 0) return { action: 'restart', delayMs: 0, attempt: 1 };
    const base = Math.min(this.policy.backoffMaxMs, this.policy.backoffInitialMs * 2 ** (step - 1));
    const factor = 1 + this.policy.jitter * (2 * this.random() - 1);
    return {
      action: 'restart',
      delayMs: Math.max(0, Math.round(Math.min(this.policy.backoffMaxMs * (1 + this.policy.jitter), base * factor))),
      attempt: step + 1,
    };
  }

  /** Restarts counted in the window at `now`. */
  restartsInWindow(now: number): number {
    return this.#restarts.filter((at) => now - at < this.policy.windowMs).length;
  }

  /** Forget everything (an administrator's restart, a new spec). */
  reset(): void {
    this.#step = 0;
    this.#restarts = [];
  }
}
