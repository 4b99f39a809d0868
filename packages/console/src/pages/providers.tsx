import { api, listAll, type Page as ApiPage } from '../api.js';
import type { Agent, Cluster, Deployment, Me, Provider } from '../types.js';
import { Badge, Link, Page, Status, Table, useLoad, when } from '../ui.js';

/** Providers and their agents: online, sessions per node, RTT, what each runs. */
export function Providers(props: { me: Me }) {
  const data = useLoad(async () => {
    const [providers, agents, deployments] = await Promise.all([
      listAll<Provider>('/api/v1/providers'),
      listAll<Agent>('/api/v1/agents'),
      listAll<Deployment>('/api/v1/deployments'),
    ]);
    // Tunnel sessions are in the cluster view, which platform administrators see.
    const cluster = props.me.platformAdmin ? await api.get<Cluster>('/api/v1/cluster') : undefined;
    return {
      providers: providers.items,
      agents: agents.items,
      deployments: deployments.items,
      sessions: cluster?.tunnel.sessions,
    };
  }, []);
  const d = data.data;
  return (
    <Page
      title="Providers and agents"
      actions={
        <button type="button" onClick={data.reload}>
          Refresh
        </button>
      }
    >
      <p>
        <Link href="/providers/enrol">New provider or agent enrolment token</Link>
      </p>
      <Status loaded={data} />
      {d?.providers.length === 0 ? <p class="muted">No provider yet.</p> : null}
      {d?.providers.map((p) => {
        const agents = d.agents.filter((a) => a.providerId === p.id);
        return (
          <article class="card" key={p.id} aria-labelledby={`prv-${p.id}`}>
            <h2 id={`prv-${p.id}`}>{p.displayName || p.name}</h2>
            <p>{p.description}</p>
            <Table
              caption={`Agents of ${p.name}`}
              head={['Agent', 'Host', 'Version', 'State', 'Online', 'Sessions (node: RTT)', 'Runs', 'Last seen']}
              empty={agents.length === 0}
            >
              {agents.map((a) => {
                const sessions = d.sessions?.filter((s) => s.agentId === a.id) ?? [];
                // Degraded still serves (fewer instances than desired): it runs there.
                const runs = d.deployments.filter((dep) =>
                  dep.agents.some((x) => x.agentId === a.id && (x.state === 'running' || x.state === 'degraded')),
                );
                return (
                  <tr key={a.id}>
                    <td>{a.name}</td>
                    <td>{a.hostname}</td>
                    <td>{a.version}</td>
                    <td>
                      <Badge state={a.state} />
                    </td>
                    <td>{d.sessions ? <Badge state={sessions.length ? 'online' : 'offline'} /> : '—'}</td>
                    <td>{sessions.map((s) => `${s.nodeId}: ${s.rttMs.toFixed(1)} ms`).join(', ') || '—'}</td>
                    <td>{runs.map((r) => r.version).join(', ') || '—'}</td>
                    <td>{when(a.lastSeenAt)}</td>
                  </tr>
                );
              })}
            </Table>
          </article>
        );
      })}
    </Page>
  );
}
