import { readFileSync } from 'node:fs';
import { CLUSTER_AUTH_HEADER, InsituError, signClusterRequest, type Logger } from '@insitu/core';
import type { AlertCondition } from './alerts.js';
import type { NodeConfig } from './node-config.js';
import type { OperatorEvent } from './records.js';

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
  /** Copy operator events into the platform database through a server. */
  pushEvents?(target: ProbeTarget, events: readonly OperatorEvent[]): Promise<void>;
}

/** Deep-probe conditions that are the result of one probe, and so may be one slow answer. */
const PROBE_FAILURES = new Set([
  'etcd-member-unhealthy',
  'server-probe-failed',
  'database-write-failed',
  'agent-probe-failed',
]);

/**
 * Holds back a failed probe until it failed in `rounds` deep-probe runs in a row, as
 * Prometheus's `for:` does: one probe that missed its deadline on a loaded machine is not
 * an incident. Conditions that carry their own duration (an agent offline for
 * `agentOfflineMs`, an application crash-looping) pass at once. A probe that passes once
 * starts the count again.
 */
export class DeepConditionGate {
  #streaks = new Map<string, number>();

  /** `firing`: alerts a previous leader raised; they stay up without a new streak. */
  constructor(
    private readonly rounds: number,
    firing: Iterable<{ condition: string; subject: string }> = [],
  ) {
    for (const alert of firing)
      if (PROBE_FAILURES.has(alert.condition)) this.#streaks.set(`${alert.condition}\u0000${alert.subject}`, rounds);
  }

  /** The conditions of one run that may become alerts now. */
  admit(found: readonly AlertCondition[]): AlertCondition[] {
    const streaks = new Map<string, number>();
    const admitted: AlertCondition[] = [];
    for (const condition of found) {
      if (!PROBE_FAILURES.has(condition.condition)) {
        admitted.push(condition);
        continue;
      }
      const key = `${condition.condition}\u0000${condition.subject}`;
      const streak = (this.#streaks.get(key) ?? 0) + 1;
      streaks.set(key, streak);
      if (streak >= this.rounds) admitted.push(condition);
    }
    this.#streaks = streaks;
    return admitted;
  }
}

/** A server's answer to `POST /api/v1/cluster/probe`. */
export interface ServerProbeAnswer {
  node: string;
  database: { ok: boolean; ms: number; error?: string };
  sessions: { sessionId: string; agentId: string; providerId: string; ok: boolean; ms: number; error?: string }[];
  /** `enrolledAt` is absent in answers of servers older than the field. */
  agents: { id: string; name: string; providerId: string; lastSeenAt: string | null; enrolledAt?: string }[];
  crashLooping: {
    deploymentId: string;
    app: string;
    providerId: string;
    agentId: string;
    reason: string;
    since: string;
  }[];
}

function clusterSecret(config: Readonly<NodeConfig>): string | undefined {
  if (config.cluster.secret) return config.cluster.secret;
  if (!config.cluster.secretFile) return undefined;
  try {
    return readFileSync(config.cluster.secretFile, 'utf8').trim();
  } catch (error) {
    throw new InsituError('INSITU_CONFIG_INVALID', `cannot read cluster.secretFile: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

async function signedPost<T>(
  secret: string,
  node: string,
  base: string,
  path: string,
  body: unknown,
  timeoutMs: number,
): Promise<T> {
  const response = await fetch(`${base.replace(/\/+$/, '')}${path}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      [CLUSTER_AUTH_HEADER]: signClusterRequest(secret, node, 'POST', path),
    },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${path} answered ${response.status}: ${text.slice(0, 200)}`);
  return JSON.parse(text) as T;
}

/**
 * The deep probes of a cluster of `insitu server`s: etcd members' `/health`; then, signed
 * with the cluster secret, each ready server's `POST /api/v1/cluster/probe`, which writes
 * and reads the platform database and sends a request through the tunnel to every agent
 * session it holds (the agent answers its built-in probe path itself). Without a cluster
 * secret only etcd is probed.
 */
export function createServerDeepProber(config: Readonly<NodeConfig>, logger: Logger): DeepProber {
  const secret = clusterSecret(config);
  if (!secret)
    logger.warn('no cluster.secret(File) in node.yaml: deep probes through the servers are off (etcd is still probed)');
  return {
    async run({ servers }) {
      const conditions: AlertCondition[] = [];
      await Promise.all(
        config.coord.endpoints.map(async (endpoint) => {
          let error: string | undefined;
          try {
            const response = await fetch(`${endpoint.replace(/\/+$/, '')}/health`, {
              signal: AbortSignal.timeout(2000),
            });
            const body = (await response.json().catch(() => ({}))) as { health?: string };
            if (body.health !== 'true') error = `answered ${response.status} ${JSON.stringify(body)}`;
          } catch (failure) {
            error = (failure as Error).message;
          }
          if (error)
            conditions.push({
              condition: 'etcd-member-unhealthy',
              subject: endpoint,
              severity: 'warning',
              summary: `etcd member ${endpoint} is not healthy: ${error}`,
              details: { endpoint, error },
            });
        }),
      );
      if (!secret || servers.length === 0) return conditions;
      const answers: ServerProbeAnswer[] = [];
      await Promise.all(
        servers.map(async (server) => {
          try {
            answers.push(
              await signedPost<ServerProbeAnswer>(secret, config.node, server.url, '/api/v1/cluster/probe', {}, 10_000),
            );
          } catch (error) {
            conditions.push({
              condition: 'server-probe-failed',
              subject: server.node,
              severity: 'warning',
              summary: `the deep probe through the server on ${server.node} failed: ${(error as Error).message}`,
              details: { node: server.node, service: 'server' },
            });
          }
        }),
      );
      const connected = new Set<string>();
      for (const answer of answers) {
        if (!answer.database.ok) {
          conditions.push({
            condition: 'database-write-failed',
            subject: answer.node,
            severity: 'critical',
            summary: `the platform database refused a write and read through ${answer.node}: ${answer.database.error ?? 'failed'}`,
            details: { error: answer.database.error ?? null },
          });
        }
        for (const session of answer.sessions) {
          if (session.ok) connected.add(session.agentId);
          else {
            conditions.push({
              condition: 'agent-probe-failed',
              subject: session.agentId,
              severity: 'warning',
              summary: `agent ${session.agentId} did not answer its probe through the tunnel from ${answer.node}: ${session.error ?? 'failed'}`,
              details: { session: session.sessionId, provider: session.providerId, server: answer.node },
            });
          }
        }
      }
      const first = answers[0];
      if (first) {
        const now = Date.now();
        for (const agent of first.agents) {
          if (connected.has(agent.id)) continue;
          // An agent never seen is offline only once it has had agentOfflineMs since its
          // enrolment to dial in (it enrols, then opens its sessions a moment later).
          const since = agent.lastSeenAt ?? agent.enrolledAt;
          const seen = since ? Date.parse(since) : 0;
          if (now - seen >= config.alerts.agentOfflineMs) {
            conditions.push({
              condition: 'agent-offline',
              subject: agent.id,
              severity: 'warning',
              summary: `agent ${agent.name} (${agent.id}) has had no tunnel session since ${agent.lastSeenAt ?? 'it enrolled'}`,
              details: { provider: agent.providerId, lastSeenAt: agent.lastSeenAt },
            });
          }
        }
        for (const app of first.crashLooping) {
          conditions.push({
            condition: 'app-crash-looping',
            subject: `${app.deploymentId}@${app.agentId}`,
            severity: 'warning',
            summary: `application ${app.app} is crash-looping at provider ${app.providerId} (agent ${app.agentId}): ${app.reason}`,
            details: { deployment: app.deploymentId, provider: app.providerId, since: app.since },
          });
        }
      }
      return conditions;
    },
    async pushEvents(target, events) {
      if (!secret) return;
      await signedPost(secret, config.node, target.url, '/api/v1/cluster/events', { events }, 10_000);
    },
  };
}
