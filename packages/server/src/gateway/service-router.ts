import { servesCalls, type AppManifest } from '@insitu/core';
import type { Store } from '@insitu/store';
import { compareSemver } from '../apps/semver.js';
import type { DispatchTarget } from './dispatcher.js';

/** A version of an app that runs somewhere, with where. */
export interface RunningVersion {
  versionId: string;
  version: string;
  major: number;
  manifest: AppManifest;
  targets: DispatchTarget[];
  /** Some agent runs every instance of it; false when it only serves `degraded` (fewer instances than desired). */
  complete: boolean;
}

/** Every version of an app, newest first, with whether it runs. */
export interface AppRoutes {
  running: RunningVersion[];
  loadedAt: number;
}

/**
 * Which running version answers a service call: the newest version that serves on at
 * least one agent (`running` or `degraded`, core's `servesCalls`), preferring one that
 * runs complete somewhere (of one major, for `/v{major}/…`). Computed from deployments and the
 * agents' latest reports, cached per app and dropped when the reconciler says routes
 * changed. Reports older than `staleAfterMs` do not count (the agent went quiet).
 */
export class ServiceRouter {
  private readonly cache = new Map<string, Promise<AppRoutes>>();

  constructor(
    private readonly store: Store,
    private readonly options: { ttlMs: number; staleAfterMs: number; now: () => number },
  ) {}

  invalidate(): void {
    this.cache.clear();
  }

  routes(appId: string): Promise<AppRoutes> {
    const cached = this.cache.get(appId);
    if (cached)
      return cached.then((r) => (this.options.now() - r.loadedAt < this.options.ttlMs ? r : this.reload(appId)));
    return this.reload(appId);
  }

  private reload(appId: string): Promise<AppRoutes> {
    const loading = this.load(appId);
    this.cache.set(appId, loading);
    loading.catch(() => this.cache.delete(appId));
    return loading;
  }

  private async load(appId: string): Promise<AppRoutes> {
    const now = this.options.now();
    const deployments = await this.store.deployments.list({
      appId,
      states: ['active', 'draining'],
      limit: 1000,
      offset: 0,
    });
    const statuses = await this.store.deployments.statuses(deployments.map((d) => d.id));
    const byVersion = new Map<string, RunningVersion>();
    for (const deployment of deployments) {
      const agents = statuses.filter(
        (s) =>
          s.deployment_id === deployment.id && servesCalls(s) && now - Number(s.updated_at) < this.options.staleAfterMs,
      );
      if (agents.length === 0) continue;
      let entry = byVersion.get(deployment.version_id);
      if (!entry) {
        const version = await this.store.apps.getVersion(deployment.version_id);
        if (!version) continue;
        entry = {
          versionId: version.id,
          version: version.version,
          major: version.major,
          manifest: JSON.parse(version.manifest) as AppManifest,
          targets: [],
          complete: false,
        };
        byVersion.set(version.id, entry);
      }
      entry.targets.push({ providerId: deployment.provider_id, deploymentId: deployment.id });
      if (agents.some((s) => s.state === 'running')) entry.complete = true;
    }
    const running = [...byVersion.values()].sort((a, b) => compareSemver(b.version, a.version));
    return { running, loadedAt: now };
  }

  /**
   * The version to call: the newest running one, or the newest of `major`. A version that
   * only serves degraded (a rolling upgrade half started, an instance in back-off) does not
   * take the calls of an older one that runs complete; with nothing complete, it serves.
   */
  static pick(routes: AppRoutes, major?: number): RunningVersion | undefined {
    const serving = routes.running.filter((v) => major === undefined || v.major === major);
    return serving.find((v) => v.complete) ?? serving[0];
  }
}
