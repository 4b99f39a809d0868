import { InsituError, isErrorCode } from '@insitu/core';
import type { Coordinator } from './coord-port.js';
import type { ManagerEvent } from './events.js';
import type { ClusterStatus, SwitchoverResult } from './manager.js';
import { coordKeys, electionName, ManagerRecordSchema, parseRecord } from './topology.js';

/** Options of {@link DbAdminClient}. */
export interface DbAdminClientOptions {
  /** Admin URL of a manager (any: commands follow the leader once). */
  url: string;
  token: string;
  timeoutMs?: number;
}

/**
 * Talks to a dbmanager's admin API (what `insitu db` uses). A command sent to a manager
 * that is not the leader is sent once more to the leader it names.
 */
export class DbAdminClient {
  readonly #token: string;
  readonly #timeoutMs: number;
  #url: string;

  constructor(options: DbAdminClientOptions) {
    this.#url = options.url.replace(/\/+$/, '');
    this.#token = options.token;
    this.#timeoutMs = options.timeoutMs ?? 120_000;
  }

  get url(): string {
    return this.#url;
  }

  status(): Promise<ClusterStatus> {
    return this.#call<ClusterStatus>('GET', '/v1/status');
  }

  async events(limit = 100): Promise<ManagerEvent[]> {
    return (await this.#call<{ items: ManagerEvent[] }>('GET', `/v1/events?limit=${limit}`)).items;
  }

  switchover(to: string): Promise<SwitchoverResult> {
    return this.#call<SwitchoverResult>('POST', '/v1/switchover', { to });
  }

  ack(by?: string): Promise<{ cooldownWasActive: boolean; lastFailoverAt: string | null }> {
    return this.#call('POST', '/v1/ack', by === undefined ? {} : { by });
  }

  async #call<T>(method: string, path: string, body?: unknown, redirected = false): Promise<T> {
    let response: Response;
    try {
      response = await fetch(`${this.#url}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${this.#token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (error) {
      throw new InsituError('INSITU_REMOTE', `dbmanager at ${this.#url} unreachable: ${(error as Error).message}`, {
        cause: error,
      });
    }
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      throw new InsituError(
        'INSITU_REMOTE',
        `dbmanager at ${this.#url} answered ${response.status} with a body that is not JSON`,
      );
    }
    if (response.ok) return parsed as T;
    const error = (parsed as { error?: { code?: unknown; message?: unknown; details?: unknown } } | undefined)?.error;
    const code = error?.code;
    const leaderUrl = (error?.details as { leaderUrl?: unknown } | undefined)?.leaderUrl;
    if (code === 'INSITU_DBMANAGER_NOT_LEADER' && typeof leaderUrl === 'string' && !redirected) {
      this.#url = leaderUrl.replace(/\/+$/, '');
      return this.#call<T>(method, path, body, true);
    }
    const message = typeof error?.message === 'string' ? error.message : `HTTP ${response.status}`;
    throw new InsituError(isErrorCode(code) ? code : 'INSITU_REMOTE', message, {
      details: error?.details,
      status: response.status,
    });
  }
}

/**
 * The admin URL of the elected manager of `cluster`, found through coord: the election's
 * leader, then its record under `managers/`. Waits up to `timeoutMs` for a leader.
 */
export async function findLeaderUrl(coordinator: Coordinator, cluster: string, timeoutMs = 5000): Promise<string> {
  const observer = await coordinator.observe(electionName(cluster));
  try {
    const deadline = Date.now() + timeoutMs;
    let leader = observer.leader();
    while (leader === undefined && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      leader = observer.leader();
    }
    if (leader === undefined)
      throw new InsituError('INSITU_DBMANAGER_NO_LEADER', `no dbmanager of cluster ${cluster} is elected`);
    const record = parseRecord(
      ManagerRecordSchema,
      await coordinator.get(coordKeys(cluster).manager(leader)),
      'manager record',
    );
    if (record === undefined)
      throw new InsituError('INSITU_DBMANAGER_NO_LEADER', `the elected dbmanager ${leader} has published no admin URL`);
    return record.adminUrl;
  } finally {
    await observer.close();
  }
}
