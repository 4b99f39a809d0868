import { useState } from 'preact/hooks';
import { api, listAll } from '../api.js';
import type { Org } from '../types.js';
import { Alert, Badge, Confirm, Field, Page, Status, Table, messageOf, useLoad, when, type Submit } from '../ui.js';

/** Organisations (platform administrators): approve sign-ups, suspend, create one directly. */
export function Orgs() {
  const orgs = useLoad(() => listAll<Org>('/api/v1/orgs'), []);
  const [name, setName] = useState('');
  const [error, setError] = useState<string>();
  const [suspending, setSuspending] = useState<Org>();
  const act = async (org: Org, action: 'approve' | 'suspend') => {
    setError(undefined);
    try {
      await api.post(`/api/v1/orgs/${org.id}/${action}`);
      orgs.reload();
    } catch (e) {
      setError(messageOf(e));
    }
  };
  const create = async (event: Submit) => {
    event.preventDefault();
    setError(undefined);
    try {
      await api.post('/api/v1/orgs', { name: name.trim() });
      setName('');
      orgs.reload();
    } catch (e) {
      setError(messageOf(e));
    }
  };
  const items = orgs.data?.items ?? [];
  return (
    <Page title="Organisations">
      <Status loaded={orgs} />
      <Alert message={error} />
      <Table
        caption="Organisations, pending sign-ups first"
        head={['Name', 'Display name', 'Status', 'Created', 'Action']}
        empty={orgs.data !== undefined && items.length === 0}
      >
        {[...items]
          .sort((a, b) => Number(b.status === 'pending') - Number(a.status === 'pending'))
          .map((o) => (
            <tr key={o.id}>
              <td>{o.name}</td>
              <td>{o.displayName}</td>
              <td>
                <Badge state={o.status} />
              </td>
              <td>{when(o.createdAt)}</td>
              <td>
                {o.kind === 'platform' ? null : o.status === 'active' ? (
                  <button type="button" class="danger" onClick={() => setSuspending(o)}>
                    Suspend {o.name}
                  </button>
                ) : (
                  <button type="button" onClick={() => void act(o, 'approve')}>
                    Approve {o.name}
                  </button>
                )}
              </td>
            </tr>
          ))}
      </Table>
      <form class="row" onSubmit={(e) => void create(e)}>
        <Field label="New organisation name" id="org-name">
          <input
            id="org-name"
            required
            pattern="[a-z0-9][a-z0-9.\-]{0,62}"
            value={name}
            onInput={(e) => setName(e.currentTarget.value)}
          />
        </Field>
        <button type="submit">Create organisation</button>
      </form>
      <Confirm
        open={suspending !== undefined}
        title={`Suspend ${suspending?.name ?? ''}?`}
        confirmLabel="Suspend"
        onConfirm={() => {
          const org = suspending;
          setSuspending(undefined);
          if (org) void act(org, 'suspend');
        }}
        onCancel={() => setSuspending(undefined)}
      >
        <p>Its members can no longer change anything on the platform until it is approved again.</p>
      </Confirm>
    </Page>
  );
}
