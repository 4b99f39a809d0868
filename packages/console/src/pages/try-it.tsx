// "Try it" for one operation of a service's OpenAPI document: path, query and header
// parameters as fields, a request body editor where the operation takes one, the call sent
// to the gateway with the user's API key (never with cookies), and the answer's status,
// headers and body.
import { Fragment } from 'preact';
import { useState } from 'preact/hooks';
import { Field, messageOf } from '../ui.js';

export interface OpenApiParameter {
  name: string;
  in: 'path' | 'query' | 'header' | 'cookie';
  required?: boolean;
  description?: string;
  schema?: { type?: string; default?: unknown; example?: unknown; enum?: unknown[] };
  example?: unknown;
}
export interface OpenApiOperation {
  summary?: string;
  description?: string;
  parameters?: (OpenApiParameter | { $ref: string })[];
  requestBody?: {
    required?: boolean;
    description?: string;
    content?: Record<string, { schema?: unknown; example?: unknown }>;
  };
}
export interface OpenApiDoc {
  info?: { title?: string; version?: string; description?: string };
  servers?: { url: string }[];
  components?: { parameters?: Record<string, OpenApiParameter> };
  paths?: Record<string, Record<string, OpenApiOperation> & { parameters?: OpenApiParameter[] }>;
}

export const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

/** The operation's parameters with the path item's, `$ref`s to components resolved; the operation's win by name and place. */
export function parametersOf(doc: OpenApiDoc, path: string, method: string): OpenApiParameter[] {
  const item = doc.paths?.[path];
  const resolve = (p: OpenApiParameter | { $ref: string }): OpenApiParameter | undefined => {
    if ('$ref' in p) {
      const name = p.$ref.startsWith('#/components/parameters/') ? p.$ref.slice(24) : '';
      return doc.components?.parameters?.[name];
    }
    return p;
  };
  const out = new Map<string, OpenApiParameter>();
  for (const p of [...(item?.parameters ?? []), ...(item?.[method]?.parameters ?? [])]) {
    const r = resolve(p);
    if (r && r.in !== 'cookie') out.set(`${r.in}:${r.name}`, r);
  }
  // A `{name}` in the path that the document forgot is still a path parameter.
  for (const m of path.matchAll(/\{([^{}/]+)\}/g)) {
    const name = m[1] ?? '';
    if (!out.has(`path:${name}`)) out.set(`path:${name}`, { name, in: 'path', required: true });
  }
  return [...out.values()];
}

/** A starting body: the document's example, else a skeleton from the JSON schema's properties. */
function sampleOf(schema: unknown, depth = 0): unknown {
  if (!schema || typeof schema !== 'object' || depth > 4) return undefined;
  const s = schema as {
    example?: unknown;
    default?: unknown;
    type?: string;
    properties?: Record<string, unknown>;
    items?: unknown;
    enum?: unknown[];
  };
  if (s.example !== undefined) return s.example;
  if (s.default !== undefined) return s.default;
  if (s.enum?.length) return s.enum[0];
  if (s.type === 'object' || s.properties)
    return Object.fromEntries(Object.entries(s.properties ?? {}).map(([k, v]) => [k, sampleOf(v, depth + 1) ?? null]));
  if (s.type === 'array') return [sampleOf(s.items, depth + 1)].filter((x) => x !== undefined);
  if (s.type === 'string') return '';
  if (s.type === 'integer' || s.type === 'number') return 0;
  if (s.type === 'boolean') return false;
  return undefined;
}

function initialBody(op: OpenApiOperation): { text: string; type: string } {
  const content = op.requestBody?.content ?? {};
  const json = content['application/json'];
  if (json) {
    const sample = json.example ?? sampleOf(json.schema);
    return { text: sample === undefined ? '' : JSON.stringify(sample, null, 2), type: 'application/json' };
  }
  const first = Object.keys(content)[0];
  return { text: '', type: first && first !== '*/*' ? first : 'application/json' };
}

export interface Answer {
  status: number;
  statusText: string;
  headers: [string, string][];
  body: string;
  url: string;
}

const slug = (text: string) => text.replace(/[^A-Za-z0-9]+/g, '-').replace(/^-|-$/g, '');

/** Send one call to the gateway as the form describes it. */
async function send(
  service: string,
  path: string,
  method: string,
  key: string,
  values: Record<string, string>,
  params: OpenApiParameter[],
  query: string,
  body: { text: string; type: string } | undefined,
): Promise<Answer> {
  let concrete = path;
  const search = new URLSearchParams(query.replace(/^\?/, ''));
  const headers: Record<string, string> = { authorization: `Bearer ${key}` };
  for (const p of params) {
    const value = values[`${p.in}:${p.name}`] ?? '';
    if (p.in === 'path') {
      if (!value) throw new Error(`the path parameter "${p.name}" is required`);
      concrete = concrete.split(`{${p.name}}`).join(encodeURIComponent(value));
    } else if (value === '' && !p.required) continue;
    else if (p.in === 'query') search.append(p.name, value);
    else if (p.in === 'header') headers[p.name.toLowerCase()] = value;
  }
  let payload: string | undefined;
  if (body && body.text.trim() !== '') {
    if (body.type === 'application/json') {
      try {
        JSON.parse(body.text);
      } catch (e) {
        throw new Error(`the body is not valid JSON: ${(e as Error).message}`);
      }
    }
    headers['content-type'] = body.type;
    payload = body.text;
  }
  const qs = search.toString();
  const url = `/s/${service}${concrete}${qs ? `?${qs}` : ''}`;
  const response = await fetch(url, { method, headers, body: payload, credentials: 'omit' });
  const text = await response.text();
  let shown = text;
  if ((response.headers.get('content-type') ?? '').includes('json')) {
    try {
      shown = JSON.stringify(JSON.parse(text), null, 2);
    } catch {
      // not JSON after all: show it as it came
    }
  }
  return {
    status: response.status,
    statusText: response.statusText,
    headers: [...response.headers.entries()],
    body: shown,
    url,
  };
}

export function Endpoint(props: { service: string; doc: OpenApiDoc; path: string; method: string; apiKey: string }) {
  const { doc, path, method } = props;
  const op = doc.paths?.[path]?.[method] as OpenApiOperation;
  const upper = method.toUpperCase();
  const id = `${upper} ${path}`;
  const base = `op-${slug(`${method}-${path}`)}`;
  const params = parametersOf(doc, path, method);
  const [values, setValues] = useState<Record<string, string>>(() =>
    Object.fromEntries(
      params.map((p) => {
        const v = p.example ?? p.schema?.example ?? p.schema?.default;
        return [`${p.in}:${p.name}`, v === undefined ? '' : String(v)];
      }),
    ),
  );
  const [query, setQuery] = useState('');
  const hasBody = op.requestBody !== undefined;
  const [body, setBody] = useState(() => initialBody(op));
  const [answer, setAnswer] = useState<Answer>();
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      setAnswer(
        await send(props.service, path, upper, props.apiKey, values, params, query, hasBody ? body : undefined),
      );
    } catch (e) {
      setAnswer(undefined);
      setError(messageOf(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <article class="endpoint" aria-label={id}>
      <h3>
        <span class="method">{upper}</span> <code>{path}</code>
      </h3>
      {op.summary ? <p>{op.summary}</p> : null}
      {op.description ? <p class="muted">{op.description}</p> : null}
      <form onSubmit={(e) => void submit(e)}>
        <div class="row">
          {params.map((p) => {
            const key = `${p.in}:${p.name}`;
            const fieldId = `${base}-${p.in}-${slug(p.name)}`;
            return (
              <Field
                key={key}
                label={`${p.name} (${p.in}${p.required ? ', required' : ''})`}
                id={fieldId}
                hint={p.description}
              >
                <input
                  id={fieldId}
                  required={p.required === true}
                  value={values[key] ?? ''}
                  aria-describedby={p.description ? `${fieldId}-hint` : undefined}
                  onInput={(e) => {
                    const v = e.currentTarget.value;
                    setValues((old) => ({ ...old, [key]: v }));
                  }}
                />
              </Field>
            );
          })}
          <Field label="More query parameters" id={`${base}-query`} hint="name=value&name2=value2">
            <input
              id={`${base}-query`}
              value={query}
              aria-describedby={`${base}-query-hint`}
              onInput={(e) => setQuery(e.currentTarget.value)}
            />
          </Field>
        </div>
        {hasBody ? (
          <>
            <Field label="Content type" id={`${base}-type`}>
              <input
                id={`${base}-type`}
                value={body.type}
                onInput={(e) => setBody({ ...body, type: e.currentTarget.value })}
              />
            </Field>
            <Field
              label={`Request body${op.requestBody?.required ? ' (required)' : ''}`}
              id={`${base}-body`}
              hint={op.requestBody?.description}
            >
              <textarea
                id={`${base}-body`}
                rows={5}
                class="code"
                spellcheck={false}
                value={body.text}
                aria-describedby={op.requestBody?.description ? `${base}-body-hint` : undefined}
                onInput={(e) => setBody({ ...body, text: e.currentTarget.value })}
              />
            </Field>
          </>
        ) : null}
        <button type="submit" disabled={!props.apiKey || busy}>
          Try {id}
        </button>
      </form>
      {error ? (
        <p class="error" role="alert">
          {error}
        </p>
      ) : null}
      {answer ? (
        <div aria-live="polite" class="answer">
          <p>
            <code>
              {upper} {answer.url}
            </code>{' '}
            → status <strong>{answer.status}</strong> {answer.statusText}
          </p>
          <details>
            <summary>Response headers ({answer.headers.length})</summary>
            <dl class="facts">
              {answer.headers.map(([name, value]) => (
                <Fragment key={name}>
                  <dt>{name}</dt>
                  <dd>
                    <code class="wrap">{value}</code>
                  </dd>
                </Fragment>
              ))}
            </dl>
          </details>
          <pre class="code" tabIndex={0} aria-label={`Response body of ${id}`}>
            {answer.body}
          </pre>
        </div>
      ) : null}
    </article>
  );
}
