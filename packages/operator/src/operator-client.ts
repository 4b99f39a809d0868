import { InsituError, newId } from '@insitu/core';
import type { Coordinator } from '@insitu/coord';
import type { PublishedAlerts } from './alerts.js';
import { diffSpecs, parseClusterSpec, specDigest, type SpecChange, type StoredSpec } from './cluster-spec.js';
import { KEYS } from './keys.js';
import {
  parseRecord,
  type CommandRecord,
  type NodeRecord,
  type OperatorEvent,
  type PlacementRecord,
  type Silence,
} from './records.js';
import { parseMatchers } from './silences.js';

/** What `insitu operator apply` did (or, with `dryRun`, would do). */
export interface ApplyResult {
  changes: SpecChange[];
  digest: string;
  stored: boolean;
  /** Services no live node has a command for (they run nowhere until one joins). */
  unrunnable: string[];
}

/**
 * Validate a cluster spec, compare it with the one in coord and store it (unless `dryRun`
 * or unchanged). A bad spec throws `INSITU_OPERATOR_SPEC_INVALID` before anything is read
 * or written.
 */
export async function applySpec(
  coordinator: Coordinator,
  text: string,
  options: { source?: string; by: string; dryRun?: boolean },
): Promise<ApplyResult> {
  const spec = parseClusterSpec(text, options.source);
  const current = parseRecord<StoredSpec>(await coordinator.get(KEYS.spec));
  const changes = diffSpecs(current?.spec, spec);
  const digest = specDigest(spec);
  const records = await coordinator.list(KEYS.nodes);
  const capable = new Set<string>();
  for (const value of records.values())
    for (const service of parseRecord<NodeRecord>(value)?.capable ?? []) capable.add(service);
  const unrunnable = Object.keys(spec.services).filter((service) => !capable.has(service));
  if (options.dryRun || changes.length === 0) return { changes, digest, stored: false, unrunnable };
  const stored: StoredSpec = { spec, digest, appliedAt: new Date().toISOString(), appliedBy: options.by };
  await coordinator.put(KEYS.spec, JSON.stringify(stored));
  const event: OperatorEvent = {
    id: newId('evt'),
    at: stored.appliedAt,
    node: 'cli',
    type: 'spec-applied',
    subject: digest,
    reason: `cluster spec ${digest} applied by ${options.by}: ${changes.length} change(s)`,
    details: { changes: changes.slice(0, 50) },
  };
  await coordinator.put(`${KEYS.events}${event.id}`, JSON.stringify(event));
  return { changes, digest, stored: true, unrunnable };
}

/** `insitu operator status`: nodes, the leader, services per node, placements, alerts. */
export interface ClusterStatus {
  leader: string | undefined;
  spec: { digest: string; appliedAt: string; appliedBy: string; services: string[] } | undefined;
  nodes: {
    node: string;
    state: 'up' | 'lost';
    /** Milliseconds since the node last renewed its record (its lease age). */
    leaseAgeMs?: number;
    leader: boolean;
    record?: NodeRecord;
  }[];
  placements: PlacementRecord[];
  alerts: PublishedAlerts | undefined;
  commands: CommandRecord[];
}

/** Read the operator's view of the cluster from coord. */
export async function clusterStatus(coordinator: Coordinator): Promise<ClusterStatus> {
  const observer = await coordinator.observe(KEYS.election);
  try {
    const [spec, members, records, placements, alerts, commands] = await Promise.all([
      coordinator.get(KEYS.spec),
      coordinator.list(KEYS.members),
      coordinator.list(KEYS.nodes),
      coordinator.list(KEYS.placements),
      coordinator.get(KEYS.alerts),
      coordinator.list(KEYS.commands),
    ]);
    const leader = observer.leader();
    const stored = parseRecord<StoredSpec>(spec);
    const byNode = new Map<string, NodeRecord>();
    for (const value of records.values()) {
      const record = parseRecord<NodeRecord>(value);
      if (record) byNode.set(record.node, record);
    }
    const names = new Set([...[...members.keys()].map((key) => key.slice(KEYS.members.length)), ...byNode.keys()]);
    const now = Date.now();
    return {
      leader,
      spec: stored
        ? {
            digest: stored.digest,
            appliedAt: stored.appliedAt,
            appliedBy: stored.appliedBy,
            services: Object.keys(stored.spec.services),
          }
        : undefined,
      nodes: [...names].sort().map((node) => {
        const record = byNode.get(node);
        return record
          ? {
              node,
              state: 'up' as const,
              leaseAgeMs: Math.max(0, now - Date.parse(record.heartbeatAt)),
              leader: leader === node,
              record,
            }
          : { node, state: 'lost' as const, leader: leader === node };
      }),
      placements: [...placements.values()]
        .map((v) => parseRecord<PlacementRecord>(v))
        .filter((p): p is PlacementRecord => p !== undefined),
      alerts: parseRecord<PublishedAlerts>(alerts),
      commands: [...commands.values()]
        .map((v) => parseRecord<CommandRecord>(v))
        .filter((c): c is CommandRecord => c !== undefined)
        .sort((a, b) => a.id.localeCompare(b.id))
        .slice(-5),
    };
  } finally {
    await observer.close();
  }
}

/** Filters of {@link listEvents}. */
export interface EventFilter {
  node?: string;
  service?: string;
  type?: string;
  /** Only events after this id (for --follow). */
  after?: string;
  limit?: number;
}

export function eventMatches(event: OperatorEvent, filter: EventFilter): boolean {
  return (
    (filter.node === undefined || event.node === filter.node || event.subject === filter.node) &&
    (filter.service === undefined || event.service === filter.service) &&
    (filter.type === undefined || event.type === filter.type)
  );
}

/** The operator's events in coord, oldest first (the last `limit`, default 100). */
export async function listEvents(coordinator: Coordinator, filter: EventFilter = {}): Promise<OperatorEvent[]> {
  const all = await coordinator.list(KEYS.events);
  const events = [...all.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([, value]) => parseRecord<OperatorEvent>(value))
    .filter(
      (e): e is OperatorEvent =>
        e !== undefined && (filter.after === undefined || e.id > filter.after) && eventMatches(e, filter),
    );
  return events.slice(-(filter.limit ?? 100));
}

/** Ask the leader for a restart; resolves with the command's final record. */
export async function requestRestart(
  coordinator: Coordinator,
  input: {
    service: string;
    rolling: boolean;
    node?: string;
    by: string;
    timeoutMs: number;
    onProgress?: (command: CommandRecord) => void;
  },
): Promise<CommandRecord> {
  const stored = parseRecord<StoredSpec>(await coordinator.get(KEYS.spec));
  if (!stored?.spec.services[input.service]) {
    throw new InsituError(
      'INSITU_OPERATOR_UNKNOWN_SERVICE',
      `no service ${input.service} in the cluster spec${stored ? ` (services: ${Object.keys(stored.spec.services).join(', ')})` : ' (none applied yet)'}`,
    );
  }
  const observer = await coordinator.observe(KEYS.election);
  const leader = observer.leader();
  await observer.close();
  if (leader === undefined)
    throw new InsituError('INSITU_OPERATOR_NO_LEADER', 'no operator leader is elected right now; retry shortly');
  const command: CommandRecord = {
    id: newId('cmd'),
    type: 'restart',
    service: input.service,
    rolling: input.rolling,
    ...(input.node ? { node: input.node } : {}),
    requestedAt: new Date().toISOString(),
    by: input.by,
    state: 'pending',
    steps: [],
  };
  const key = `${KEYS.commands}${command.id}`;
  await coordinator.put(key, JSON.stringify(command));
  const deadline = Date.now() + input.timeoutMs;
  let last = '';
  for (;;) {
    const current = parseRecord<CommandRecord>(await coordinator.get(key).catch(() => undefined));
    if (current) {
      const text = JSON.stringify(current.steps) + current.state;
      if (text !== last) {
        last = text;
        input.onProgress?.(current);
      }
      if (current.state === 'done') return current;
      if (current.state === 'failed') {
        throw new InsituError(
          'INSITU_OPERATOR_COMMAND_FAILED',
          `restart of ${input.service} failed: ${current.error ?? 'unknown'}`,
          { details: { command: current } },
        );
      }
    }
    if (Date.now() > deadline)
      throw new InsituError(
        'INSITU_OPERATOR_COMMAND_FAILED',
        `restart of ${input.service} did not finish within ${Math.round(input.timeoutMs / 1000)} s (command ${command.id})`,
      );
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** Add a silence; returns it. */
export async function addSilence(
  coordinator: Coordinator,
  input: { matcher: string; forMs: number; by: string; comment?: string },
): Promise<Silence> {
  const matchers = parseMatchers(input.matcher);
  const now = Date.now();
  const silence: Silence = {
    id: newId('sil'),
    matchers,
    createdAt: new Date(now).toISOString(),
    endsAt: new Date(now + input.forMs).toISOString(),
    createdBy: input.by,
    ...(input.comment ? { comment: input.comment } : {}),
  };
  await coordinator.put(`${KEYS.silences}${silence.id}`, JSON.stringify(silence));
  const event: OperatorEvent = {
    id: newId('evt'),
    at: silence.createdAt,
    node: 'cli',
    type: 'silence-added',
    subject: silence.id,
    reason: `silence ${silence.id} (${matchers.map((m) => `${m.label}=${m.value}`).join(',')}) until ${silence.endsAt} by ${input.by}${input.comment ? `: ${input.comment}` : ''}`,
  };
  await coordinator.put(`${KEYS.events}${event.id}`, JSON.stringify(event));
  return silence;
}

/** Active alerts (as the leader last published them) and silences in force. */
export async function listAlerts(
  coordinator: Coordinator,
): Promise<{ alerts: PublishedAlerts | undefined; silences: Silence[] }> {
  const [alerts, silences] = await Promise.all([coordinator.get(KEYS.alerts), coordinator.list(KEYS.silences)]);
  const now = Date.now();
  return {
    alerts: parseRecord<PublishedAlerts>(alerts),
    silences: [...silences.values()]
      .map((v) => parseRecord<Silence>(v))
      .filter((s): s is Silence => s !== undefined && Date.parse(s.endsAt) > now),
  };
}
