import { useState } from 'preact/hooks';
import { api, listAll } from '../api.js';
import { orgsWith } from '../session.js';
import type { EnrolmentToken, Me, Provider } from '../types.js';
import {
  Alert,
  Badge,
  Confirm,
  Field,
  Link,
  Page,
  Secret,
  Status,
  Table,
  messageOf,
  useLoad,
  when,
  type Submit,
} from '../ui.js';

interface TokenSummary {
  id: string;
  note: string;
  state: string;
  createdAt: string;
  expiresAt: string;
  usedAt?: string;
  agentId?: string;
}

/** The command a provider pastes beside its data; the agent exchanges the token for its credential on first start. */
export function agentCommand(platform: string, token: string): string {
  return `insitu agent --platform ${platform} --token ${token} --config agent.yaml`;
}

/**
 * Become a provider and enrol agents: create a provider of one of your organisations
 * (`POST /api/v1/providers`), then a single-use enrolment token (`POST /api/v1/tokens`),
 * shown once together with the exact `insitu agent …` command to run beside the data.
 */
export function Enrol(props: { me: Me }) {
  const orgs = orgsWith(props.me, 'provider');
  const orgIds = new Set(orgs.map((o) => o.orgId));
  const providers = useLoad(
    async () =>
      (await listAll<Provider>('/api/v1/providers')).items.filter((p) => props.me.platformAdmin || orgIds.has(p.orgId)),
    [],
  );
  const [orgId, setOrgId] = useState(orgs.find((o) => o.orgStatus === 'active')?.orgId ?? orgs[0]?.orgId ?? '');
  const [name, setName] = useState('');
  const [description, setDescription] = useState('');
  const [providerError, setProviderError] = useState<string>();
  const [providerId, setProviderId] = useState('');
  const [note, setNote] = useState('');
  const [tokenError, setTokenError] = useState<string>();
  const [created, setCreated] = useState<{ token: string; provider: string; expiresAt: string }>();
  const [revoking, setRevoking] = useState<TokenSummary>();
  const chosen = providerId || providers.data?.[0]?.id || '';
  const tokens = useLoad(
    async () => (chosen ? (await listAll<TokenSummary>(`/api/v1/tokens?provider=${chosen}`)).items : []),
    [chosen],
  );

  const createProvider = async (event: Submit) => {
    event.preventDefault();
    setProviderError(undefined);
    try {
      const p = await api.post<Provider>('/api/v1/providers', {
        orgId,
        name: name.trim(),
        ...(description.trim() ? { description: description.trim() } : {}),
      });
      setName('');
      setDescription('');
      setProviderId(p.id);
      providers.reload();
    } catch (e) {
      setProviderError(messageOf(e));
    }
  };
  const createToken = async (event: Submit) => {
    event.preventDefault();
    setTokenError(undefined);
    setCreated(undefined);
    try {
      const t = await api.post<EnrolmentToken>('/api/v1/tokens', {
        providerId: chosen,
        ...(note.trim() ? { note: note.trim() } : {}),
      });
      setNote('');
      const p = providers.data?.find((x) => x.id === chosen);
      setCreated({ token: t.token, provider: p?.name ?? chosen, expiresAt: t.expiresAt });
      tokens.reload();
    } catch (e) {
      setTokenError(messageOf(e));
    }
  };
  const revoke = async () => {
    const token = revoking;
    setRevoking(undefined);
    if (!token) return;
    try {
      await api.del(`/api/v1/tokens/${token.id}`);
      tokens.reload();
    } catch (e) {
      setTokenError(messageOf(e));
    }
  };

  return (
    <Page title="Offer data: providers and agent enrolment">
      <p>
        <Link href="/providers">Back to providers and agents</Link>
      </p>
      <section aria-labelledby="new-provider-title">
        <h2 id="new-provider-title">New provider</h2>
        {orgs.length === 0 ? (
          <p class="muted">You hold the provider role in no organisation.</p>
        ) : (
          <form class="row" onSubmit={(e) => void createProvider(e)}>
            <Field label="Organisation" id="provider-org">
              <select id="provider-org" value={orgId} onChange={(e) => setOrgId(e.currentTarget.value)}>
                {orgs.map((o) => (
                  <option key={o.orgId} value={o.orgId}>
                    {o.orgName}
                    {o.orgStatus === 'active' ? '' : ` (${o.orgStatus})`}
                  </option>
                ))}
              </select>
            </Field>
            <Field label="Provider name" id="provider-name">
              <input
                id="provider-name"
                required
                pattern="[a-z0-9][a-z0-9.\-]{0,62}"
                value={name}
                onInput={(e) => setName(e.currentTarget.value)}
              />
            </Field>
            <Field label="Description" id="provider-description">
              <input
                id="provider-description"
                value={description}
                onInput={(e) => setDescription(e.currentTarget.value)}
              />
            </Field>
            <button type="submit">Create provider</button>
          </form>
        )}
        <Alert message={providerError} />
      </section>
      <section aria-labelledby="enrol-title">
        <h2 id="enrol-title">Enrol an agent</h2>
        <Status loaded={providers} />
        {providers.data?.length === 0 ? <p class="muted">Create a provider first.</p> : null}
        {providers.data?.length ? (
          <form class="row" onSubmit={(e) => void createToken(e)}>
            <Field label="Provider" id="token-provider">
              <select id="token-provider" value={chosen} onChange={(e) => setProviderId(e.currentTarget.value)}>
                {providers.data.map((p) => (
                  <option key={p.id} value={p.id}>
                    {p.name}
                  </option>
                ))}
              </select>
            </Field>
            <Field label="Note (where the agent runs)" id="token-note">
              <input id="token-note" maxLength={200} value={note} onInput={(e) => setNote(e.currentTarget.value)} />
            </Field>
            <button type="submit">Create enrolment token</button>
          </form>
        ) : null}
        <Alert message={tokenError} />
        {created ? (
          <div role="status">
            <p>
              A single-use token for <strong>{created.provider}</strong>, valid until {when(created.expiresAt)}. On the
              machine beside the data, with <code>agent.yaml</code> naming your data sources, run:
            </p>
            <Secret label="Agent command" id="agent-command" value={agentCommand(location.origin, created.token)} />
          </div>
        ) : null}
        <Status loaded={tokens} />
        <Table
          caption="Enrolment tokens of this provider"
          head={['Created', 'Note', 'State', 'Expires', 'Agent', 'Action']}
          empty={tokens.data !== undefined && tokens.data.length === 0}
        >
          {(tokens.data ?? []).map((t) => (
            <tr key={t.id}>
              <td>{when(t.createdAt)}</td>
              <td>{t.note}</td>
              <td>
                <Badge state={t.state} />
              </td>
              <td>{when(t.expiresAt)}</td>
              <td>{t.agentId ? <code>{t.agentId}</code> : '—'}</td>
              <td>
                {t.state === 'unused' ? (
                  <button type="button" class="danger" onClick={() => setRevoking(t)}>
                    Revoke token {t.note || t.id}
                  </button>
                ) : null}
              </td>
            </tr>
          ))}
        </Table>
        <Confirm
          open={revoking !== undefined}
          title="Revoke this enrolment token?"
          confirmLabel="Revoke token"
          onConfirm={() => void revoke()}
          onCancel={() => setRevoking(undefined)}
        >
          <p>An agent that has not enrolled with it yet can no longer do so.</p>
        </Confirm>
      </section>
    </Page>
  );
}
