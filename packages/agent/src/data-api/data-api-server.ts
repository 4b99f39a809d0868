import { chmod, unlink } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { once } from 'node:events';
import {
  answerClientError,
  decodePathSegment,
  echo,
  errorJson,
  InsituError,
  type Logger,
  newId,
  stricterPolicy,
  toInsituError,
  type OutputPolicy,
} from '@insitu/core';
import type { DatasetInfo } from '@insitu/sdk';
import type { AgentLimits } from '../config/agent-config.js';
import type { DatasetMeta } from '../sources/data-source.js';
import type { DatasetRegistry } from '../sources/dataset-registry.js';
import { noisyRow } from './laplace-noise.js';
import type { PrivacyBudget } from './privacy-budget.js';
import { planQuery } from './query-plan.js';

const MAX_BODY = 1024 * 1024;
const CHUNK = 64 * 1024;

/** Which datasets a caller may read: the names its manifest declares (`'*'` for all, used by tests and tools). */
export type DeclaredDatasets = ReadonlySet<string> | '*';

/** Counts queries per source and makes the rest wait. */
class Gate {
  private running = 0;
  private readonly queue: Array<() => void> = [];
  constructor(private readonly max: number) {}
  async enter(signal: AbortSignal): Promise<void> {
    if (this.running < this.max) {
      this.running++;
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const go = () => {
        signal.removeEventListener('abort', stop);
        this.running++;
        resolve();
      };
      const stop = () => {
        const i = this.queue.indexOf(go);
        if (i !== -1) this.queue.splice(i, 1);
        reject(signal.reason as Error);
      };
      this.queue.push(go);
      signal.addEventListener('abort', stop, { once: true });
    });
  }
  leave(): void {
    this.running--;
    this.queue.shift()?.();
  }
}

/** Wait for `drain`, or for the query to be aborted; leaves no listener behind. */
function drained(res: ServerResponse, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
    signal.addEventListener('abort', done, { once: true });
  });
}

function info(meta: DatasetMeta, policy: OutputPolicy): DatasetInfo {
  return {
    name: meta.name,
    sourceKind: meta.sourceKind,
    columns: meta.columns.map((c) => ({ name: c.name, type: c.type, nullable: c.nullable })),
    rowCount: meta.rowCount,
    policy,
  };
}

/** The output policies the platform carries for this agent's datasets, by dataset name. */
export interface PlatformPolicies {
  get(dataset: string): OutputPolicy | undefined;
}

function sendError(res: ServerResponse, error: InsituError, requestId: string): void {
  if (res.headersSent) return;
  const body = errorJson(error, requestId);
  res.writeHead(error.status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'insitu-request-id': requestId,
  });
  res.end(body);
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY)
      throw new InsituError('INSITU_BODY_TOO_LARGE', `a data query may have at most ${MAX_BODY} bytes`);
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return {};
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw new InsituError('INSITU_BAD_JSON', 'the data query is not valid JSON');
  }
}

/** Options of {@link DataApiServer}. */
export interface DataApiServerOptions {
  registry: DatasetRegistry;
  declared: DeclaredDatasets;
  limits: Readonly<AgentLimits>;
  logger: Logger;
  /** Label for logs, e.g. the deployment. */
  caller?: string;
  /** Shared per-source gates, so that several applications' queries count together. */
  gates?: Map<string, Gate>;
  /** Policies set on the platform; each can only tighten the one of the agent's config. */
  platformPolicies?: PlatformPolicies;
  /** Where noised answers are paid for (one per agent, shared by its data APIs); required for datasets with noise. */
  budget?: PrivacyBudget;
  /**
   * Whose privacy budget a noised answer is paid from; `caller` by default. Jobs pass their
   * approved version, so that running the same code again and again draws on one budget.
   */
  budgetKey?: string;
}

/**
 * The data API for one application: HTTP/1.1 over a Unix socket that the agent mounts
 * into the application's sandbox. `GET /v1/datasets` lists what the manifest declares;
 * `POST /v1/datasets/{name}/query` streams the answer as NDJSON (a schema line, one JSON
 * array per row, an end line; an error line if it fails after it started).
 */
export class DataApiServer {
  private readonly server: Server;
  private socketPath: string | undefined;
  private readonly gates: Map<string, Gate>;

  constructor(private readonly options: DataApiServerOptions) {
    this.gates = options.gates ?? new Map<string, Gate>();
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((error: unknown) => {
        const e = toInsituError(error);
        const requestId = newId('req');
        if (e.status >= 500)
          this.options.logger.error(
            { err: error, caller: this.options.caller, reqId: requestId },
            'data API request failed',
          );
        sendError(res, e, requestId);
      });
    });
    this.server.on('clientError', answerClientError);
    this.server.keepAliveTimeout = 5000;
  }

  /** Per-source gates, to share between the data API servers of one agent. */
  static createGates(): Map<string, Gate> {
    return new Map<string, Gate>();
  }

  private gate(source: string): Gate {
    let gate = this.gates.get(source);
    if (!gate) {
      gate = new Gate(this.options.limits.maxConcurrentQueries);
      this.gates.set(source, gate);
    }
    return gate;
  }

  private isDeclared(name: string): boolean {
    return this.options.declared === '*' || this.options.declared.has(name);
  }

  /** The effective policy of a dataset: the stricter of the agent's config and the platform's. */
  private policyOf(meta: DatasetMeta): OutputPolicy {
    return stricterPolicy(meta.policy, this.options.platformPolicies?.get(meta.name));
  }

  private lookup(name: string) {
    if (!this.isDeclared(name)) {
      throw new InsituError(
        'INSITU_DATASET_NOT_DECLARED',
        `dataset ${JSON.stringify(echo(name))} is not declared in this application's manifest`,
      );
    }
    const found = this.options.registry.get(name);
    if (!found)
      throw new InsituError(
        'INSITU_DATASET_NOT_FOUND',
        `dataset ${JSON.stringify(echo(name))} is declared but this agent does not serve it`,
      );
    return found;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://data-api');
    const parts = url.pathname.split('/').slice(1).map(decodePathSegment);
    if (req.method === 'GET' && url.pathname === '/v1/datasets') {
      const datasets = this.options.registry
        .list()
        .filter((d) => this.isDeclared(d.name))
        .map((d) => info(d, this.policyOf(d)));
      const body = JSON.stringify({ datasets });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    if (parts[0] === 'v1' && parts[1] === 'datasets' && parts.length === 3 && req.method === 'GET') {
      const { meta } = this.lookup(parts[2] as string);
      const body = JSON.stringify(info(meta, this.policyOf(meta)));
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    if (
      parts[0] === 'v1' &&
      parts[1] === 'datasets' &&
      parts[3] === 'query' &&
      parts.length === 4 &&
      req.method === 'POST'
    ) {
      await this.query(parts[2] as string, req, res);
      return;
    }
    throw new InsituError('INSITU_ROUTE_NOT_FOUND', `${req.method} ${echo(url.pathname)} is not a data API endpoint`);
  }

  private async query(name: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { meta, source } = this.lookup(name);
    const policy = this.policyOf(meta);
    const { queryTimeoutMs } = this.options.limits;
    // The policy's row cap is the agent's own cap made smaller: cut the same way, marked truncated.
    const maxRows = Math.min(this.options.limits.maxRows, policy.maxRowsPerAnswer ?? Infinity);
    const plan = planQuery(meta, await readBody(req), { maxRows }, policy);
    if (plan.noise) {
      if (!this.options.budget)
        throw new InsituError('INSITU_POLICY_NOISE_UNSUPPORTED', 'this data API keeps no privacy budget');
      // Paid before the query runs: an answer that fails halfway may already have leaked.
      await this.options.budget.charge(
        this.options.budgetKey ?? this.options.caller ?? 'local',
        name,
        plan.noise.epsilon,
        (policy.noise as { budget: number }).budget,
      );
    }
    const controller = new AbortController();
    const timer = setTimeout(
      () =>
        controller.abort(
          new InsituError(
            'INSITU_DATA_QUERY_TIMEOUT',
            `the query on ${name} ran past the limit of ${queryTimeoutMs} ms and was cancelled`,
          ),
        ),
      queryTimeoutMs,
    );
    const onClose = () => {
      if (!res.writableFinished)
        controller.abort(new InsituError('INSITU_UNAVAILABLE', 'the application closed the connection'));
    };
    res.on('close', onClose);
    const gate = this.gate(source.name);
    const started = Date.now();
    let rows = 0;
    let truncated = false;
    try {
      await gate.enter(controller.signal);
    } catch (error) {
      clearTimeout(timer);
      res.off('close', onClose);
      throw error;
    }
    try {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      let pending = `${JSON.stringify({ columns: plan.output })}\n`;
      const flush = async () => {
        const ok = res.write(pending);
        pending = '';
        if (!ok) await drained(res, controller.signal);
      };
      if (source.queryLines && !plan.noise) {
        for await (const chunk of source.queryLines(plan, controller.signal)) {
          if (rows + chunk.rows > maxRows) {
            // Cut at the row cap, line by line (only the last chunk of a capped answer).
            const keep = maxRows - rows;
            let end = 0;
            for (let i = 0; i < keep; i++) end = chunk.text.indexOf('\n', end) + 1;
            pending += chunk.text.slice(0, end);
            rows = maxRows;
            truncated = true;
            break;
          }
          pending += chunk.text;
          rows += chunk.rows;
          if (pending.length >= CHUNK) await flush();
          if (controller.signal.aborted) break;
        }
      } else {
        outer: for await (const batch of source.query(plan, controller.signal)) {
          for (const row of batch) {
            if (rows >= maxRows) {
              truncated = true;
              break outer;
            }
            pending += `${JSON.stringify(plan.noise ? noisyRow(row, plan.noise) : row)}\n`;
            rows++;
            if (pending.length >= CHUNK) {
              await flush();
              if (controller.signal.aborted) break outer;
            }
          }
        }
      }
      if (controller.signal.aborted) throw controller.signal.reason;
      res.end(`${pending}${JSON.stringify({ end: { rows, truncated } })}\n`);
      this.options.logger.debug(
        { caller: this.options.caller, dataset: name, rows, truncated, ms: Date.now() - started },
        'data query',
      );
    } catch (error) {
      const e = toInsituError(controller.signal.aborted ? controller.signal.reason : error);
      if (e.status >= 500 && e.code !== 'INSITU_DATA_QUERY_TIMEOUT' && e.code !== 'INSITU_DATA_SOURCE_UNAVAILABLE') {
        this.options.logger.error({ err: error, caller: this.options.caller, dataset: name }, 'data query failed');
      } else
        this.options.logger.info({ caller: this.options.caller, dataset: name, code: e.code }, 'data query stopped');
      if (!res.destroyed && !res.writableEnded) res.end(`${errorJson(e)}\n`);
    } finally {
      clearTimeout(timer);
      res.off('close', onClose);
      gate.leave();
    }
  }

  /** Listen on a Unix socket (mode 0600; the sandbox reaches it through a bind mount). */
  async listen(socketPath: string): Promise<void> {
    await unlink(socketPath).catch(() => undefined);
    this.server.listen(socketPath);
    await once(this.server, 'listening');
    await chmod(socketPath, 0o600);
    this.socketPath = socketPath;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    if (this.socketPath) await unlink(this.socketPath).catch(() => undefined);
  }
}

export type { Gate };
