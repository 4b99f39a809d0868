import type { AlertCondition } from './alerts.js';

/** A server that can answer deep probes: its node and base URL. */
export interface ProbeTarget {
  node: string;
  url: string;
}

/**
 * The leader's deep probes (run beside its ticks, every `timing.deepProbeIntervalMs`):
 * each run returns the conditions that hold (an unhealthy etcd member, a platform
 * database that refuses a write, an agent that does not answer its built-in probe path).
 */
export interface DeepProber {
  run(input: { servers: readonly ProbeTarget[]; leads(): boolean }): Promise<AlertCondition[]>;
}
