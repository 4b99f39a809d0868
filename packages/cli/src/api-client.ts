import { InsituError, isErrorCode } from '@insitu/core';
import type { CliIo } from './io.js';
import { platformUrl } from './commands/status.js';

/** Where a command talks to and as whom. */
export interface RemoteOptions {
  url?: string;
  token?: string;
  dataDir?: string;
  config?: string;
}

/**
 * A small client of the platform API for CLI commands. A failed call becomes an
 * `InsituError` with the platform's own code and message, so the CLI prints
 * `insitu: <message> [INSITU_…]` just as the API said it.
 */
export class ApiClient {
  constructor(readonly url: string, private readonly token: string | undefined) {}

  /** From `--url`/`INSITU_URL` (else the data dir's config) and `--token`/`INSITU_TOKEN`. */
  static from(options: RemoteOptions, io: CliIo, requireToken = true): ApiClient {
    const token = options.token ?? io.env.INSITU_TOKEN;
    if (requireToken && !token) throw new InsituError('INSITU_USAGE', 'this command needs a token: --token or INSITU_TOKEN (insitu up prints one)');
    return new ApiClient(platformUrl(options, io), token);
  }

  async request<T>(method: string, path: string, body?: unknown, options: { contentType?: string; headers?: Record<string, string> } = {}): Promise<T> {
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
      response = await fetch(`${this.url}${path}`, { method, headers, ...(payload !== undefined ? { body: payload } : {}), signal: AbortSignal.timeout(120_000) });
    } catch (error) {
      throw new InsituError('INSITU_REMOTE', `cannot reach ${this.url}: ${(error as Error).message}`, { cause: error });
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
      throw new InsituError(code, `${error?.message ?? `${method} ${path} answered ${response.status}`}${error?.requestId ? ` (request ${error.requestId})` : ''}`, {
        details: { status: response.status },
      });
    }
    return parsed as T;
  }
}
