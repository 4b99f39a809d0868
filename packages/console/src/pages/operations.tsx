import { Fragment } from 'preact';
import { useState } from 'preact/hooks';
import { api } from '../api.js';
import type { Alerts, Cluster, OperatorService, OperatorView, PlatformEvent, Silence } from '../types.js';
import { Alert, Badge, Confirm, Field, Page, Status, Table, messageOf, useLoad, when, type Submit } from '../ui.js';

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
            {c.database.cluster ? <DatabaseActions topology={c.database.topology} onDone={cluster.reload} /> : null}
            {c.database.events?.length ? <ManagerEvents events={c.database.events} /> : null}
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
          <OperatorNodes />
          <AlertsAndSilences />
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

function health(service: OperatorService): string {
  const parts: string[] = [];
  if (service.liveness)
    parts.push(
      `live ${service.liveness.ok ? 'ok' : `failing${service.liveness.error ? `: ${service.liveness.error}` : ''}`}`,
    );
  if (service.readiness)
    parts.push(
      `ready ${service.readiness.ok ? 'ok' : `failing${service.readiness.error ? `: ${service.readiness.error}` : ''}`}`,
    );
  return parts.join('; ') || '—';
}

/** The operator's nodes and each node's services: state, probes, restarts, why it last stopped. */
function OperatorNodes() {
  const view = useLoad(() => api.get<OperatorView>('/api/v1/cluster/operator'), []);
  const v = view.data;
  return (
    <section aria-labelledby="operator-title">
      <h2 id="operator-title">Operator: nodes and their services</h2>
      <Status loaded={view} />
      {v ? (
        <>
          <p>
            Leader: {v.leader ? <code>{v.leader}</code> : 'none elected'} ·{' '}
            <button type="button" onClick={view.reload}>
              Refresh operator
            </button>
          </p>
          {v.nodes.length === 0 ? (
            <p class="muted">No operator node has joined (a single server runs without one).</p>
          ) : null}
          {v.nodes.map((n) => (
            <Table
              key={n.node}
              caption={`Services on ${n.node}: ${n.state}${n.leader ? ', leader' : ''}${n.leaseAgeMs !== undefined ? `, lease age ${(n.leaseAgeMs / 1000).toFixed(1)} s` : ''}${n.version ? `, version ${n.version}` : ''}`}
              head={['Service', 'State', 'Since', 'Health', 'Restarts (in window)', 'Last exit']}
              empty={n.services.length === 0}
            >
              {n.services.map((s) => (
                <tr key={s.name}>
                  <td>{s.name}</td>
                  <td>
                    <Badge state={s.state} />
                    {s.failed?.reason ? <span class="error"> {s.failed.reason}</span> : null}
                  </td>
                  <td>{when(s.since)}</td>
                  <td>{health(s)}</td>
                  <td>
                    {s.restarts} ({s.restartsInWindow})
                  </td>
                  <td>{s.lastExit?.reason ?? '—'}</td>
                </tr>
              ))}
            </Table>
          ))}
        </>
      ) : null}
    </section>
  );
}

const LABELS = ['condition', 'subject', 'node', 'service', 'severity'] as const;

/** Open and resolved alerts; silences: list, create, expire (after a confirmation). */
function AlertsAndSilences() {
  const alerts = useLoad(() => api.get<Alerts>('/api/v1/alerts'), []);
  const silences = useLoad(() => api.get<{ items: Silence[] }>('/api/v1/silences'), []);
  const [label, setLabel] = useState<(typeof LABELS)[number]>('node');
  const [value, setValue] = useState('');
  const [minutes, setMinutes] = useState('60');
  const [comment, setComment] = useState('');
  const [error, setError] = useState<string>();
  const [expiring, setExpiring] = useState<Silence>();
  const create = async (event: Submit) => {
    event.preventDefault();
    setError(undefined);
    try {
      await api.post('/api/v1/silences', {
        matchers: [{ label, value: value.trim() }],
        durationMinutes: Number(minutes),
        ...(comment.trim() ? { comment: comment.trim() } : {}),
      });
      setValue('');
      setComment('');
      silences.reload();
      alerts.reload();
    } catch (e) {
      setError(messageOf(e));
    }
  };
  const expire = async () => {
    const silence = expiring;
    setExpiring(undefined);
    if (!silence) return;
    setError(undefined);
    try {
      await api.del(`/api/v1/silences/${silence.id}`);
      silences.reload();
    } catch (e) {
      setError(messageOf(e));
    }
  };
  const a = alerts.data;
  const matchText = (s: Silence) => s.matchers.map((m) => `${m.label}=${m.value}`).join(', ');
  return (
    <section aria-labelledby="alerts-title">
      <h2 id="alerts-title">Alerts</h2>
      <Status loaded={alerts} />
      {a ? (
        <>
          <Table
            caption="Open alerts"
            head={['Severity', 'Condition', 'Subject', 'Summary', 'Since', 'Raised', 'Sent']}
            empty={a.open.length === 0}
          >
            {a.open.map((x) => (
              <tr key={`${x.condition}/${x.subject}`}>
                <td>
                  <Badge state={x.severity} />
                </td>
                <td>{x.condition}</td>
                <td>
                  <code>{x.subject}</code>
                </td>
                <td>{x.summary}</td>
                <td>{when(x.firstSeenAt)}</td>
                <td>{x.count ?? '—'}</td>
                <td>{x.muted ? `no: ${x.muted}` : 'yes'}</td>
              </tr>
            ))}
          </Table>
          <Table
            caption="Resolved alerts, newest first"
            head={['Time', 'Condition', 'Notice']}
            empty={a.resolved.length === 0}
          >
            {a.resolved.map((r, i) => (
              <tr key={i}>
                <td>{when(r.at)}</td>
                <td>{r.condition}</td>
                <td>{r.message}</td>
              </tr>
            ))}
          </Table>
        </>
      ) : null}
      <h2 id="silences-title">Silences</h2>
      <Status loaded={silences} />
      <Table
        caption="Silences in force"
        head={['Matches', 'Until', 'By', 'Comment', 'Action']}
        empty={silences.data !== undefined && silences.data.items.length === 0}
      >
        {(silences.data?.items ?? []).map((s) => (
          <tr key={s.id}>
            <td>
              <code>{matchText(s)}</code>
            </td>
            <td>{when(s.endsAt)}</td>
            <td>
              <code>{s.createdBy}</code>
            </td>
            <td>{s.comment ?? ''}</td>
            <td>
              <button type="button" class="danger" onClick={() => setExpiring(s)}>
                Expire silence {matchText(s)}
              </button>
            </td>
          </tr>
        ))}
      </Table>
      <form class="row" onSubmit={(e) => void create(e)} aria-labelledby="silences-title">
        <Field label="Match label" id="silence-label">
          <select
            id="silence-label"
            value={label}
            onChange={(e) => setLabel(e.currentTarget.value as (typeof LABELS)[number])}
          >
            {LABELS.map((l) => (
              <option key={l} value={l}>
                {l}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Value (* matches anything)" id="silence-value">
          <input
            id="silence-value"
            required
            pattern="[A-Za-z0-9@._*:\-]{1,200}"
            value={value}
            onInput={(e) => setValue(e.currentTarget.value)}
          />
        </Field>
        <Field label="For minutes" id="silence-minutes">
          <input
            id="silence-minutes"
            type="number"
            min={1}
            max={43200}
            required
            value={minutes}
            onInput={(e) => setMinutes(e.currentTarget.value)}
          />
        </Field>
        <Field label="Comment" id="silence-comment">
          <input id="silence-comment" value={comment} onInput={(e) => setComment(e.currentTarget.value)} />
        </Field>
        <button type="submit">Silence</button>
      </form>
      <Alert message={error} />
      <Confirm
        open={expiring !== undefined}
        title="Expire this silence?"
        confirmLabel="Expire now"
        onConfirm={() => void expire()}
        onCancel={() => setExpiring(undefined)}
      >
        <p>
          Alerts matching <code>{expiring ? matchText(expiring) : ''}</code> will be sent again at the operator
          leader&apos;s next evaluation.
        </p>
      </Confirm>
    </section>
  );
}

/** Planned switchover and acknowledging a failover, each behind a confirmation. */
function DatabaseActions(props: { topology: unknown; onDone: () => void }) {
  const topology = (props.topology ?? {}) as { primary?: string | null; cooldownUntil?: number };
  const [to, setTo] = useState('');
  const [asking, setAsking] = useState<'switchover' | 'ack'>();
  const [done, setDone] = useState<string>();
  const [error, setError] = useState<string>();
  const cooling = typeof topology.cooldownUntil === 'number' && topology.cooldownUntil > Date.now();
  const run = async () => {
    const what = asking;
    setAsking(undefined);
    setError(undefined);
    setDone(undefined);
    try {
      if (what === 'switchover') {
        const r = await api.post<{ from: string; to: string; readOnlyMs: number; epoch: number }>(
          '/api/v1/cluster/database/switchover',
          { to: to.trim() },
        );
        setDone(`Switched over ${r.from} → ${r.to}; writes were refused for ${r.readOnlyMs} ms; epoch ${r.epoch}.`);
      } else if (what === 'ack') {
        const r = await api.post<{ cooldownWasActive: boolean }>('/api/v1/cluster/database/ack', {});
        setDone(
          r.cooldownWasActive
            ? 'Acknowledged: automatic failover is allowed again.'
            : 'Acknowledged (no cooldown was active).',
        );
      }
      props.onDone();
    } catch (e) {
      setError(messageOf(e));
    }
  };
  return (
    <div class="panel" aria-labelledby="db-actions-title">
      <h3 id="db-actions-title">Database actions</h3>
      {cooling ? (
        <p>
          Automatic failover is paused until {when(new Date(topology.cooldownUntil ?? 0).toISOString())} (cooldown after
          a failover); acknowledge once you have looked at what happened.
        </p>
      ) : null}
      <form
        class="row"
        onSubmit={(e) => {
          e.preventDefault();
          setAsking('switchover');
        }}
      >
        <Field label="Switch over to member" id="switchover-to">
          <input
            id="switchover-to"
            required
            pattern="[A-Za-z0-9][A-Za-z0-9._\-]{0,62}"
            value={to}
            onInput={(e) => setTo(e.currentTarget.value)}
          />
        </Field>
        <button type="submit" class="danger">
          Switch over
        </button>
        <button type="button" onClick={() => setAsking('ack')}>
          Acknowledge the last failover
        </button>
      </form>
      {done ? <p role="status">{done}</p> : null}
      <Alert message={error} />
      <Confirm
        open={asking !== undefined}
        title={asking === 'switchover' ? `Switch the database over to ${to.trim()}?` : 'Acknowledge the last failover?'}
        confirmLabel={asking === 'switchover' ? 'Switch over now' : 'Acknowledge'}
        onConfirm={() => void run()}
        onCancel={() => setAsking(undefined)}
      >
        <p>
          {asking === 'switchover'
            ? `The primary ${topology.primary ?? ''} turns read-only until ${to.trim()} has every transaction and takes writes; the dbmanager refuses before changing anything when either is not healthy enough.`
            : 'The dbmanager may fail over automatically again at once, instead of waiting for its cooldown to end.'}
        </p>
      </Confirm>
    </div>
  );
}

/** The dbmanager's latest events, newest first; anything unexpected in a row is shown as facts. */
function ManagerEvents(props: { events: unknown[] }) {
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  return (
    <Table caption="Recent manager events, newest first" head={['Time', 'Type', 'Severity', 'Member', 'What happened']}>
      {props.events.map((raw, i) => {
        const e = (raw && typeof raw === 'object' ? raw : {}) as Record<string, unknown>;
        const severity = str(e.severity);
        return (
          <tr key={str(e.id) ?? i}>
            <td>{when(str(e.at))}</td>
            <td>{str(e.type) ?? '—'}</td>
            <td>{severity ? <Badge state={severity} /> : '—'}</td>
            <td>{str(e.member) ?? '—'}</td>
            <td>{str(e.message) ?? <Value value={raw} />}</td>
          </tr>
        );
      })}
    </Table>
  );
}
