// A small history router for pages under /console/.
import { useEffect, useState } from 'preact/hooks';

export const BASE = '/console';

function current(): string {
  const path = location.pathname.startsWith(BASE) ? location.pathname.slice(BASE.length) : '/';
  return path === '' ? '/' : path;
}

const listeners = new Set<() => void>();

export function navigate(path: string): void {
  history.pushState(null, '', BASE + path);
  for (const listener of listeners) listener();
  window.scrollTo(0, 0);
}

/** The current path and query; `seq` changes on every navigation, even to the same address (a page reloads its data then). */
export function usePath(): { path: string; search: URLSearchParams; seq: number } {
  const [state, setState] = useState(() => ({ path: current(), search: new URLSearchParams(location.search), seq: 0 }));
  useEffect(() => {
    const update = () =>
      setState((s) => ({ path: current(), search: new URLSearchParams(location.search), seq: s.seq + 1 }));
    listeners.add(update);
    window.addEventListener('popstate', update);
    return () => {
      listeners.delete(update);
      window.removeEventListener('popstate', update);
    };
  }, []);
  return state;
}

/** Match `/datasets/:id` against a path; the named parts, or undefined. */
export function match(pattern: string, path: string): Record<string, string> | undefined {
  const want = pattern.split('/');
  const got = path.split('/');
  if (want.length !== got.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < want.length; i++) {
    const w = want[i] ?? '';
    const g = got[i] ?? '';
    if (w.startsWith(':')) params[w.slice(1)] = decodeURIComponent(g);
    else if (w !== g) return undefined;
  }
  return params;
}
