import { EventEmitter } from 'node:events';
import { reportsCrashLoop } from '@insitu/core';
import type { DeploymentRow, InstanceState } from '@insitu/store';
import type { ServerContext } from '../context.js';

/** One deployment as an agent reports it. */
export interface AgentReport {
  id: string;
  state: InstanceState | 'stopping';
  ready: number;
  desired: number;
  reason?: string;
}

/**
 * Whether a report is worth an event for people: a deployment that crash-loops, failed,
 * runs again, or lost instances while serving (`running` → `degraded`), and a degraded
 * one whose missing instance turned into a crash loop (it will not heal by waiting). Not
 * the first instance of a start becoming ready (`starting` → `degraded`).
 */
function eventWorthy(
  previous: { state: InstanceState; reason: string } | undefined,
  next: { state: InstanceState; reason: string },
): boolean {
  if (previous?.state === next.state)
    return next.state === 'degraded' && reportsCrashLoop(next) && !reportsCrashLoop(previous);
  switch (next.state) {
    case 'crash-looping':
    case 'failed':
      return true;
    case 'running':
      return previous !== undefined;
    case 'degraded':
      return previous?.state === 'running' || reportsCrashLoop(next);
    default:
      return false;
  }
}

/**
 * Keeps desired and actual state moving: records what agents report, tells listeners
 * when a provider's desired deployments or the routable set changed (the tunnel pushes
 * to agents; the gateway refreshes its routes), and finishes rolling upgrades: a
 * draining deployment stops once the new one runs on every agent that ran the old one,
 * plus a grace period for calls in flight.
 */
export class DeploymentReconciler extends EventEmitter<{
  'desired-changed': [providerId: string];
  'routes-changed': [];
}> {
  private readonly readySince = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;

  constructor(private readonly ctx: ServerContext) {
    super();
  }

  /** Something about a provider's deployments changed (created, scaled, removed). */
  changed(providerId: string): void {
    this.emit('desired-changed', providerId);
    this.emit('routes-changed');
    void this.tick();
  }

  /** Record an agent's report of every deployment it runs; forget the ones it no longer reports. */
  async report(agentId: string, providerId: string, reports: readonly AgentReport[]): Promise<void> {
    const { store } = this.ctx;
    const ids = reports.map((r) => r.id);
    const known = new Map<string, DeploymentRow>();
    for (const id of ids) {
      const row = await store.deployments.get(id);
      if (row && row.provider_id === providerId) known.set(id, row);
    }
    const before = new Map(
      (await store.deployments.statuses([...known.keys()]))
        .filter((s) => s.agent_id === agentId)
        .map((s) => [s.deployment_id, s]),
    );
    for (const report of reports) {
      const row = known.get(report.id);
      if (!row) continue;
      const state: InstanceState = report.state === 'stopping' ? 'stopped' : report.state;
      await store.deployments.report({
        deploymentId: row.id,
        agentId,
        state,
        reason: report.reason ?? '',
        ready: report.ready,
        desired: report.desired,
      });
      if (eventWorthy(before.get(row.id), { state, reason: report.reason ?? '' })) {
        const application = await store.apps.get(row.app_id);
        const message = `${application?.name ?? row.app_id} on agent ${agentId}: ${state}${report.reason ? ` (${report.reason})` : ''}`;
        for (const orgId of new Set([application?.org_id, (await store.providers.get(providerId))?.org_id])) {
          if (orgId) await store.events.add({ orgId, kind: `deployment.${state}`, subject: row.id, message });
        }
      }
    }
    await store.deployments.clearReports(agentId, [...known.keys()]);
    this.emit('routes-changed');
    await this.tick();
  }

  /** Finish rolling upgrades whose new deployment runs everywhere. */
  tick(): Promise<void> {
    this.ticking ??= this.runTick().finally(() => {
      this.ticking = undefined;
    });
    return this.ticking;
  }

  private async runTick(): Promise<void> {
    const { store } = this.ctx;
    const draining = await store.deployments.list({ states: ['draining'], limit: 1000, offset: 0 });
    for (const old of draining) {
      const [next] = await store.deployments.list({
        appId: old.app_id,
        providerId: old.provider_id,
        states: ['active'],
        limit: 1,
        offset: 0,
      });
      const oldAgents = (await store.deployments.statuses([old.id]))
        .filter((s) => s.state !== 'stopped')
        .map((s) => s.agent_id);
      let done = !next || oldAgents.length === 0;
      if (!done && next) {
        const nextStatus = new Map((await store.deployments.statuses([next.id])).map((s) => [s.agent_id, s]));
        done = oldAgents.every((agentId) => {
          const s = nextStatus.get(agentId);
          return s !== undefined && s.state === 'running' && s.ready >= s.desired && s.desired > 0;
        });
      }
      if (!done) {
        this.readySince.delete(old.id);
        continue;
      }
      const since = this.readySince.get(old.id) ?? this.ctx.now();
      this.readySince.set(old.id, since);
      if (this.ctx.now() - since < this.ctx.config.gateway.drainGraceMs) continue;
      this.readySince.delete(old.id);
      await store.deployments.update(old.id, { state: 'removed' });
      const application = await store.apps.get(old.app_id);
      if (application)
        await store.events.add({
          orgId: application.org_id,
          kind: 'deployment.drained',
          subject: old.id,
          message: `${application.name}: the previous version stopped after the rolling upgrade`,
        });
      this.emit('desired-changed', old.provider_id);
      this.emit('routes-changed');
    }
  }

  /** Tick every `intervalMs` (rolling upgrades finish even without new reports). */
  start(intervalMs = 1000): void {
    this.timer ??= setInterval(() => {
      this.tick().catch((error: unknown) => this.ctx.logger.error({ err: error }, 'deployment reconciler failed'));
    }, intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.ticking;
  }
}
