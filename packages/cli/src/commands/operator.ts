import { readFile } from 'node:fs/promises';
import { hostname, userInfo } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import { InsituError } from '@insitu/core';
import type { Coordinator } from '@insitu/coord';
import {
  KEYS,
  addSilence,
  applySpec,
  clusterStatus,
  eventMatches,
  formatChange,
  listAlerts,
  listEvents,
  parseDuration,
  parseRecord,
  requestRestart,
  type ClusterStatus,
  type EventFilter,
  type OperatorEvent,
} from '@insitu/operator';
import { line, untilAborted, type CliIo } from '../io.js';
import { loadCliNodeConfig, nodeCoordinator } from './node.js';

type Common = { config?: string; json?: boolean };

/** Who runs the command, for events (`root@mgmt1`). */
function who(io: CliIo): string {
  let user = io.env.USER ?? '';
  try {
    user ||= userInfo().username;
  } catch {
    user ||= 'unknown';
  }
  return `${user}@${hostname()}`;
}

async function withCoordinator<T>(
  options: Common,
  io: CliIo,
  run: (coordinator: Coordinator) => Promise<T>,
): Promise<T> {
  const config = loadCliNodeConfig(options, io);
  const coordinator = nodeCoordinator(config);
  try {
    return await run(coordinator);
  } finally {
    await coordinator.close({ revokeLeases: false });
  }
}

/** `insitu operator apply -f cluster.yaml [--dry-run]`: validate, show the diff, store. */
export async function runOperatorApply(options: Common & { file: string; dryRun?: boolean }, io: CliIo): Promise<void> {
  const file = isAbsolute(options.file) ? options.file : resolve(io.cwd, options.file);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new InsituError('INSITU_USAGE', `cannot read ${file}: ${(error as Error).message}`);
  }
  const result = await withCoordinator(options, io, (coordinator) =>
    applySpec(coordinator, text, { source: file, by: who(io), ...(options.dryRun ? { dryRun: true } : {}) }),
  );
  if (options.json) {
    line(io.stdout, JSON.stringify(result));
    return;
  }
  if (result.changes.length === 0) line(io.stdout, `no change: the cluster spec in coord is already ${result.digest}`);
  else {
    for (const change of result.changes) line(io.stdout, formatChange(change));
    line(
      io.stdout,
      result.stored
        ? `applied cluster spec ${result.digest} (${result.changes.length} change(s))`
        : `dry run: ${result.changes.length} change(s) not applied`,
    );
  }
  if (result.unrunnable.length > 0)
    line(
      io.stdout,
      `note: no live node has a command for ${result.unrunnable.join(', ')}; it runs nowhere until one joins`,
    );
}

function age(ms: number | undefined): string {
  if (ms === undefined) return '-';
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)}s` : `${Math.round(ms / 1000)}s`;
}

function printStatus(status: ClusterStatus, io: CliIo): void {
  line(
    io.stdout,
    `leader: ${status.leader ?? '(none)'}; spec: ${status.spec ? `${status.spec.digest} applied ${status.spec.appliedAt} by ${status.spec.appliedBy}` : '(none applied)'}`,
  );
  for (const node of status.nodes) {
    line(
      io.stdout,
      `node ${node.node.padEnd(12)} ${node.state.toUpperCase().padEnd(4)} lease age ${age(node.leaseAgeMs).padEnd(6)}${node.leader ? ' leader' : ''}`,
    );
    for (const [name, service] of Object.entries(node.record?.services ?? {})) {
      const probes = [
        service.liveness
          ? `live ${service.liveness.ok ? 'ok' : `FAIL(${service.liveness.failures}) ${service.liveness.error ?? ''}`}`
          : '',
        service.readiness ? `ready ${service.readiness.ok ? 'ok' : `no ${service.readiness.error ?? ''}`}` : '',
      ]
        .filter(Boolean)
        .join(', ');
      line(
        io.stdout,
        `  ${name.padEnd(12)} ${service.state.padEnd(9)} pid ${String(service.pid ?? '-').padEnd(7)} restarts ${service.restarts} (${service.restartsInWindow} in window)${service.placed ? ' placed' : ''}${probes ? `  ${probes}` : ''}`,
      );
      if (service.lastExit) line(io.stdout, `    last exit ${service.lastExit.at}: ${service.lastExit.reason}`);
      if (service.failed)
        line(
          io.stdout,
          `    FAILED since ${service.failed.at}: ${service.failed.reason}  (insitu operator restart ${name} --node ${node.node})`,
        );
    }
  }
  for (const placement of status.placements)
    line(
      io.stdout,
      `placed ${placement.service} on ${placement.nodes.join(', ') || '(no node)'} (by ${placement.leader} at ${placement.at}: ${placement.reason})`,
    );
  for (const alert of status.alerts?.active ?? [])
    line(
      io.stdout,
      `alert ${alert.item.severity} ${alert.item.condition} ${alert.item.subject}${alert.muted ? ` (${alert.muted})` : ''}: ${alert.item.summary}`,
    );
}

/** `insitu operator status [--json]`. */
export async function runOperatorStatus(options: Common, io: CliIo): Promise<void> {
  const status = await withCoordinator(options, io, (coordinator) => clusterStatus(coordinator));
  if (options.json) line(io.stdout, JSON.stringify(status));
  else printStatus(status, io);
}

function printEvent(event: OperatorEvent, json: boolean | undefined, io: CliIo): void {
  if (json) line(io.stdout, JSON.stringify(event));
  else
    line(
      io.stdout,
      `${event.at} ${event.node.padEnd(10)} ${event.type.padEnd(16)} ${event.service ? `${event.service}: ` : ''}${event.reason}`,
    );
}

/** `insitu operator events [--follow] [--node] [--service] [--type] [--limit]`. */
export async function runOperatorEvents(
  options: Common & EventFilter & { follow?: boolean },
  io: CliIo,
): Promise<void> {
  const filter: EventFilter = {
    ...(options.node ? { node: options.node } : {}),
    ...(options.service ? { service: options.service } : {}),
    ...(options.type ? { type: options.type } : {}),
    limit: options.limit ?? 50,
  };
  await withCoordinator(options, io, async (coordinator) => {
    const events = await listEvents(coordinator, filter);
    for (const event of events) printEvent(event, options.json, io);
    if (!options.follow) return;
    let last = events.at(-1)?.id ?? '';
    const watch = await coordinator.watchPrefix(KEYS.events, (change) => {
      if (change.type !== 'put') return;
      const event = parseRecord<OperatorEvent>(change.value);
      if (!event || event.id <= last || !eventMatches(event, filter)) return;
      last = event.id;
      printEvent(event, options.json, io);
    });
    try {
      await untilAborted(io.signal);
    } finally {
      await watch.close();
    }
  });
}

/** `insitu operator restart SERVICE [--rolling] [--node N]`. */
export async function runOperatorRestart(
  options: Common & { service: string; rolling?: boolean; node?: string; timeout: number },
  io: CliIo,
): Promise<void> {
  const command = await withCoordinator(options, io, (coordinator) =>
    requestRestart(coordinator, {
      service: options.service,
      rolling: options.rolling ?? false,
      ...(options.node ? { node: options.node } : {}),
      by: who(io),
      timeoutMs: options.timeout * 1000,
      onProgress: (progress) => {
        if (!options.json)
          line(
            io.stdout,
            `${progress.state}: ${progress.steps.map((s) => `${s.node} ${s.state}`).join(', ') || 'waiting for the leader'}`,
          );
      },
    }),
  );
  if (options.json) line(io.stdout, JSON.stringify(command));
  else
    line(
      io.stdout,
      `${command.rolling ? 'rolling ' : ''}restart of ${command.service} done on ${command.steps.map((s) => s.node).join(', ')}`,
    );
}

/** `insitu alerts list [--json]`. */
export async function runAlertsList(options: Common, io: CliIo): Promise<void> {
  const { alerts, silences } = await withCoordinator(options, io, (coordinator) => listAlerts(coordinator));
  if (options.json) {
    line(io.stdout, JSON.stringify({ active: alerts?.active ?? [], leader: alerts?.leader ?? null, silences }));
    return;
  }
  const active = alerts?.active ?? [];
  if (active.length === 0) line(io.stdout, 'no active alerts');
  for (const alert of active) {
    line(
      io.stdout,
      `${alert.item.severity.padEnd(8)} ${alert.item.condition} ${alert.item.subject}${alert.muted ? ` [${alert.muted}]` : ''} since ${alert.item.firstSeenAt}${alert.notifiedAt ? '' : ' (not sent yet)'}: ${alert.item.summary}`,
    );
  }
  for (const silence of silences) {
    line(
      io.stdout,
      `silence ${silence.id} ${silence.matchers.map((m) => `${m.label}=${m.value}`).join(',')} until ${silence.endsAt} by ${silence.createdBy}${silence.comment ? `: ${silence.comment}` : ''}`,
    );
  }
}

/** `insitu alerts silence MATCHER --for 2h [--comment]`. */
export async function runAlertsSilence(
  options: Common & { matcher: string; for: string; comment?: string },
  io: CliIo,
): Promise<void> {
  const forMs = parseDuration(options.for);
  const silence = await withCoordinator(options, io, (coordinator) =>
    addSilence(coordinator, {
      matcher: options.matcher,
      forMs,
      by: who(io),
      ...(options.comment ? { comment: options.comment } : {}),
    }),
  );
  if (options.json) line(io.stdout, JSON.stringify(silence));
  else
    line(
      io.stdout,
      `silence ${silence.id}: ${silence.matchers.map((m) => `${m.label}=${m.value}`).join(',')} until ${silence.endsAt}`,
    );
}
