import type { AgentSession } from './agent-session.js';

/** How a service's sessions share its requests. */
export type BalancerPolicy = 'p2c' | 'round-robin' | 'weighted';

/** A session as the balancer sees it for one service. */
export interface Candidate {
  session: AgentSession;
  weight: number;
  capacity: number | undefined;
}

/**
 * Provider → service → the live sessions that serve it. Sessions enter when their
 * agent says hello, move when it announces, and leave when they close. A request with
 * no service names any session of the provider (control work, bundles).
 */
export class RoutingTable {
  readonly #byProvider = new Map<string, Set<AgentSession>>();
  #rr = 0;
  readonly #smooth = new WeakMap<AgentSession, number>();

  add(session: AgentSession): void {
    const provider = session.identity.providerId;
    let set = this.#byProvider.get(provider);
    if (!set) {
      set = new Set();
      this.#byProvider.set(provider, set);
    }
    set.add(session);
  }

  remove(session: AgentSession): void {
    const set = this.#byProvider.get(session.identity.providerId);
    if (!set) return;
    set.delete(session);
    if (set.size === 0) this.#byProvider.delete(session.identity.providerId);
  }

  /** Every routable session of a provider that serves `service` (any service when undefined). */
  candidates(providerId: string, service: string | undefined): Candidate[] {
    const out: Candidate[] = [];
    for (const session of this.#byProvider.get(providerId) ?? []) {
      if (!session.open || !session.ready) continue;
      if (service === undefined) {
        out.push({ session, weight: 1, capacity: undefined });
        continue;
      }
      const announced = session.services.find((s) => s.key === service);
      if (announced) out.push({ session, weight: announced.weight ?? 1, capacity: announced.capacity });
    }
    return out;
  }

  /** Every session, for the cluster view and metrics. */
  all(): AgentSession[] {
    return [...this.#byProvider.values()].flatMap((set) => [...set]);
  }

  providers(): string[] {
    return [...this.#byProvider.keys()];
  }

  /**
   * Pick a session, skipping `exclude` (the one a retry left). Ejected sessions and
   * sessions at capacity are used only when nothing else is left.
   */
  pick(candidates: readonly Candidate[], policy: BalancerPolicy, exclude?: AgentSession): Candidate | undefined {
    const now = Date.now();
    const usable = candidates.filter((c) => c.session !== exclude);
    const healthy = usable.filter(
      (c) => !c.session.isEjected(now) && (c.capacity === undefined || c.session.inFlight < c.capacity),
    );
    const pool = healthy.length > 0 ? healthy : usable.filter((c) => !c.session.isEjected(now));
    const from = pool.length > 0 ? pool : usable;
    if (from.length <= 1) return from[0];
    switch (policy) {
      case 'round-robin':
        return from[this.#rr++ % from.length];
      case 'weighted':
        return this.#smoothWeighted(from);
      default:
        return p2c(from, now);
    }
  }

  /** nginx's smooth weighted round-robin: even spread, exact proportions. */
  #smoothWeighted(from: readonly Candidate[]): Candidate | undefined {
    let total = 0;
    let best: Candidate | undefined;
    let bestScore = -Infinity;
    for (const c of from) {
      const score = (this.#smooth.get(c.session) ?? 0) + c.weight;
      this.#smooth.set(c.session, score);
      total += c.weight;
      if (score > bestScore) {
        bestScore = score;
        best = c;
      }
    }
    if (best) this.#smooth.set(best.session, bestScore - total);
    return best;
  }
}

/** Latencies closer than this factor count as equal. */
const LATENCY_TOLERANCE = 2;
/** ...and so are latencies less than this apart: sub-millisecond jitter is not a signal. */
const LATENCY_SLACK_MS = 1;

/**
 * Power of two random choices: pick two at random, keep the better.
 *
 * - Cost is outstanding work × EWMA latency per unit of weight; a candidate whose cost is
 *   more than twice (+1 ms) the other's loses (a slow agent, or one with a real backlog).
 * - Otherwise a backlog difference decides only when it is large (≥ 4 requests and
 *   ≥ half the larger backlog): responses are read in batches, so whichever session was
 *   read last always looks a little less loaded, and following that noise skews the
 *   shares of equal agents by ±20%.
 * - Otherwise a coin weighted by the announced weights.
 */
function p2c(from: readonly Candidate[], now: number): Candidate | undefined {
  const i = Math.floor(Math.random() * from.length);
  let j = Math.floor(Math.random() * (from.length - 1));
  if (j >= i) j++;
  const a = from[i];
  const b = from[j];
  if (!a || !b) return a ?? b;
  const la = a.session.inFlight / a.weight;
  const lb = b.session.inFlight / b.weight;
  const ea = a.session.ewmaMs(now);
  const eb = b.session.ewmaMs(now);
  const ca = (la + 1) * ea;
  const cb = (lb + 1) * eb;
  if (ea > eb * LATENCY_TOLERANCE + LATENCY_SLACK_MS && ca > cb) return b;
  if (eb > ea * LATENCY_TOLERANCE + LATENCY_SLACK_MS && cb > ca) return a;
  const gap = Math.abs(la - lb);
  if (gap >= 4 && gap >= Math.max(la, lb) / 2) return la < lb ? a : b;
  return Math.random() * (a.weight + b.weight) < a.weight ? a : b;
}
