import { useState } from 'preact/hooks';
import { api, listAll, qs, type Page as ApiPage } from '../api.js';
import { navigate } from '../router.js';
import type { Approval, ApprovalDetail } from '../types.js';
import { Alert, Badge, Field, Link, Page, Status, Table, messageOf, short, useLoad, when, type Submit } from '../ui.js';
import { BundleDiff, FileViewer } from './files.js';

export function Approvals() {
  const [state, setState] = useState('pending');
  const list = useLoad(() => listAll<Approval>(`/api/v1/approvals${qs({ state })}`), [state]);
  const items = list.data?.items ?? [];
  return (
    <Page title="Approvals">
      <Field label="Show" id="approval-state">
        <select id="approval-state" value={state} onChange={(e) => setState(e.currentTarget.value)}>
          <option value="pending">waiting for a decision</option>
          <option value="approved">approved</option>
          <option value="rejected">rejected</option>
        </select>
      </Field>
      <Status loaded={list} />
      <Table
        caption="Applications that want your data"
        head={['Application', 'Version', 'Digest', 'Provider', 'State', 'Submitted']}
        empty={list.data !== undefined && items.length === 0}
      >
        {items.map((a) => (
          <tr key={a.id}>
            <td>
              <Link href={`/approvals/${a.id}`}>{a.appName}</Link>
            </td>
            <td>{a.version}</td>
            <td>
              <code title={a.digest}>{short(a.digest)}</code>
            </td>
            <td>{a.providerName}</td>
            <td>
              <Badge state={a.state} />
            </td>
            <td>{when(a.createdAt)}</td>
          </tr>
        ))}
      </Table>
    </Page>
  );
}

export function ApprovalPage(props: { id: string }) {
  const detail = useLoad(() => api.get<ApprovalDetail>(`/api/v1/approvals/${props.id}`), [props.id]);
  // The provider's previous decision on this application, to show what changed since.
  const previous = useLoad(async () => {
    const a = await api.get<ApprovalDetail>(`/api/v1/approvals/${props.id}`);
    const all = await listAll<Approval>(`/api/v1/approvals${qs({ provider: a.providerId })}`);
    const earlier = all.items
      .filter((x) => x.appId === a.appId && x.id !== a.id && x.createdAt < a.createdAt)
      .sort((x, y) => y.createdAt.localeCompare(x.createdAt))[0];
    return earlier ? api.get<ApprovalDetail>(`/api/v1/approvals/${earlier.id}`) : null;
  }, [props.id]);
  const [reason, setReason] = useState('');
  const [error, setError] = useState<string>();
  const d = detail.data;
  const decide = async (decision: 'approve' | 'reject', event?: Submit) => {
    event?.preventDefault();
    setError(undefined);
    if (decision === 'reject' && !reason.trim()) {
      setError('Say why you reject it: the developer sees the reason.');
      return;
    }
    try {
      await api.post(`/api/v1/approvals/${props.id}/${decision}`, reason.trim() ? { reason: reason.trim() } : {});
      navigate('/approvals');
    } catch (e) {
      setError(messageOf(e));
    }
  };
  return (
    <Page title={d ? `Review ${d.appName} ${d.version}` : 'Review'}>
      <Status loaded={detail} />
      {d ? (
        <>
          <dl class="facts">
            <dt>State</dt>
            <dd>
              <Badge state={d.state} />
            </dd>
            <dt>Provider</dt>
            <dd>{d.providerName}</dd>
            <dt>Would read</dt>
            <dd>{d.datasets.join(', ')}</dd>
            <dt>Digest</dt>
            <dd>
              <code class="wrap">{d.digest}</code>
            </dd>
            {d.reason ? (
              <>
                <dt>Reason</dt>
                <dd>{d.reason}</dd>
              </>
            ) : null}
          </dl>
          {d.state === 'pending' ? (
            <form class="panel" onSubmit={(e) => void decide('approve', e)} aria-labelledby="decide-title">
              <h2 id="decide-title">Decision</h2>
              <Field label="Reason" id="reason" hint="Required to reject; the developer sees it">
                <textarea
                  id="reason"
                  rows={2}
                  value={reason}
                  onInput={(e) => setReason(e.currentTarget.value)}
                  aria-describedby="reason-hint"
                />
              </Field>
              <Alert message={error} />
              <div class="buttons">
                <button type="submit">Approve this digest</button>
                <button type="button" class="danger" onClick={() => void decide('reject')}>
                  Reject
                </button>
              </div>
            </form>
          ) : null}
          <h2>Files</h2>
          <FileViewer files={d.files} />
          {previous.data ? (
            <>
              <h2>Changes since {previous.data.version}</h2>
              <BundleDiff
                before={previous.data.files}
                after={d.files}
                beforeLabel={`version ${previous.data.version}`}
              />
            </>
          ) : null}
          <h2>Manifest</h2>
          <pre class="code" tabIndex={0}>
            {JSON.stringify(d.manifest, null, 2)}
          </pre>
        </>
      ) : null}
    </Page>
  );
}
