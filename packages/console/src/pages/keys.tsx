import { useState } from 'preact/hooks';
import { api, listAll, qs, type Page as ApiPage } from '../api.js';
import { orgsWith } from '../session.js';
import type { Key, Me, Service, UsageRow } from '../types.js';
import { Alert, Badge, Field, Page, Status, Table, messageOf, useLoad, when, type Submit } from '../ui.js';

/**
 * The secret of the key created last in this tab, for "try it" on a service's page. It
 * lives in memory only: a reload forgets it, as the API shows a key once.
 */
export const lastCreatedKey: { value?: string } = {};

export function Keys(props: { me: Me }) {
  const orgs = orgsWith(props.me, 'user');
  const keys = useLoad(() => listAll<Key>('/api/v1/keys'), []);
  const services = useLoad(() => listAll<Service>('/api/v1/services'), []);
  // Last use per key: the newest hour with calls in the key's usage.
  const lastUse = useLoad(async () => {
    const usage = await api.get<{ items: UsageRow[] }>(`/api/v1/usage${qs({ granularity: 'hour', groupBy: 'key' })}`);
    const out = new Map<string, string>();
    for (const row of usage.items)
      if (row.keyId && row.calls > 0 && (out.get(row.keyId) ?? '') < row.period) out.set(row.keyId, row.period);
    return out;
  }, [keys.data]);
  const [orgId, setOrgId] = useState(orgs[0]?.orgId ?? '');
  const [name, setName] = useState('');
  const [chosen, setChosen] = useState<string[]>([]);
  const [created, setCreated] = useState<string>();
  const [error, setError] = useState<string>();
  const serviceName = new Map((services.data?.items ?? []).map((s) => [s.id, s.name]));

  const create = async (event: Submit) => {
    event.preventDefault();
    setError(undefined);
    try {
      const result = await api.post<Key & { key: string }>('/api/v1/keys', { orgId, name, services: chosen });
      lastCreatedKey.value = result.key;
      setCreated(result.key);
      setName('');
      keys.reload();
    } catch (e) {
      setError(messageOf(e));
    }
  };
  const revoke = async (key: Key) => {
    if (!window.confirm(`Revoke ${key.name}? Calls with it fail at once.`)) return;
    try {
      await api.del(`/api/v1/keys/${key.id}`);
      if (lastCreatedKey.value?.startsWith(key.prefix)) delete lastCreatedKey.value;
      keys.reload();
    } catch (e) {
      setError(messageOf(e));
    }
  };
  const toggle = (id: string) => setChosen((c) => (c.includes(id) ? c.filter((x) => x !== id) : [...c, id]));
  const items = keys.data?.items ?? [];
  return (
    <Page title="API keys">
      {orgs.length ? (
        <form class="panel" onSubmit={(e) => void create(e)} aria-labelledby="key-title">
          <h2 id="key-title">Create a key</h2>
          <div class="row">
            <Field label="Organisation" id="key-org">
              <select id="key-org" value={orgId} onChange={(e) => setOrgId(e.currentTarget.value)}>
                {orgs.map((o) => (
                  <option key={o.orgId} value={o.orgId}>
                    {o.orgName}
                  </option>
                ))}
              </select>
            </Field>
            <Field label="Key name" id="key-name">
              <input id="key-name" required value={name} onInput={(e) => setName(e.currentTarget.value)} />
            </Field>
          </div>
          <fieldset>
            <legend>Services it may call</legend>
            {(services.data?.items ?? []).map((s) => (
              <label key={s.id} class="check">
                <input type="checkbox" checked={chosen.includes(s.id)} onChange={() => toggle(s.id)} /> {s.name}
              </label>
            ))}
          </fieldset>
          <Alert message={error} />
          <button type="submit" disabled={chosen.length === 0}>
            Create key
          </button>
        </form>
      ) : null}
      {created ? (
        <div class="panel notice" role="status">
          <h2>Your new key</h2>
          <p>Copy it now: it is shown this once.</p>
          <p>
            <code class="wrap" data-testid="new-key">
              {created}
            </code>
          </p>
          <button type="button" onClick={() => void navigator.clipboard?.writeText(created)}>
            Copy
          </button>{' '}
          <button type="button" onClick={() => setCreated(undefined)}>
            I have saved it
          </button>
        </div>
      ) : null}
      <Status loaded={keys} />
      <Table
        caption="Keys of your organisations"
        head={['Name', 'Prefix', 'Services', 'State', 'Created', 'Last use', '']}
        empty={keys.data !== undefined && items.length === 0}
      >
        {items.map((k) => (
          <tr key={k.id}>
            <td>{k.name}</td>
            <td>
              <code>{k.prefix}…</code>
            </td>
            <td>{k.services.map((id) => serviceName.get(id) ?? id).join(', ')}</td>
            <td>
              <Badge state={k.state} />
            </td>
            <td>{when(k.createdAt)}</td>
            <td>{lastUse.data?.get(k.id) ? `hour of ${when(lastUse.data.get(k.id))}` : 'never'}</td>
            <td>
              {k.state === 'active' ? (
                <button type="button" class="danger" onClick={() => void revoke(k)} aria-label={`Revoke ${k.name}`}>
                  Revoke
                </button>
              ) : null}
            </td>
          </tr>
        ))}
      </Table>
    </Page>
  );
}
