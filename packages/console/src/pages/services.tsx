import { useState } from 'preact/hooks';
import { api, listAll, qs, type Page as ApiPage } from '../api.js';
import { orgsWith } from '../session.js';
import type { Me, Service, UsageRow } from '../types.js';
import { Alert, Badge, Field, Link, Page, Status, Table, messageOf, useLoad, when, type Submit } from '../ui.js';
import { Bars } from './chart.js';
import { lastCreatedKey } from './keys.js';
import { Endpoint, METHODS, type OpenApiDoc } from './try-it.js';

export function Services() {
  const list = useLoad(() => listAll<Service>('/api/v1/services'), []);
  const items = list.data?.items ?? [];
  return (
    <Page title="Services">
      <Status loaded={list} />
      <Table
        caption="Published data services"
        head={['Name', 'Description', 'Access', 'Versions', 'Reads']}
        empty={list.data !== undefined && items.length === 0}
      >
        {items.map((s) => (
          <tr key={s.id}>
            <td>
              <Link href={`/services/${s.id}`}>{s.name}</Link>
            </td>
            <td>{s.description}</td>
            <td>{s.access}</td>
            <td>
              {s.versions.map((v) => (
                <span key={v.version}>
                  {v.version} <Badge state={v.running ? 'running' : 'stopped'} />{' '}
                </span>
              ))}
            </td>
            <td>{s.datasets.map((d) => `${d.provider}/${d.dataset}`).join(', ')}</td>
          </tr>
        ))}
      </Table>
    </Page>
  );
}

/** API docs rendered from the service's own OpenAPI document, with "try it" using one's key. */
function Docs(props: { service: Service }) {
  const [key, setKey] = useState(lastCreatedKey.value ?? '');
  const needsKey = props.service.access === 'restricted' && !key;
  const doc = useLoad(async () => {
    if (needsKey) return undefined;
    const headers: Record<string, string> = key ? { authorization: `Bearer ${key}` } : {};
    const response = await fetch(`/s/${props.service.name}/openapi.json`, { headers, credentials: 'omit' });
    const body = (await response.json()) as OpenApiDoc & { error?: { message: string; code: string } };
    if (!response.ok)
      throw new Error(body.error ? `${body.error.message} (${body.error.code})` : `HTTP ${response.status}`);
    return body;
  }, [props.service.name, key]);
  const paths = Object.entries(doc.data?.paths ?? {});
  return (
    <section aria-labelledby="docs-title">
      <h2 id="docs-title">API</h2>
      <Field
        label="Your API key for “try it”"
        id="try-key"
        hint="Sent only to this service, from this page; never stored"
      >
        <input
          id="try-key"
          type="password"
          autocomplete="off"
          value={key}
          onInput={(e) => setKey(e.currentTarget.value)}
          aria-describedby="try-key-hint"
        />
      </Field>
      {needsKey ? (
        <p class="muted">
          This service is restricted: enter an API key that may call it to see its endpoints and try them.
        </p>
      ) : (
        <Status loaded={doc} />
      )}
      {doc.data ? (
        <>
          <p>
            {doc.data.info?.title} {doc.data.info?.version} · base URL <code>{doc.data.servers?.[0]?.url}</code>
          </p>
          {paths.map(([path, item]) =>
            Object.keys(item)
              .filter((method) => METHODS.includes(method))
              .map((method) => (
                <Endpoint
                  key={`${method} ${path}`}
                  service={props.service.name}
                  doc={doc.data ?? {}}
                  path={path}
                  method={method}
                  apiKey={key}
                />
              )),
          )}
        </>
      ) : null}
    </section>
  );
}

function Usage(props: { service: Service }) {
  const [granularity, setGranularity] = useState<'hour' | 'day'>('hour');
  const usage = useLoad(
    () => api.get<{ items: UsageRow[] }>(`/api/v1/usage${qs({ service: props.service.id, granularity })}`),
    [props.service.id, granularity],
  );
  const rows = [...(usage.data?.items ?? [])].sort((a, b) => a.period.localeCompare(b.period));
  const total = rows.reduce((n, r) => n + r.calls, 0);
  const errors = rows.reduce((n, r) => n + r.errors, 0);
  return (
    <section aria-labelledby="usage-title">
      <h2 id="usage-title">Usage</h2>
      <div class="row">
        <Field label="By" id="granularity">
          <select
            id="granularity"
            value={granularity}
            onChange={(e) => setGranularity(e.currentTarget.value as 'hour' | 'day')}
          >
            <option value="hour">hour</option>
            <option value="day">day</option>
          </select>
        </Field>
        <button type="button" onClick={usage.reload}>
          Refresh usage
        </button>
      </div>
      <Status loaded={usage} />
      <p data-testid="usage-total">
        {total} calls, {errors} errors
      </p>
      {rows.length ? (
        <Bars
          label={`Calls per ${granularity}`}
          rows={rows.map((r) => ({ x: r.period, calls: r.calls, errors: r.errors }))}
        />
      ) : null}
      <Table
        caption={`Calls per ${granularity}`}
        head={['Period', 'Calls', 'Errors', 'Average ms', 'p50 ms', 'p99 ms', 'Bytes out']}
        empty={usage.data !== undefined && rows.length === 0}
      >
        {rows.map((r) => (
          <tr key={r.period}>
            <td>{when(r.period)}</td>
            <td>{r.calls}</td>
            <td>{r.errors}</td>
            <td>{r.avgDurationMs.toFixed(1)}</td>
            <td>{r.p50Ms === undefined ? '–' : `≤ ${r.p50Ms}`}</td>
            <td>{r.p99Ms === undefined ? '–' : `≤ ${r.p99Ms}`}</td>
            <td>{r.bytesOut}</td>
          </tr>
        ))}
      </Table>
    </section>
  );
}

function Grants(props: { service: Service }) {
  const grants = useLoad(
    () => api.get<{ orgIds: string[] }>(`/api/v1/services/${props.service.id}/grants`),
    [props.service.id],
  );
  const [orgId, setOrgId] = useState('');
  const [error, setError] = useState<string>();
  const submit = async (event: Submit) => {
    event.preventDefault();
    setError(undefined);
    try {
      await api.post(`/api/v1/services/${props.service.id}/grants`, { orgId: orgId.trim() });
      setOrgId('');
      grants.reload();
    } catch (e) {
      setError(messageOf(e));
    }
  };
  return (
    <section aria-labelledby="grants-title">
      <h2 id="grants-title">Granted organisations</h2>
      <Status loaded={grants} />
      <ul>
        {(grants.data?.orgIds ?? []).map((id) => (
          <li key={id}>
            <code>{id}</code>
          </li>
        ))}
      </ul>
      <form class="row" onSubmit={(e) => void submit(e)}>
        <Field label="Grant to organisation id" id="grant-org">
          <input id="grant-org" required value={orgId} onInput={(e) => setOrgId(e.currentTarget.value)} />
        </Field>
        <button type="submit">Grant</button>
      </form>
      <Alert message={error} />
    </section>
  );
}

export function ServicePage(props: { me: Me; id: string }) {
  const service = useLoad(() => api.get<Service>(`/api/v1/services/${props.id}`), [props.id]);
  const s = service.data;
  const owner = s !== undefined && orgsWith(props.me, 'developer').some((o) => o.orgId === s.orgId);
  return (
    <Page title={s ? `Service ${s.name}` : 'Service'}>
      <Status loaded={service} />
      {s ? (
        <>
          <p>{s.description}</p>
          <dl class="facts">
            <dt>URL</dt>
            <dd>
              <code class="wrap">{s.url}</code>
            </dd>
            <dt>Access</dt>
            <dd>{s.access}</dd>
            <dt>Versions</dt>
            <dd>
              {s.versions.map((v) => `${v.version} (${v.path}${v.running ? ', running' : ''})`).join(', ') || '—'}
            </dd>
            <dt>Reads</dt>
            <dd>
              {s.datasets.map((d) =>
                d.datasetId ? (
                  <Link key={d.dataset} href={`/datasets/${d.datasetId}`}>
                    {d.provider}/{d.dataset}{' '}
                  </Link>
                ) : (
                  `${d.provider}/${d.dataset} `
                ),
              )}
            </dd>
            <dt>Limits</dt>
            <dd>{JSON.stringify(s.limits)}</dd>
          </dl>
          <p>
            <Link href="/keys">Create a key for this service</Link> ·{' '}
            <Link href={`/audit?service=${encodeURIComponent(s.name)}`}>Calls in the audit log</Link>
          </p>
          <Docs service={s} />
          <Usage service={s} />
          {owner && s.access === 'restricted' ? <Grants service={s} /> : null}
        </>
      ) : null}
    </Page>
  );
}
