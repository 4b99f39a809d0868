import { InsituError, type DatasetInput } from '@insitu/core';

/** The agent as the platform describes it. */
export interface AgentIdentity {
  id: string;
  providerId: string;
  name: string;
  hostname: string;
  version: string;
  state: string;
}

/** A dataset as the catalog lists it (the fields the agent uses). */
export interface CatalogDataset {
  name: string;
  providerId: string;
  syncedAt: string;
}

/**
 * The few platform endpoints an agent calls over plain HTTPS with its credential:
 * enrolment, its own identity, and writing its provider's catalog (metadata only).
 */
export class PlatformClient {
  constructor(
    readonly url: string,
    private credential?: string,
  ) {
    this.url = url.replace(/\/+$/, '');
  }

  setCredential(credential: string): void {
    this.credential = credential;
  }

  private async call<T>(method: string, path: string, body?: unknown, auth = true): Promise<{ status: number; body: T }> {
    let response: Response;
    try {
      response = await fetch(`${this.url}${path}`, {
        method,
        headers: {
          ...(auth && this.credential ? { authorization: `Bearer ${this.credential}` } : {}),
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(30_000),
      });
    } catch (error) {
      throw new InsituError('INSITU_REMOTE', `cannot reach the platform at ${this.url}: ${(error as Error).message}`, { cause: error });
    }
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = text;
    }
    return { status: response.status, body: parsed as T };
  }

  private static failure(what: string, status: number, body: unknown): InsituError {
    const error = (body as { error?: { code?: string; message?: string } } | undefined)?.error;
    if (status === 401 && error?.code === 'INSITU_TOKEN_INVALID') return new InsituError('INSITU_TOKEN_INVALID', `${what}: ${error.message ?? 'the enrolment token was refused'}`);
    if (status === 401) return new InsituError('INSITU_UNAUTHENTICATED', `${what}: the platform refused the agent credential (revoked?); enrol again with a new token`);
    return new InsituError('INSITU_REMOTE', `${what} failed: ${status} ${error?.code ?? ''} ${error?.message ?? ''}`.trim(), { details: { status, code: error?.code } });
  }

  /** Exchange a single-use enrolment token for the agent credential. */
  async enrol(token: string, info: { name: string; hostname?: string; version?: string }): Promise<{ agent: AgentIdentity; credential: string }> {
    const { status, body } = await this.call<{ agent: AgentIdentity; credential: string }>('POST', '/api/v1/agents/enrol', { token, ...info }, false);
    if (status !== 201) throw PlatformClient.failure('enrolment', status, body);
    return body;
  }

  /** Who this credential belongs to; `undefined` when the platform refuses it. */
  async self(): Promise<AgentIdentity | undefined> {
    const { status, body } = await this.call<AgentIdentity>('GET', '/api/v1/agents/self');
    if (status === 401) return undefined;
    if (status !== 200) throw PlatformClient.failure('reading the agent identity', status, body);
    return body;
  }

  /** A provider's public metadata (its name). */
  async provider(id: string): Promise<{ id: string; name: string }> {
    const { status, body } = await this.call<{ id: string; name: string }>('GET', `/api/v1/providers/${encodeURIComponent(id)}`);
    if (status !== 200) throw PlatformClient.failure(`reading provider ${id}`, status, body);
    return body;
  }

  async putDataset(providerId: string, name: string, input: DatasetInput): Promise<void> {
    const { status, body } = await this.call('PUT', `/api/v1/providers/${encodeURIComponent(providerId)}/datasets/${encodeURIComponent(name)}`, input);
    if (status !== 200 && status !== 201) throw PlatformClient.failure(`publishing dataset ${name}`, status, body);
  }

  /** Remove a dataset; false when it was not there. */
  async deleteDataset(providerId: string, name: string): Promise<boolean> {
    const { status, body } = await this.call('DELETE', `/api/v1/providers/${encodeURIComponent(providerId)}/datasets/${encodeURIComponent(name)}`);
    if (status === 404) return false;
    if (status !== 204) throw PlatformClient.failure(`removing dataset ${name}`, status, body);
    return true;
  }

  /** Every dataset of a provider in the catalog. */
  async listDatasets(providerId: string): Promise<CatalogDataset[]> {
    const out: CatalogDataset[] = [];
    let cursor: string | undefined;
    do {
      const query = new URLSearchParams({ provider: providerId, limit: '100', ...(cursor ? { cursor } : {}) });
      const { status, body } = await this.call<{ items: CatalogDataset[]; nextCursor?: string }>('GET', `/api/v1/datasets?${query.toString()}`);
      if (status !== 200) throw PlatformClient.failure('listing the catalog', status, body);
      out.push(...body.items);
      cursor = body.nextCursor;
    } while (cursor);
    return out;
  }
}
