import { useState } from 'preact/hooks';
import { api, listAll, qs, type Page as ApiPage } from '../api.js';
import { navigate } from '../router.js';
import type { Dataset, Service } from '../types.js';
import { Field, Link, Page, Status, Table, useLoad, when, type Submit } from '../ui.js';

/** Search with facets: the words, a provider, tags and a column name, all in the address. */
export function Catalog(props: { search: URLSearchParams }) {
  const q = props.search.get('q') ?? '';
  const provider = props.search.get('provider') ?? '';
  const column = props.search.get('column') ?? '';
  const tags = props.search.getAll('tag');
  const key = props.search.toString();
  const results = useLoad(
    () => api.get<ApiPage<Dataset>>(`/api/v1/datasets${qs({ q, provider, column, tag: tags, limit: 100 })}`),
    [key],
  );
  const [text, setText] = useState(q);
  const [columnText, setColumnText] = useState(column);

  const go = (next: { q?: string; provider?: string; column?: string; tag?: string[] }) => {
    const merged = { q, provider, column, tag: tags, ...next };
    navigate(`/catalog${qs(merged)}`);
  };
  const submit = (event: Submit) => {
    event.preventDefault();
    go({ q: text.trim(), column: columnText.trim() });
  };
  const items = results.data?.items ?? [];
  // Facets from the results: which providers and tags they hold, with counts.
  const count = (values: string[]) => {
    const out = new Map<string, number>();
    for (const v of values) out.set(v, (out.get(v) ?? 0) + 1);
    return [...out.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  };
  const providerFacet = count(items.map((d) => d.providerName));
  const tagFacet = count(items.flatMap((d) => d.tags));
  const toggleTag = (tag: string) => go({ tag: tags.includes(tag) ? tags.filter((t) => t !== tag) : [...tags, tag] });

  return (
    <Page title="Catalog">
      <form class="search" role="search" onSubmit={submit}>
        <Field label="Search datasets" id="q" hint="Words in names, tags, column names and descriptions">
          <input
            id="q"
            type="search"
            value={text}
            onInput={(e) => setText(e.currentTarget.value)}
            aria-describedby="q-hint"
          />
        </Field>
        <Field label="Column name" id="column">
          <input id="column" value={columnText} onInput={(e) => setColumnText(e.currentTarget.value)} />
        </Field>
        <button type="submit">Search</button>
      </form>
      <div class="with-facets">
        <aside aria-label="Filters">
          <fieldset>
            <legend>Provider</legend>
            {provider ? (
              <button type="button" class="chip on" aria-pressed="true" onClick={() => go({ provider: '' })}>
                {provider} ✕
              </button>
            ) : (
              providerFacet.map(([name, n]) => (
                <button
                  type="button"
                  class="chip"
                  aria-pressed="false"
                  key={name}
                  onClick={() => go({ provider: name })}
                >
                  {name} ({n})
                </button>
              ))
            )}
          </fieldset>
          <fieldset>
            <legend>Tags</legend>
            {[...new Set([...tags, ...tagFacet.map(([t]) => t)])].map((tag) => (
              <button
                type="button"
                class={`chip${tags.includes(tag) ? ' on' : ''}`}
                aria-pressed={tags.includes(tag)}
                key={tag}
                onClick={() => toggleTag(tag)}
              >
                {tag}
              </button>
            ))}
          </fieldset>
        </aside>
        <div class="grow">
          <Status loaded={results} />
          <p class="muted" aria-live="polite">
            {results.data ? `${items.length} dataset${items.length === 1 ? '' : 's'}` : ''}
          </p>
          <ul class="cards">
            {items.map((d) => (
              <li key={d.id} class="card">
                <h2>
                  <Link href={`/datasets/${d.id}`}>
                    {d.providerName}/{d.name}
                  </Link>
                </h2>
                <p>{d.description || <span class="muted">No description</span>}</p>
                <p class="muted">
                  {d.columns.length} columns · {d.rowCount ?? '?'} rows · {d.sourceKind}
                  {d.tags.length ? ' · ' : ''}
                  {d.tags.map((t) => (
                    <span class="tag" key={t}>
                      {t}
                    </span>
                  ))}
                </p>
              </li>
            ))}
          </ul>
        </div>
      </div>
    </Page>
  );
}

/** One dataset: schema, tags, description and the services that read it; never rows. */
/** What the agent lets out of this dataset, in words (see the agent's README). */
function policyText(policy: Dataset['policy']): string {
  if (!policy) return 'unknown';
  const clauses: string[] = [];
  if (policy.aggregatesOnly) clauses.push('aggregates only');
  if (policy.minGroupSize !== undefined) clauses.push(`groups of at least ${policy.minGroupSize} rows`);
  if (policy.neverLeave?.length) clauses.push(`never leave: ${policy.neverLeave.join(', ')}`);
  if (policy.maxRowsPerAnswer !== undefined) clauses.push(`at most ${policy.maxRowsPerAnswer} rows per answer`);
  if (policy.noise)
    clauses.push(`Laplace noise, ε ${policy.noise.epsilonPerQuery} per query, budget ${policy.noise.budget}`);
  return clauses.length ? clauses.join('; ') : 'none';
}

export function DatasetPage(props: { id: string }) {
  const dataset = useLoad(() => api.get<Dataset>(`/api/v1/datasets/${encodeURIComponent(props.id)}`), [props.id]);
  const services = useLoad(() => listAll<Service>('/api/v1/services'), []);
  const d = dataset.data;
  const readers = (services.data?.items ?? []).filter((s) =>
    s.datasets.some((x) => x.datasetId === props.id || (d && x.providerId === d.providerId && x.dataset === d.name)),
  );
  return (
    <Page title={d ? `${d.providerName}/${d.name}` : 'Dataset'}>
      <Status loaded={dataset} />
      {d ? (
        <>
          <p>{d.description || <span class="muted">No description</span>}</p>
          <dl class="facts">
            <dt>Provider</dt>
            <dd>{d.providerName}</dd>
            <dt>Source</dt>
            <dd>{d.sourceKind}</dd>
            <dt>Visibility</dt>
            <dd>{d.visibility}</dd>
            <dt>Rows</dt>
            <dd>{d.rowCount ?? 'unknown'}</dd>
            <dt>Synced</dt>
            <dd>{when(d.syncedAt)}</dd>
            <dt>Output policy</dt>
            <dd>{policyText(d.policy)}</dd>
            <dt>Tags</dt>
            <dd>
              {d.tags.length
                ? d.tags.map((t) => (
                    <Link key={t} class="tag" href={`/catalog?tag=${encodeURIComponent(t)}`}>
                      {t}
                    </Link>
                  ))
                : '—'}
            </dd>
          </dl>
          <Table caption="Schema" head={['Column', 'Type', 'Source type', 'Nullable', 'Description']}>
            {d.columns.map((c) => (
              <tr key={c.name}>
                <td>
                  <code>{c.name}</code>
                </td>
                <td>{c.type}</td>
                <td>{c.sourceType ?? ''}</td>
                <td>{c.nullable ? 'yes' : 'no'}</td>
                <td>{c.description ?? ''}</td>
              </tr>
            ))}
          </Table>
          <h2>Services reading it</h2>
          <Status loaded={services} />
          {readers.length === 0 ? (
            <p class="muted">No published service reads this dataset yet.</p>
          ) : (
            <ul>
              {readers.map((s) => (
                <li key={s.id}>
                  <Link href={`/services/${s.id}`}>{s.name}</Link> — {s.description}
                </li>
              ))}
            </ul>
          )}
        </>
      ) : null}
    </Page>
  );
}
