import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import {
  AgentDesiredSchema,
  AgentJobsSchema,
  InsituError,
  assertValid,
  type AgentDeployment,
  type AgentDesired,
  type AgentJob,
  type AgentJobReport,
  type DatasetInput,
  type ReportedDeploymentState,
} from '@insitu/core';
import { bundleInvalid } from '../errors.js';

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

/** A deployment the platform wants this agent's provider to run (`GET /api/v1/agents/self/desired`). */
export type PlatformDeployment = AgentDeployment;

/** One deployment as the agent reports it (`PUT /api/v1/agents/self/status`). */
export interface DeploymentReport {
  id: string;
  state: ReportedDeploymentState;
  ready: number;
  desired: number;
  reason?: string;
}

/** How to reach the platform over HTTPS: trust only its own CA when given (pinned). */
export interface PlatformTls {
  ca?: string | Buffer;
}

/**
 * The platform endpoints an agent calls with its credential: enrolment, its own
 * identity, writing its provider's catalog (metadata only), its desired deployments,
 * their bundles and its status reports. Over HTTPS it trusts only the platform's CA when
 * one is given (the same CA the tunnel pins).
 */
export class PlatformClient {
  constructor(
    readonly url: string,
    private credential?: string,
    private readonly tls: PlatformTls = {},
  ) {
    this.url = url.replace(/\/+$/, '');
  }

  setCredential(credential: string): void {
    this.credential = credential;
  }

  /** One HTTP exchange with node's own http/https (so the platform CA can be pinned), bounded in time. */
  private exchange(
    method: string,
    path: string,
    body: Buffer | undefined,
    headers: Record<string, string>,
    timeoutMs: number,
  ): Promise<{ status: number; data: Buffer }> {
    const target = new URL(`${this.url}${path}`);
    const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = send(
        target,
        {
          method,
          headers: { ...headers, ...(body ? { 'content-length': String(body.length) } : {}) },
          timeout: timeoutMs,
          ...(target.protocol === 'https:' && this.tls.ca ? { ca: this.tls.ca } : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, data: Buffer.concat(chunks) }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      req.on('error', (error) =>
        reject(
          new InsituError('INSITU_REMOTE', `cannot reach the platform at ${this.url}: ${error.message}`, {
            cause: error,
          }),
        ),
      );
      req.end(body);
    });
  }

  private async call<T>(
    method: string,
    path: string,
    body?: unknown,
    auth = true,
  ): Promise<{ status: number; body: T }> {
    const headers: Record<string, string> = {
      ...(auth && this.credential ? { authorization: `Bearer ${this.credential}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    };
    const { status, data } = await this.exchange(
      method,
      path,
      body !== undefined ? Buffer.from(JSON.stringify(body)) : undefined,
      headers,
      30_000,
    );
    const text = data.toString('utf8');
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = text;
    }
    return { status, body: parsed as T };
  }

  private static failure(what: string, status: number, body: unknown): InsituError {
    const error = (body as { error?: { code?: string; message?: string } } | undefined)?.error;
    if (status === 401 && error?.code === 'INSITU_TOKEN_INVALID')
      return new InsituError('INSITU_TOKEN_INVALID', `${what}: ${error.message ?? 'the enrolment token was refused'}`);
    if (status === 401)
      return new InsituError(
        'INSITU_UNAUTHENTICATED',
        `${what}: the platform refused the agent credential (revoked?); enrol again with a new token`,
      );
    return new InsituError(
      'INSITU_REMOTE',
      `${what} failed: ${status} ${error?.code ?? ''} ${error?.message ?? ''}`.trim(),
      { details: { status, code: error?.code } },
    );
  }

  /** Exchange a single-use enrolment token for the agent credential. */
  async enrol(
    token: string,
    info: { name: string; hostname?: string; version?: string },
  ): Promise<{ agent: AgentIdentity; credential: string }> {
    const { status, body } = await this.call<{ agent: AgentIdentity; credential: string }>(
      'POST',
      '/api/v1/agents/enrol',
      { token, ...info },
      false,
    );
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
    const { status, body } = await this.call<{ id: string; name: string }>(
      'GET',
      `/api/v1/providers/${encodeURIComponent(id)}`,
    );
    if (status !== 200) throw PlatformClient.failure(`reading provider ${id}`, status, body);
    return body;
  }

  async putDataset(providerId: string, name: string, input: DatasetInput): Promise<void> {
    const { status, body } = await this.call(
      'PUT',
      `/api/v1/providers/${encodeURIComponent(providerId)}/datasets/${encodeURIComponent(name)}`,
      input,
    );
    if (status !== 200 && status !== 201) throw PlatformClient.failure(`publishing dataset ${name}`, status, body);
  }

  /** Remove a dataset; false when it was not there. */
  async deleteDataset(providerId: string, name: string): Promise<boolean> {
    const { status, body } = await this.call(
      'DELETE',
      `/api/v1/providers/${encodeURIComponent(providerId)}/datasets/${encodeURIComponent(name)}`,
    );
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
      const { status, body } = await this.call<{ items: CatalogDataset[]; nextCursor?: string }>(
        'GET',
        `/api/v1/datasets?${query.toString()}`,
      );
      if (status !== 200) throw PlatformClient.failure('listing the catalog', status, body);
      out.push(...body.items);
      cursor = body.nextCursor;
    } while (cursor);
    return out;
  }

  /** What this agent's provider should run, and the output policies set on the platform. */
  async desired(): Promise<AgentDesired> {
    const { status, body } = await this.call('GET', '/api/v1/agents/self/desired');
    if (status !== 200) throw PlatformClient.failure('reading the desired deployments', status, body);
    return assertValid(AgentDesiredSchema, body, { what: 'the desired deployments', code: 'INSITU_REMOTE' });
  }

  /** Report the state of every deployment this agent runs. */
  async reportStatus(deployments: readonly DeploymentReport[]): Promise<void> {
    const { status, body } = await this.call('PUT', '/api/v1/agents/self/status', { deployments });
    if (status !== 204) throw PlatformClient.failure('reporting the deployment status', status, body);
  }

  /** Queued jobs of this provider and the running ones this agent holds. */
  async jobs(): Promise<AgentJob[]> {
    const { status, body } = await this.call('GET', '/api/v1/agents/self/jobs');
    if (status !== 200) throw PlatformClient.failure('reading the jobs', status, body);
    return assertValid(AgentJobsSchema, body, { what: 'the jobs', code: 'INSITU_REMOTE' }).jobs;
  }

  /**
   * Charge a noised answer to the provider's privacy budget at the platform (summed over all
   * its agents); throws `INSITU_POLICY_BUDGET_SPENT` when it is spent, another error when
   * the platform cannot be asked (the answer is refused either way).
   */
  async chargePrivacyBudget(key: string, dataset: string, epsilon: number, budget: number): Promise<void> {
    const { status, body } = await this.call('POST', '/api/v1/agents/self/privacy-budget/charge', {
      key,
      dataset,
      epsilon,
      budget,
    });
    if (status === 204) return;
    const error = (body as { error?: { code?: string; message?: string } } | undefined)?.error;
    if (status === 403 && error?.code === 'INSITU_POLICY_BUDGET_SPENT')
      throw new InsituError(
        'INSITU_POLICY_BUDGET_SPENT',
        error.message ?? `the privacy budget on dataset ${dataset} is spent`,
      );
    throw PlatformClient.failure(`charging the privacy budget of ${dataset}`, status, body);
  }

  /** Take a queued job; false when another agent (or a cancel) came first. */
  async claimJob(id: string): Promise<boolean> {
    const { status, body } = await this.call('POST', `/api/v1/agents/self/jobs/${encodeURIComponent(id)}/claim`);
    if (status === 409) return false;
    if (status !== 204) throw PlatformClient.failure(`claiming job ${id}`, status, body);
    return true;
  }

  /** Upload one result file the provider's policy let out. */
  async uploadJobResult(id: string, name: string, data: Buffer): Promise<void> {
    const { status, data: answer } = await this.exchange(
      'PUT',
      `/api/v1/agents/self/jobs/${encodeURIComponent(id)}/results/${encodeURIComponent(name)}`,
      data,
      {
        ...(this.credential ? { authorization: `Bearer ${this.credential}` } : {}),
        'content-type': 'application/octet-stream',
      },
      120_000,
    );
    if (status !== 204)
      throw PlatformClient.failure(`uploading result ${name} of job ${id}`, status, answer.toString('utf8'));
  }

  /** Report how a job ended. */
  async reportJob(id: string, report: AgentJobReport): Promise<void> {
    const { status, body } = await this.call(
      'PUT',
      `/api/v1/agents/self/jobs/${encodeURIComponent(id)}/report`,
      report,
    );
    if (status !== 204 && status !== 409) throw PlatformClient.failure(`reporting job ${id}`, status, body);
  }

  /** Download a bundle (the platform path from a deployment); the caller verifies its digest. */
  async bundle(path: string): Promise<Buffer> {
    if (!path.startsWith('/api/v1/bundles/'))
      throw bundleInvalid(`the platform named an unexpected bundle location: ${path}`);
    const { status, data } = await this.exchange(
      'GET',
      path,
      undefined,
      this.credential ? { authorization: `Bearer ${this.credential}` } : {},
      300_000,
    );
    if (status !== 200)
      throw PlatformClient.failure(`downloading bundle ${path}`, status, data.toString('utf8').slice(0, 500));
    return data;
  }
}
