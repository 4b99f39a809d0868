import { useState } from 'preact/hooks';
import { api, listAll, qs, request, type Page as ApiPage } from '../api.js';
import { navigate } from '../router.js';
import { orgsWith } from '../session.js';
import { folderEntries, tarOf } from '../tar.js';
import type { App, Deployment, Me, Service, Version } from '../types.js';
import { Alert, Badge, Field, Link, Page, Status, Table, messageOf, short, useLoad, when, type Submit } from '../ui.js';
import { FileViewer } from './files.js';

/** The bytes to send and their content type, from a chosen tarball or folder. */
async function bundleOf(tarball: File | undefined, folder: FileList | null): Promise<{ data: Blob; type: string }> {
  if (tarball)
    return { data: tarball, type: /\.(tgz|gz)$/i.test(tarball.name) ? 'application/gzip' : 'application/x-tar' };
  if (folder && folder.length > 0)
    return { data: new Blob([tarOf(await folderEntries(folder))]), type: 'application/x-tar' };
  throw new Error('choose a tarball or a folder');
}

function SubmitVersion(props: { me: Me; app?: App; onDone: (v: Version) => void }) {
  const orgs = orgsWith(props.me, 'developer');
  const [orgId, setOrgId] = useState(props.app?.orgId ?? orgs[0]?.orgId ?? '');
  const [name, setName] = useState(props.app?.name ?? '');
  const [tarball, setTarball] = useState<File>();
  const [folder, setFolder] = useState<FileList | null>(null);
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  if (orgs.length === 0) return null;
  const submit = async (event: Submit) => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const bundle = await bundleOf(tarball, folder);
      let app = props.app;
      if (!app) {
        const found = await api.get<ApiPage<App>>(`/api/v1/apps${qs({ org: orgId, name })}`);
        app = found.items[0] ?? (await api.post<App>('/api/v1/apps', { orgId, name }));
      }
      const version = await request<Version>('POST', `/api/v1/apps/${app.id}/versions`, { raw: bundle });
      props.onDone(version);
    } catch (e) {
      setError(messageOf(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="panel" onSubmit={(e) => void submit(e)} aria-labelledby="submit-title">
      <h2 id="submit-title">Submit a version</h2>
      {props.app ? null : (
        <div class="row">
          <Field label="Organisation" id="org">
            <select id="org" value={orgId} onChange={(e) => setOrgId(e.currentTarget.value)}>
              {orgs.map((o) => (
                <option key={o.orgId} value={o.orgId}>
                  {o.orgName}
                </option>
              ))}
            </select>
          </Field>
          <Field label="Application name" id="app-name" hint="As in insitu.json; created if new">
            <input
              id="app-name"
              required
              pattern="[a-z0-9][a-z0-9-]*"
              value={name}
              onInput={(e) => setName(e.currentTarget.value)}
              aria-describedby="app-name-hint"
            />
          </Field>
        </div>
      )}
      <div class="row">
        <Field label="Bundle tarball (.tar, .tar.gz)" id="bundle">
          <input
            id="bundle"
            type="file"
            accept=".tar,.tgz,.gz,application/x-tar,application/gzip"
            onChange={(e) => setTarball(e.currentTarget.files?.[0])}
          />
        </Field>
        <Field label="…or a folder" id="folder">
          <input
            id="folder"
            type="file"
            {...{ webkitdirectory: true }}
            multiple
            onChange={(e) => setFolder(e.currentTarget.files)}
          />
        </Field>
      </div>
      <Alert message={error} />
      <button type="submit" disabled={busy}>
        {busy ? 'Submitting…' : 'Submit for approval'}
      </button>
    </form>
  );
}

export function Apps(props: { me: Me }) {
  const apps = useLoad(() => listAll<App>('/api/v1/apps'), []);
  const items = apps.data?.items ?? [];
  return (
    <Page title="Applications">
      <SubmitVersion me={props.me} onDone={(v) => navigate(`/apps/${v.appId}/versions/${v.id}`)} />
      <Status loaded={apps} />
      <Table
        caption="Your applications"
        head={['Name', 'Description', 'Created']}
        empty={apps.data !== undefined && items.length === 0}
      >
        {items.map((a) => (
          <tr key={a.id}>
            <td>
              <Link href={`/apps/${a.id}`}>{a.name}</Link>
            </td>
            <td>{a.description}</td>
            <td>{when(a.createdAt)}</td>
          </tr>
        ))}
      </Table>
    </Page>
  );
}

function Publish(props: { app: App; onDone: (s: Service) => void }) {
  const [name, setName] = useState(props.app.name);
  const [access, setAccess] = useState('restricted');
  const [error, setError] = useState<string>();
  const submit = async (event: Submit) => {
    event.preventDefault();
    setError(undefined);
    try {
      props.onDone(await api.post<Service>('/api/v1/services', { name, appId: props.app.id, access }));
    } catch (e) {
      setError(messageOf(e));
    }
  };
  return (
    <form class="panel" onSubmit={(e) => void submit(e)} aria-labelledby="publish-title">
      <h2 id="publish-title">Publish as a service</h2>
      <div class="row">
        <Field label="Service name" id="service-name">
          <input id="service-name" required value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </Field>
        <Field label="Access" id="access">
          <select id="access" value={access} onChange={(e) => setAccess(e.currentTarget.value)}>
            <option value="restricted">restricted (granted organisations)</option>
            <option value="public">public (any key)</option>
          </select>
        </Field>
      </div>
      <Alert message={error} />
      <button type="submit">Publish</button>
    </form>
  );
}

export function AppPage(props: { me: Me; id: string }) {
  const app = useLoad(() => api.get<App>(`/api/v1/apps/${props.id}`), [props.id]);
  const versions = useLoad(() => listAll<Version>(`/api/v1/apps/${props.id}/versions`), [props.id]);
  const services = useLoad(() => listAll<Service>('/api/v1/services'), [props.id]);
  const a = app.data;
  const published = (services.data?.items ?? []).filter((s) => s.appId === props.id);
  const isDeveloper = a !== undefined && orgsWith(props.me, 'developer').some((o) => o.orgId === a.orgId);
  return (
    <Page title={a ? `Application ${a.name}` : 'Application'}>
      <Status loaded={app} />
      <Status loaded={versions} />
      <Table
        caption="Versions"
        head={['Version', 'Digest (sha256)', 'Size', 'State', 'Approvals', 'Submitted']}
        empty={versions.data !== undefined && versions.data.items.length === 0}
      >
        {(versions.data?.items ?? []).map((v) => (
          <tr key={v.id}>
            <td>
              <Link href={`/apps/${props.id}/versions/${v.id}`}>{v.version}</Link>
            </td>
            <td>
              <code title={v.digest}>{short(v.digest)}</code>
            </td>
            <td>{v.size} B</td>
            <td>
              <Badge state={v.state} />
            </td>
            <td>
              {v.approvals.map((p) => (
                <span key={p.id}>
                  {p.providerName}: <Badge state={p.state} />{' '}
                </span>
              ))}
            </td>
            <td>{when(v.createdAt)}</td>
          </tr>
        ))}
      </Table>
      {published.length ? (
        <p>
          Published as{' '}
          {published.map((s) => (
            <Link key={s.id} href={`/services/${s.id}`}>
              {s.name}
            </Link>
          ))}
          .
        </p>
      ) : null}
      {a && isDeveloper ? (
        <>
          <SubmitVersion me={props.me} app={a} onDone={(v) => navigate(`/apps/${v.appId}/versions/${v.id}`)} />
          {published.length === 0 ? <Publish app={a} onDone={(s) => navigate(`/services/${s.id}`)} /> : null}
        </>
      ) : null}
    </Page>
  );
}

function Deploy(props: { version: Version; onDone: () => void }) {
  const providers = [...new Map(props.version.datasets.map((d) => [d.providerId, d.providerName])).entries()];
  const [providerId, setProviderId] = useState(providers[0]?.[0] ?? '');
  const [replicas, setReplicas] = useState(1);
  const [error, setError] = useState<string>();
  const submit = async (event: Submit) => {
    event.preventDefault();
    setError(undefined);
    try {
      await api.post<Deployment>('/api/v1/deployments', { versionId: props.version.id, providerId, replicas });
      props.onDone();
    } catch (e) {
      setError(messageOf(e));
    }
  };
  return (
    <form class="panel" onSubmit={(e) => void submit(e)} aria-labelledby="deploy-title">
      <h2 id="deploy-title">Deploy</h2>
      <div class="row">
        <Field label="Provider" id="deploy-provider">
          <select id="deploy-provider" value={providerId} onChange={(e) => setProviderId(e.currentTarget.value)}>
            {providers.map(([id, name]) => (
              <option key={id} value={id}>
                {name}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Instances per agent" id="replicas">
          <input
            id="replicas"
            type="number"
            min={1}
            max={64}
            value={replicas}
            onInput={(e) => setReplicas(Number(e.currentTarget.value))}
          />
        </Field>
      </div>
      <Alert message={error} />
      <button type="submit" disabled={props.version.state !== 'approved'}>
        Deploy this version
      </button>
      {props.version.state !== 'approved' ? <p class="muted">Every provider must approve this version first.</p> : null}
    </form>
  );
}

export function VersionPage(props: { me: Me; appId: string; versionId: string }) {
  const version = useLoad(
    () => api.get<Version>(`/api/v1/apps/${props.appId}/versions/${props.versionId}`),
    [props.versionId],
  );
  const v = version.data;
  const fetchFile = (path: string) =>
    request<string>('GET', `/api/v1/apps/${props.appId}/versions/${props.versionId}/file${qs({ path })}`);
  const isDeveloper = orgsWith(props.me, 'developer').length > 0;
  return (
    <Page title={v ? `${v.appName} ${v.version}` : 'Version'}>
      <Status loaded={version} />
      {v ? (
        <>
          <dl class="facts">
            <dt>State</dt>
            <dd>
              <Badge state={v.state} />
            </dd>
            <dt>Digest</dt>
            <dd>
              <code class="wrap">{v.digest}</code>
            </dd>
            <dt>Reads</dt>
            <dd>{v.datasets.map((d) => `${d.providerName}/${d.dataset}`).join(', ')}</dd>
            <dt>Submitted</dt>
            <dd>{when(v.createdAt)}</dd>
          </dl>
          <Table caption="Approvals" head={['Provider', 'State', 'Reason', 'Decided']}>
            {v.approvals.map((p) => (
              <tr key={p.id}>
                <td>{p.providerName}</td>
                <td>
                  <Badge state={p.state} />
                </td>
                <td>{p.reason}</td>
                <td>{when(p.decidedAt)}</td>
              </tr>
            ))}
          </Table>
          {isDeveloper ? <Deploy version={v} onDone={() => navigate('/deployments')} /> : null}
          <h2>Files</h2>
          <FileViewer files={v.files} load={fetchFile} />
          <h2>Manifest</h2>
          <pre class="code" tabIndex={0}>
            {JSON.stringify(v.manifest, null, 2)}
          </pre>
        </>
      ) : null}
    </Page>
  );
}
