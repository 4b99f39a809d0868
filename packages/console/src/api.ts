// The console's only way to the platform: the public REST API, with the browser's session
// cookie and the CSRF header the server demands beside it (see the server's console.ts).

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

function csrfToken(): string {
  const match = /(?:^|;\s*)insitu_csrf=([^;]+)/.exec(document.cookie);
  return match?.[1] ?? '';
}

/** Listeners told when the API says the session is gone (expired or revoked). */
const signedOutListeners = new Set<() => void>();
export function onSignedOut(listener: () => void): () => void {
  signedOutListeners.add(listener);
  return () => signedOutListeners.delete(listener);
}

export interface RequestOptions {
  body?: unknown;
  /** Raw bytes (a bundle) instead of JSON. */
  raw?: { data: Blob; type: string };
  headers?: Record<string, string>;
}

export async function request<T = unknown>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { 'x-insitu-csrf': csrfToken(), ...options.headers };
  let body: BodyInit | undefined;
  if (options.raw) {
    headers['content-type'] = options.raw.type;
    body = options.raw.data;
  } else if (options.body !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(options.body);
  }
  const response = await fetch(path, { method, headers, body, credentials: 'same-origin' });
  const text = await response.text();
  const parsed: unknown = text ? safeJson(text) : undefined;
  if (!response.ok) {
    const error = (parsed as { error?: { code?: string; message?: string } } | undefined)?.error;
    if (response.status === 401 && !path.startsWith('/console/session'))
      for (const listener of signedOutListeners) listener();
    throw new ApiError(
      response.status,
      error?.code ?? `HTTP_${response.status}`,
      error?.message ?? response.statusText,
    );
  }
  return parsed as T;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export const api = {
  get: <T>(path: string) => request<T>('GET', path),
  post: <T>(path: string, body?: unknown) => request<T>('POST', path, { body: body ?? {} }),
  patch: <T>(path: string, body: unknown) => request<T>('PATCH', path, { body }),
  del: <T>(path: string) => request<T>('DELETE', path),
};

/** A query string from the defined values of `params`. */
export function qs(params: Record<string, string | number | undefined | readonly string[]>): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value === undefined || value === '') continue;
    if (Array.isArray(value)) for (const item of value as readonly string[]) search.append(name, item);
    else search.set(name, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

export interface Page<T> {
  items: T[];
  nextCursor?: string;
}

/** Every page of a list (up to `maxPages` of 100), following the API's cursors. */
export async function listAll<T>(path: string, maxPages = 10): Promise<Page<T>> {
  const items: T[] = [];
  let cursor: string | undefined;
  for (let i = 0; i < maxPages; i++) {
    const glue = path.includes('?') ? '&' : '?';
    const page = await request<Page<T>>(
      'GET',
      `${path}${glue}limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
    );
    items.push(...page.items);
    cursor = page.nextCursor;
    if (!cursor) break;
  }
  return cursor ? { items, nextCursor: cursor } : { items };
}
