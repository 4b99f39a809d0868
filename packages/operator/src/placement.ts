import type { NodeRecord } from './records.js';

/** What the leader knows of a node when it places services. */
export interface NodeView {
  node: string;
  live: boolean;
  record: NodeRecord | undefined;
}

/** The decision for one placed service. */
export interface PlacementDecision {
  /** The nodes to write now (unchanged when equal to the current ones). */
  nodes: string[];
  changed: boolean;
  /** Why, in words, for the event. */
  reason: string;
  /** Fewer eligible nodes than the count asks for. */
  short: number;
  /** A removed node still runs it: the new node is added only once it stopped there (never two copies). */
  waitingFor: string[];
}

function runs(record: NodeRecord | undefined, service: string): boolean {
  const status = record?.services[service];
  return status !== undefined && status.pid !== undefined && status.state !== 'stopped' && status.state !== 'failed';
}

/** Can `view` run `service` now? Live, has a command for it, and it has not failed there. */
export function eligible(view: NodeView, service: string): boolean {
  return (
    view.live &&
    view.record !== undefined &&
    view.record.capable.includes(service) &&
    view.record.services[service]?.failed === undefined
  );
}

function whyNot(view: NodeView | undefined, service: string): string {
  if (!view || !view.live) return 'lost';
  if (!view.record?.capable.includes(service)) return `has no command for ${service}`;
  const failed = view.record.services[service]?.failed;
  return failed ? `${service} failed there (${failed.reason})` : 'not eligible';
}

/**
 * Place a service on `count` nodes. Nodes that stay eligible keep it (no needless moves);
 * missing copies go to the eligible nodes with the fewest placed services (then by name).
 * A copy is taken away from a live node in one write and given to another only once the
 * live node's record shows it stopped; a lost node is past its lease, so it has stopped its
 * placed services on its own (or is dead), and the move is immediate.
 */
export function place(
  service: string,
  count: number,
  current: readonly string[],
  views: ReadonlyMap<string, NodeView>,
  load: ReadonlyMap<string, number>,
): PlacementDecision {
  const keep = current
    .filter((node) => {
      const view = views.get(node);
      return view !== undefined && eligible(view, service);
    })
    .slice(0, count);
  const removed = current.filter((node) => !keep.includes(node));
  const reasons = removed.map((node) => `${node} ${whyNot(views.get(node), service)}`);
  const waitingFor = removed.filter((node) => {
    const view = views.get(node);
    return view?.live === true && runs(view.record, service);
  });
  const nodes = [...keep];
  if (waitingFor.length === 0) {
    const candidates = [...views.values()]
      .filter((view) => eligible(view, service) && !nodes.includes(view.node))
      .sort((a, b) => (load.get(a.node) ?? 0) - (load.get(b.node) ?? 0) || a.node.localeCompare(b.node));
    for (const candidate of candidates) {
      if (nodes.length >= count) break;
      nodes.push(candidate.node);
    }
  }
  const added = nodes.filter((node) => !current.includes(node));
  const changed = added.length > 0 || removed.length > 0;
  let reason = '';
  if (changed) {
    if (current.length === 0) reason = `placed ${service} on ${nodes.join(', ') || 'no node'}`;
    else if (added.length > 0 && removed.length > 0)
      reason = `moved ${service} from ${removed.join(', ')} to ${added.join(', ')}: ${reasons.join('; ')}`;
    else if (removed.length > 0)
      reason = `took ${service} off ${removed.join(', ')}: ${reasons.join('; ')}${waitingFor.length > 0 ? `; waiting for it to stop on ${waitingFor.join(', ')} before starting it elsewhere` : ''}`;
    else reason = `placed ${service} also on ${added.join(', ')}`;
  }
  return { nodes, changed, reason, short: Math.max(0, count - nodes.length), waitingFor };
}
