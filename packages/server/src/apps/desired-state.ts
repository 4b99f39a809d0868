import type { AgentDeployment, AgentDesired } from '@insitu/core';
import { AppRepository, type Repositories } from '@insitu/store';

/**
 * What every agent of a provider should run: its active and draining deployments, each
 * with the datasets of this provider the version may read, as resolved (provider ids) at
 * submission and approved. The agent serves those and nothing else.
 */
export async function desiredFor(repos: Repositories, providerId: string): Promise<AgentDeployment[]> {
  const rows = await repos.deployments.list({ providerId, states: ['active', 'draining'], limit: 1000, offset: 0 });
  const out: AgentDeployment[] = [];
  for (const row of rows) {
    const version = await repos.apps.getVersion(row.version_id);
    const application = await repos.apps.get(row.app_id);
    if (!version || !application) continue;
    out.push({
      id: row.id,
      app: application.name,
      version: version.version,
      digest: version.digest,
      replicas: row.replicas,
      bundle: `/api/v1/bundles/${version.digest}`,
      state: row.state === 'draining' ? 'draining' : 'active',
      datasets:
        version.state === 'approved'
          ? AppRepository.datasetsOf(version).filter((d) => d.providerId === providerId)
          : [],
    });
  }
  return out;
}

/**
 * Everything a provider's agents are sent: the deployments of {@link desiredFor} and the
 * output policies set on the platform for the provider's datasets (each agent applies the
 * stricter of each and its own config's).
 */
export async function desiredStateFor(repos: Repositories, providerId: string): Promise<AgentDesired> {
  const deployments = await desiredFor(repos, providerId);
  const policies = await repos.datasets.platformPolicies(providerId);
  return { deployments, policies };
}
