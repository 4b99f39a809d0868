import { api, listAll, type Page as ApiPage } from '../api.js';
import type { App, Deployment, Provider } from '../types.js';
import { Badge, Link, Page, Status, useLoad, when } from '../ui.js';

/** Desired vs actual per agent, with crash reasons; refreshed every few seconds. */
export function Deployments() {
  const data = useLoad(async () => {
    const [deployments, apps, providers] = await Promise.all([
      listAll<Deployment>('/api/v1/deployments'),
      listAll<App>('/api/v1/apps'),
      listAll<Provider>('/api/v1/providers'),
    ]);
    return {
      deployments: deployments.items,
      apps: new Map(apps.items.map((a) => [a.id, a.name])),
      providers: new Map(providers.items.map((p) => [p.id, p.name])),
    };
  }, []);
  const d = data.data;
  return (
    <Page
      title="Deployments"
      actions={
        <button type="button" onClick={data.reload}>
          Refresh
        </button>
      }
    >
      <Status loaded={data} />
      {d && d.deployments.length === 0 ? <p class="muted">Nothing deployed yet.</p> : null}
      {d?.deployments.map((dep) => {
        const ready = dep.agents.reduce((n, a) => n + a.ready, 0);
        const desired = dep.agents.length * dep.replicas;
        return (
          <article class="card" key={dep.id} aria-labelledby={`dep-${dep.id}`}>
            <h2 id={`dep-${dep.id}`}>
              <Link href={`/apps/${dep.appId}`}>{d.apps.get(dep.appId) ?? dep.appId}</Link> {dep.version} at{' '}
              {d.providers.get(dep.providerId) ?? dep.providerId} <Badge state={dep.state} />
            </h2>
            <p>
              Desired: {dep.replicas} instance{dep.replicas === 1 ? '' : 's'} on each agent · running {ready} of{' '}
              {desired || dep.replicas}
              <progress max={desired || 1} value={ready} aria-label="Instances ready" />
            </p>
            <div class="table-wrap">
              <table>
                <caption>Actual state per agent</caption>
                <thead>
                  <tr>
                    <th scope="col">Agent</th>
                    <th scope="col">State</th>
                    <th scope="col">Ready / desired</th>
                    <th scope="col">Reason</th>
                    <th scope="col">Updated</th>
                  </tr>
                </thead>
                <tbody>
                  {dep.agents.length === 0 ? (
                    <tr>
                      <td colSpan={5} class="muted">
                        No agent has reported yet.
                      </td>
                    </tr>
                  ) : null}
                  {dep.agents.map((a) => (
                    <tr key={a.agentId}>
                      <td>
                        <code>{a.agentId}</code>
                      </td>
                      <td>
                        <Badge state={a.state} />
                      </td>
                      <td>
                        {a.ready} / {a.desired}
                      </td>
                      <td>{a.reason}</td>
                      <td>{when(a.updatedAt)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </article>
        );
      })}
    </Page>
  );
}
