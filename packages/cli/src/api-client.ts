import { InsituError, isErrorCode } from '@insitu/core';
import type { CliIo } from './io.js';
import { platformUrl } from './commands/status.js';
import { readProfile, sessionFor } from './profile.js';
import { dataDirOf, isInitialised } from './data-dir.js';

/** Where a command talks to and as whom. */
export interface RemoteOptions {
  url?: string;
  token?: string;
  dataDir?: string;
  config?: string;
  /** The saved sign-in to use (`insitu login --profile`); `default` otherwise. */
  profile?: string;
}

/**
 * A small client of the platform API for CLI commands. A failed call becomes an
 * `InsituError` with the platform's own code and message, so the CLI prints
 * `insitu: <message> [INSITU_…]` just as the API said it.
 */
export class ApiClient {
  constructor(
    readonly url: string,
    readonly token: string | undefined,
  ) {}

  /**
   * The URL from `--url`/`INSITU_URL`, else the data dir's platform, else the profile's last
   * sign-in; the token from `--token`/`INSITU_TOKEN`, else the profile's session for that URL.
   */
  static from(options: RemoteOptions, io: CliIo, requireToken = true): ApiClient {
    const profile = readProfile(io, options.profile);
    const url = remoteUrl(options, io, profile.url);
    const token = options.token ?? io.env.INSITU_TOKEN ?? sessionFor(profile, url)?.token;
    if (requireToken && !token)
      throw new InsituError(
        'INSITU_USAGE',
        `this command needs you signed in to ${url}: insitu login, or --token / INSITU_TOKEN (insitu up prints one)`,
      );
    return new ApiClient(url, token);
  }

  async request<T>(
    method: string,
    path: string,
    body?: unknown,
    options: { contentType?: string; headers?: Record<string, string> } = {},
  ): Promise<T> {
    const headers: Record<string, string> = { ...(options.headers ?? {}) };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    let payload: string | Buffer | undefined;
    if (Buffer.isBuffer(body)) {
      payload = body;
      headers['content-type'] = options.contentType ?? 'application/octet-stream';
    } else if (body !== undefined) {
      payload = JSON.stringify(body);
      headers['content-type'] = 'application/json';
    }
    let response: Response;
    try {
      response = await fetch(`${this.url}${path}`, {
        method,
        headers,
        ...(payload !== undefined ? { body: payload } : {}),
        signal: AbortSignal.timeout(120_000),
      });
    } catch (error) {
      throw new InsituError('INSITU_REMOTE', `cannot reach ${this.url}: ${describeFetchError(error)}`, {
        cause: error,
      });
    }
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = text;
    }
    if (!response.ok) {
      const error = (parsed as { error?: { code?: string; message?: string; requestId?: string } } | undefined)?.error;
      const code = isErrorCode(error?.code) ? error.code : 'INSITU_REMOTE';
      throw new InsituError(
        code,
        `${error?.message ?? `${method} ${path} answered ${response.status}`}${error?.requestId ? ` (request ${error.requestId})` : ''}`,
        {
          details: { status: response.status },
        },
      );
    }
    return parsed as T;
  }
}

/**
 * A streamed answer (JSON lines) of `GET path`: the body is read as it arrives, until the
 * platform ends it or `signal` aborts; a refusal becomes the platform's coded error.
 */
export async function streamLines(
  api: ApiClient,
  token: string | undefined,
  path: string,
  signal: AbortSignal | undefined,
  onLine: (line: string) => void,
): Promise<void> {
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  let response: Response;
  try {
    response = await fetch(`${api.url}${path}`, { headers, ...(signal ? { signal } : {}) });
  } catch (error) {
    if (signal?.aborted) return;
    throw new InsituError('INSITU_REMOTE', `cannot reach ${api.url}: ${describeFetchError(error)}`, { cause: error });
  }
  if (!response.ok || !response.body) {
    const text = await response.text();
    let error: { code?: string; message?: string; requestId?: string } | undefined;
    try {
      error = (JSON.parse(text) as { error?: typeof error }).error;
    } catch {
      error = undefined;
    }
    throw new InsituError(
      isErrorCode(error?.code) ? error.code : 'INSITU_REMOTE',
      `${error?.message ?? `GET ${path} answered ${response.status}`}${error?.requestId ? ` (request ${error.requestId})` : ''}`,
      {
        details: { status: response.status },
      },
    );
  }
  const decoder = new TextDecoder();
  let pending = '';
  try {
    for await (const chunk of response.body) {
      pending += decoder.decode(chunk as Uint8Array, { stream: true });
      let at = pending.indexOf('\n');
      while (at >= 0) {
        const line = pending.slice(0, at);
        pending = pending.slice(at + 1);
        if (line) onLine(line);
        at = pending.indexOf('\n');
      }
    }
  } catch (error) {
    if (signal?.aborted) return;
    throw new InsituError('INSITU_REMOTE', `the stream from ${api.url} broke off: ${describeFetchError(error)}`, {
      cause: error,
    });
  }
  if (pending) onLine(pending);
}

/** fetch says only "fetch failed"; the reason (ECONNREFUSED, a reset, a timeout) is in its cause. */
export function describeFetchError(error: unknown): string {
  const message = (error as Error)?.message ?? String(error);
  const cause = (error as { cause?: { code?: string; message?: string } })?.cause;
  if ((error as Error)?.name === 'TimeoutError') return 'no answer in time';
  // Node's fetch refuses the Fetch standard's blocked ports (6000, 6665-6669, 10080, …) although curl reaches them.
  if (cause?.message === 'bad port')
    return `${message} (Node's fetch refuses this port, a blocked port of the Fetch standard; serve the platform on another port)`;
  return cause ? `${message} (${cause.code ?? cause.message ?? 'unknown cause'})` : message;
}

/** `--url`/`INSITU_URL`; else the platform of an initialised data dir; else the profile's last sign-in. */
export function remoteUrl(options: RemoteOptions, io: CliIo, profileUrl: string | undefined): string {
  if (options.url ?? io.env.INSITU_URL) return platformUrl(options, io);
  if (profileUrl && !options.dataDir && !io.env.INSITU_DATA_DIR && !isInitialised(dataDirOf(options, io)))
    return profileUrl;
  return platformUrl(options, io);
}
