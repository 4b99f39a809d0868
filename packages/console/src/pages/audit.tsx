import { useState } from 'preact/hooks';
import { api, qs } from '../api.js';
import { navigate } from '../router.js';
import type { AuditRecord, AuditVerification, Me } from '../types.js';
import { Field, Page, Status, Table, messageOf, useLoad, when, type Submit } from '../ui.js';

/** Audit records of calls, filtered by service, key and time; verify the chain here. */
export function Audit(props: { me: Me; search: URLSearchParams }) {
  const service = props.search.get('service') ?? '';
  const keyPrefix = props.search.get('key') ?? '';
  const since = props.search.get('since') ?? '';
  const records = useLoad(
    () => api.get<{ items: AuditRecord[] }>(`/api/v1/audit${qs({ service, limit: 500 })}`),
    [service],
  );
  const [form, setForm] = useState({ service, key: keyPrefix, since });
  const [verified, setVerified] = useState<AuditVerification | string>();
  const submit = (event: Submit) => {
    event.preventDefault();
    navigate(`/audit${qs(form)}`);
  };
  const verify = async () => {
    setVerified(undefined);
    try {
      setVerified(await api.post<AuditVerification>('/api/v1/audit/verify'));
    } catch (e) {
      setVerified(messageOf(e));
    }
  };
  const items = (records.data?.items ?? []).filter(
    (r) => (!keyPrefix || r.keyId.includes(keyPrefix)) && (!since || r.ts >= new Date(since).toISOString()),
  );
  return (
    <Page
      title="Audit"
      actions={
        props.me.platformAdmin ? (
          <button type="button" onClick={() => void verify()}>
            Verify the chain
          </button>
        ) : undefined
      }
    >
      {typeof verified === 'string' ? (
        <p class="error" role="alert">
          {verified}
        </p>
      ) : null}
      {verified && typeof verified !== 'string' ? (
        <p role="status" class={verified.ok ? 'ok' : 'error'}>
          {verified.ok
            ? `Chain intact: ${verified.records} records verified${verified.head ? `, head #${verified.head.seq}` : ''}.`
            : `Chain broken at #${verified.firstBroken?.seq}: ${verified.firstBroken?.reason}`}
        </p>
      ) : null}
      <form class="row" onSubmit={submit} aria-label="Filter">
        <Field label="Service" id="audit-service">
          <input
            id="audit-service"
            value={form.service}
            onInput={(e) => setForm({ ...form, service: e.currentTarget.value })}
          />
        </Field>
        <Field label="Key id" id="audit-key">
          <input id="audit-key" value={form.key} onInput={(e) => setForm({ ...form, key: e.currentTarget.value })} />
        </Field>
        <Field label="Since" id="audit-since">
          <input
            id="audit-since"
            type="datetime-local"
            value={form.since}
            onInput={(e) => setForm({ ...form, since: e.currentTarget.value })}
          />
        </Field>
        <button type="submit">Filter</button>
      </form>
      <Status loaded={records} />
      <Table
        caption="Calls, newest first"
        head={['#', 'Time', 'Service', 'Version', 'Method', 'Status', 'Key', 'Agent', 'ms', 'Bytes out']}
        empty={records.data !== undefined && items.length === 0}
      >
        {items.map((r) => (
          <tr key={r.seq}>
            <td>{r.seq}</td>
            <td>{when(r.ts)}</td>
            <td>{r.serviceName}</td>
            <td>{r.version}</td>
            <td>{r.method}</td>
            <td>
              {r.status}
              {r.errorCode ? ` ${r.errorCode}` : ''}
            </td>
            <td>
              <code>{r.keyId}</code>
            </td>
            <td>
              <code>{r.agentId}</code>
            </td>
            <td>{r.durationMs}</td>
            <td>{r.bytesOut}</td>
          </tr>
        ))}
      </Table>
    </Page>
  );
}
