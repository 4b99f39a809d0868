import { useEffect, useState } from 'preact/hooks';
import type { BundleFile } from '../types.js';
import { messageOf, short } from '../ui.js';

/** A bundle's file list; choosing one shows its text (from `text` or loaded on demand). */
export function FileViewer(props: { files: BundleFile[]; load?: (path: string) => Promise<string> }) {
  const [chosen, setChosen] = useState<string | undefined>(
    props.files.find((f) => f.path === 'insitu.json')?.path ?? props.files[0]?.path,
  );
  const [text, setText] = useState<string>();
  const [error, setError] = useState<string>();
  useEffect(() => {
    setText(undefined);
    setError(undefined);
    const file = props.files.find((f) => f.path === chosen);
    if (!file) return;
    if (file.text !== undefined) setText(file.text);
    else if (props.load)
      props.load(file.path).then(
        (t) => setText(typeof t === 'string' ? t : JSON.stringify(t, null, 2)),
        (e: unknown) => setError(messageOf(e)),
      );
  }, [chosen, props.files]);
  return (
    <div class="viewer">
      <ul class="filelist" aria-label="Files">
        {props.files.map((f) => (
          <li key={f.path}>
            <button type="button" aria-pressed={f.path === chosen} onClick={() => setChosen(f.path)}>
              {f.path}{' '}
              <span class="muted">
                {f.size} B · {short(f.sha256)}
              </span>
            </button>
          </li>
        ))}
      </ul>
      <div class="filetext">
        {error ? (
          <p class="error" role="alert">
            {error}
          </p>
        ) : null}
        {chosen ? (
          <pre class="code" aria-label={`Contents of ${chosen}`} tabIndex={0}>
            {text ?? (error ? '' : 'Binary or large file: its digest is above.')}
          </pre>
        ) : null}
      </div>
    </div>
  );
}

type Line = { op: ' ' | '+' | '-'; text: string };

/** Line diff by longest common subsequence (bounded; bundles are small text). */
export function diffLines(before: string, after: string): Line[] | undefined {
  const a = before.split('\n');
  const b = after.split('\n');
  if (a.length * b.length > 4_000_000) return undefined;
  const lcs: Uint32Array[] = Array.from({ length: a.length + 1 }, () => new Uint32Array(b.length + 1));
  for (let i = a.length - 1; i >= 0; i--) {
    const row = lcs[i] as Uint32Array;
    const next = lcs[i + 1] as Uint32Array;
    for (let j = b.length - 1; j >= 0; j--)
      row[j] = a[i] === b[j] ? (next[j + 1] ?? 0) + 1 : Math.max(next[j] ?? 0, row[j + 1] ?? 0);
  }
  const out: Line[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) {
      out.push({ op: ' ', text: a[i] ?? '' });
      i++;
      j++;
    } else if (i < a.length && (j >= b.length || (lcs[i + 1]?.[j] ?? 0) >= (lcs[i]?.[j + 1] ?? 0))) {
      out.push({ op: '-', text: a[i] ?? '' });
      i++;
    } else {
      out.push({ op: '+', text: b[j] ?? '' });
      j++;
    }
  }
  return out;
}

/** What changed between two versions' files: added, removed, changed, each changed text diffed. */
export function BundleDiff(props: { before: BundleFile[]; after: BundleFile[]; beforeLabel: string }) {
  const old = new Map(props.before.map((f) => [f.path, f]));
  const now = new Map(props.after.map((f) => [f.path, f]));
  const added = props.after.filter((f) => !old.has(f.path));
  const removed = props.before.filter((f) => !now.has(f.path));
  const changed = props.after.filter((f) => old.has(f.path) && old.get(f.path)?.sha256 !== f.sha256);
  if (!added.length && !removed.length && !changed.length) return <p>Same files as {props.beforeLabel}.</p>;
  return (
    <div class="diff">
      <p>
        Compared with {props.beforeLabel}: {added.length} added, {removed.length} removed, {changed.length} changed.
      </p>
      <ul>
        {added.map((f) => (
          <li key={f.path}>
            <ins>+ {f.path}</ins>
          </li>
        ))}
        {removed.map((f) => (
          <li key={f.path}>
            <del>− {f.path}</del>
          </li>
        ))}
      </ul>
      {changed.map((f) => {
        const lines =
          f.text !== undefined && old.get(f.path)?.text !== undefined
            ? diffLines(old.get(f.path)?.text ?? '', f.text)
            : undefined;
        return (
          <details key={f.path} open>
            <summary>{f.path} changed</summary>
            {lines ? (
              <pre class="code" tabIndex={0}>
                {lines
                  .filter((l, n) => l.op !== ' ' || lines.slice(Math.max(0, n - 2), n + 3).some((x) => x.op !== ' '))
                  .map((l, n) => (
                    <span
                      key={n}
                      class={l.op === '+' ? 'add' : l.op === '-' ? 'del' : ''}
                    >{`${l.op} ${l.text}\n`}</span>
                  ))}
              </pre>
            ) : (
              <p class="muted">Binary or too large to compare.</p>
            )}
          </details>
        );
      })}
    </div>
  );
}
