import type { AlertMessage, Severity } from '@insitu/notify';
import { notLeader } from '../errors.js';
import type { EventLog } from '../events.js';
import type { PublishedAlerts, PublishedPrimary, PublishedTopology } from '../topology.js';
import type { ManagerContext } from './context.js';

// Publishing: the topology to coord (fenced), events to the log, metrics, logs and coord, alerts to notify.

export async function publish(ctx: ManagerContext, next: PublishedTopology): Promise<void> {
  const leadership = ctx.leadership;
  if (leadership === undefined || !ctx.isLeading()) {
    throw notLeader(ctx.id, 'is no longer the leader; not publishing');
  }
  const topology: PublishedTopology = { ...next, updatedAt: ctx.now(), updatedBy: ctx.id };
  await leadership.fencedPut(ctx.keys.topology, JSON.stringify(topology));
  const primary = topology.primary === null ? undefined : ctx.states.get(topology.primary);
  if (primary !== undefined) {
    const record: PublishedPrimary = {
      member: primary.config.name,
      host: primary.config.host,
      port: primary.config.port,
      epoch: topology.epoch,
    };
    await leadership.fencedPut(ctx.keys.primary, JSON.stringify(record));
  }
  ctx.topology = topology;
}

export function record(ctx: ManagerContext, input: Parameters<EventLog['add']>[0]): void {
  const event = ctx.events.add(input);
  ctx.metrics.actions.inc({ type: event.type });
  const level = event.severity === 'critical' ? 'error' : event.severity === 'warning' ? 'warn' : 'info';
  ctx.logger[level]({ event: event.type, member: event.member, details: event.details }, event.message);
  ctx.emit('event', event);
  const leadership = ctx.leadership;
  if (leadership !== undefined && ctx.isLeading()) {
    leadership
      .fencedPut(ctx.keys.event(event.id), JSON.stringify(event))
      .then(async () => {
        ctx.publishedEventIds.push(event.id);
        while (ctx.publishedEventIds.length > ctx.config.events.keep) {
          const oldest = ctx.publishedEventIds.shift();
          if (oldest !== undefined) await leadership.fencedDelete(ctx.keys.event(oldest));
        }
      })
      .catch((error: unknown) => ctx.logger.warn({ err: error }, 'cannot publish an event in coord'));
  }
}

/** Raise an alert; the first raise (and each repeat) is also an event. True when it notified (and recorded). */
export function raise(
  ctx: ManagerContext,
  condition: string,
  subject: string,
  severity: Severity,
  summary: string,
  details: Record<string, unknown>,
): boolean {
  const sent = ctx.notifier.raise({
    cluster: ctx.config.cluster,
    condition,
    subject,
    severity,
    summary,
    details,
  });
  if (sent)
    record(ctx, { type: condition, severity, ...(subject ? { member: subject } : {}), message: summary, details });
  return sent;
}

export function resolve(ctx: ManagerContext, condition: string, subject: string, summary: string): void {
  if (ctx.notifier.resolve({ cluster: ctx.config.cluster, condition, subject }, summary)) {
    record(ctx, {
      type: `${condition}-resolved`,
      severity: 'info',
      ...(subject ? { member: subject } : {}),
      message: summary,
    });
  }
}

/**
 * Alerts any manager raises about its own node (a member process it restarts): not the
 * elected manager's, so neither handed over nor forgotten on a change of leader.
 */
export const LOCAL_CONDITIONS: ReadonlySet<string> = new Set(['member-restart-failed']);

/** The elected manager's alerts, for the next one (see `PublishedAlertsSchema`). */
export function leaderAlerts(ctx: ManagerContext): PublishedAlerts['active'] {
  return ctx.notifier.snapshot().filter((alert) => !LOCAL_CONDITIONS.has(alert.item.condition));
}

/** Publish the elected manager's active alerts (fenced) when they changed since the last publish. */
export async function publishAlerts(ctx: ManagerContext, options: { stopping?: boolean } = {}): Promise<void> {
  await serialized(ctx, async () => {
    // Not leading: nothing to publish (the commit of a message says so by throwing; see commitAlerts).
    if (mayPublishAlerts(ctx, options.stopping === true)) await putAlerts(ctx);
  });
}

/**
 * The notifier's commit hook: a message goes out only once the state the next leader takes over
 * shows it (fenced put). A manager that is not the elected one sends only its own node's
 * alerts. Before, the state was published at the end of the tick: a leader deposed between a
 * message and that publish (node loss, leases lapsing under load) left the next leader a state
 * without it, which announced `primary-down` a second time and never resolved the
 * `failover-failed` it did not know of.
 */
export async function commitAlerts(ctx: ManagerContext, message: AlertMessage): Promise<void> {
  if (message.alerts.every((alert) => LOCAL_CONDITIONS.has(alert.condition))) return;
  await serialized(ctx, async () => {
    if (!mayPublishAlerts(ctx, ctx.abort.signal.aborted)) {
      throw notLeader(ctx.id, `is not the elected manager; not sending "${message.title}"`);
    }
    await putAlerts(ctx);
  });
}

/** Leading, or stopping while still holding the election (the put is fenced by it). */
function mayPublishAlerts(ctx: ManagerContext, stopping: boolean): boolean {
  const leadership = ctx.leadership;
  return leadership !== undefined && (ctx.isLeading() || (stopping && ctx.elected && leadership.isLeader()));
}

async function putAlerts(ctx: ManagerContext): Promise<void> {
  const leadership = ctx.leadership;
  if (leadership === undefined) throw notLeader(ctx.id, 'holds no leadership');
  const active = leaderAlerts(ctx);
  const text = JSON.stringify(active);
  if (text === ctx.publishedAlerts) return;
  const published: PublishedAlerts = { manager: ctx.id, at: ctx.now(), active };
  await leadership.fencedPut(ctx.keys.alerts, JSON.stringify(published));
  ctx.publishedAlerts = text;
}

/** One publish of the alerts at a time: a later snapshot never lands before an earlier one. */
function serialized(ctx: ManagerContext, fn: () => Promise<void>): Promise<void> {
  const run = ctx.alertsPublishing.then(fn);
  ctx.alertsPublishing = run.catch(() => undefined);
  return run;
}
