import { Fragment } from 'preact';
import { api } from '../api.js';
import type { Cluster, PlatformEvent } from '../types.js';
import { Badge, Page, Status, Table, useLoad, when } from '../ui.js';

function Value(props: { value: unknown }) {
  const v = props.value;
  if (v === null || v === undefined) return <>—</>;
  if (typeof v !== 'object') return <>{String(v)}</>;
  if (Array.isArray(v))
    return v.length ? (
      <ul>
        {v.map((x, i) => (
          <li key={i}>
            <Value value={x} />
          </li>
        ))}
      </ul>
    ) : (
      <>none</>
    );
  return (
    <dl class="facts nested">
      {Object.entries(v as Record<string, unknown>).map(([k, x]) => (
        <Fragment key={k}>
          <dt>{k}</dt>
          <dd>
            <Value value={x} />
          </dd>
        </Fragment>
      ))}
    </dl>
  );
}

/** For platform administrators: nodes, the database topology, tunnel sessions. */
export function Operations() {
  const cluster = useLoad(() => api.get<Cluster>('/api/v1/cluster'), []);
  const events = useLoad(() => api.get<{ items: PlatformEvent[] }>('/api/v1/events?kind=operator.&limit=50'), []);
  const c = cluster.data;
  return (
    <Page
      title="Operations"
      actions={
        <button type="button" onClick={cluster.reload}>
          Refresh
        </button>
      }
    >
      <Status loaded={cluster} />
      {c ? (
        <>
          <section aria-labelledby="db-title">
            <h2 id="db-title">Database</h2>
            <dl class="facts">
              <dt>Engine</dt>
              <dd>{c.database.dialect}</dd>
              <dt>Status</dt>
              <dd>
                <Badge state={c.database.status} />
              </dd>
              {c.database.cluster ? (
                <>
                  <dt>Cluster</dt>
                  <dd>{c.database.cluster}</dd>
                </>
              ) : null}
              <dt>Topology</dt>
              <dd>
                <Value
                  value={
                    c.database.topology ??
                    (c.database.dialect === 'sqlite' ? 'one node: SQLite in the data directory' : undefined)
                  }
                />
              </dd>
            </dl>
            {c.database.events?.length ? (
              <>
                <h3>Recent manager events</h3>
                <Value value={c.database.events} />
              </>
            ) : null}
          </section>
          <Table caption="Management nodes" head={['Node', 'Role', 'Version', 'Started', 'Services']}>
            {c.nodes.map((n) => (
              <tr key={n.id}>
                <td>
                  <code>{n.id}</code>
                </td>
                <td>{n.role}</td>
                <td>{n.version}</td>
                <td>{when(n.startedAt)}</td>
                <td>{n.services.join(', ')}</td>
              </tr>
            ))}
          </Table>
          <p>Coordination: {c.coordination.kind}</p>
          <Table
            caption="Tunnel sessions"
            head={['Agent', 'Node', 'Connected', 'In flight', 'RTT ms', 'Requests', 'Health']}
            empty={c.tunnel.sessions.length === 0}
          >
            {c.tunnel.sessions.map((s) => (
              <tr key={s.sessionId}>
                <td>
                  <code>{s.agentId}</code>
                </td>
                <td>
                  <code>{s.nodeId}</code>
                </td>
                <td>{when(s.connectedAt)}</td>
                <td>{s.inFlight}</td>
                <td>{s.rttMs.toFixed(1)}</td>
                <td>{s.requests}</td>
                <td>
                  <Badge state={s.ejected ? 'ejected' : 'ok'} />
                </td>
              </tr>
            ))}
          </Table>
          <Status loaded={events} />
          <Table
            caption="Operator actions, newest first"
            head={['Time', 'Kind', 'Subject', 'What happened']}
            empty={events.data !== undefined && events.data.items.length === 0}
          >
            {(events.data?.items ?? []).map((e) => (
              <tr key={e.seq}>
                <td>{when(e.ts)}</td>
                <td>{e.kind}</td>
                <td>
                  <code>{e.subject}</code>
                </td>
                <td>{e.message}</td>
              </tr>
            ))}
          </Table>
        </>
      ) : null}
    </Page>
  );
}
