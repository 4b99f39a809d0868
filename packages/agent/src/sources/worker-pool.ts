import { Worker } from 'node:worker_threads';
import { InsituError, isErrorCode, type ColumnType } from '@insitu/core';
import { sourceUnavailable, type QueryPlan } from './data-source.js';
import { dataSourceUnavailable } from '../errors.js';

/**
 * What a query worker answers: rows as arrays (`rows`), or rows already converted and
 * serialised as data API row lines (`text`), batch by batch; or an error.
 */
export type WorkerReply =
  | { type: 'rows'; rows: unknown[][]; done: boolean }
  | { type: 'text'; text: string; rows: number; done: boolean }
  /** `code`: the query's own error (e.g. `INSITU_DATA_QUERY_INVALID`), kept as it is; without it, the source failed. */
  | { type: 'error'; message: string; code?: string };

/**
 * What a query worker is asked: run `sql` and send `batch` rows at a time, the next batch
 * on each `{ type: 'pull' }`. With `types`, it converts each column to its wire form
 * (`null`: the driver's value is already right) and sends NDJSON text.
 */
export interface WorkerQuery {
  type: 'query';
  sql: string;
  params: readonly unknown[];
  batch: number;
  types?: Array<ColumnType | null>;
}

/**
 * What a CSV query worker is asked: run the checked plan over the file (the row engine),
 * one batch per `{ type: 'pull' }`; with `lines`, as data API row lines.
 */
export interface CsvWorkerQuery {
  type: 'query';
  plan: QueryPlan;
  lines: boolean;
}

/** The `types` of a {@link WorkerQuery}: columns of the types in `asIs` are sent as the driver gives them. */
export function wireTypes(plan: QueryPlan, asIs: readonly ColumnType[]): Array<ColumnType | null> {
  return plan.output.map((o) => (asIs.includes(o.type) ? null : o.type));
}

/**
 * A small pool of query worker threads, each holding its own read-only connection to one
 * source: the driver's parsing and the rows' serialisation run off the agent's main thread.
 * A query that is abandoned (time limit, row cap, caller gone) terminates its worker, and
 * with it the connection.
 */
export class WorkerPool {
  private readonly idle: Worker[] = [];
  private readonly waiting: Array<{ resolve: (worker: Worker) => void; reject: (error: Error) => void }> = [];
  private count = 0;
  private closed = false;

  constructor(
    private readonly script: URL,
    private readonly workerData: unknown,
    private readonly max: number,
  ) {}

  private spawn(): Worker {
    this.count++;
    const worker = new Worker(this.script, { workerData: this.workerData });
    worker.unref();
    // An exception in the worker ends the thread ('exit' follows, which fails the query
    // that was running); without a listener it would be thrown in the agent's main thread.
    worker.on('error', () => undefined);
    worker.once('exit', () => {
      // Its place goes to the next query waiting, if any (a terminated worker frees its
      // place only here, once it is really gone, so there are never more than `max`).
      this.count--;
      const i = this.idle.indexOf(worker);
      if (i !== -1) this.idle.splice(i, 1);
      const next = this.closed ? undefined : this.waiting.shift();
      if (next) next.resolve(this.spawn());
    });
    return worker;
  }

  private async acquire(): Promise<Worker> {
    if (this.closed) throw dataSourceUnavailable(undefined, 'the source is closed');
    const worker = this.idle.pop();
    if (worker) return worker;
    if (this.count < this.max) return this.spawn();
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }

  /** Give a worker back; a worker in an unknown state is terminated instead. */
  private release(worker: Worker, healthy: boolean): void {
    if (!healthy || this.closed) {
      void worker.terminate();
      return;
    }
    const next = this.waiting.shift();
    if (next) next.resolve(worker);
    else this.idle.push(worker);
  }

  /**
   * Run one query in a worker and yield its batches. The next batch is asked for before
   * this one is handed on, so the worker reads while the caller sends. An error the worker
   * reports becomes `INSITU_DATA_SOURCE_UNAVAILABLE` naming `source`.
   */
  async *run(query: WorkerQuery | CsvWorkerQuery, signal: AbortSignal, source: string): AsyncGenerator<WorkerReply> {
    const worker = await this.acquire();
    let healthy = false;
    const replies: WorkerReply[] = [];
    let wake: (() => void) | undefined;
    const onMessage = (reply: WorkerReply) => {
      replies.push(reply);
      wake?.();
    };
    let exited = false;
    const onExit = () => {
      exited = true;
      replies.push({ type: 'error', message: 'the query worker stopped' });
      wake?.();
    };
    const onAbort = () => wake?.();
    worker.on('message', onMessage);
    worker.on('exit', onExit);
    signal.addEventListener('abort', onAbort);
    try {
      worker.postMessage(query);
      for (;;) {
        while (replies.length === 0 && !signal.aborted) await new Promise<void>((resolve) => (wake = resolve));
        if (signal.aborted) return;
        const reply = replies.shift() as WorkerReply;
        if (reply.type === 'error') {
          healthy = !exited;
          throw isErrorCode(reply.code)
            ? new InsituError(reply.code, reply.message)
            : sourceUnavailable(source, new Error(reply.message));
        }
        if (!reply.done) worker.postMessage({ type: 'pull' });
        yield reply;
        if (reply.done) {
          healthy = true;
          return;
        }
      }
    } finally {
      worker.off('message', onMessage);
      worker.off('exit', onExit);
      signal.removeEventListener('abort', onAbort);
      this.release(worker, healthy);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const waiter of this.waiting.splice(0))
      waiter.reject(dataSourceUnavailable(undefined, 'the source is closed'));
    await Promise.all(this.idle.splice(0).map((w) => w.terminate()));
  }
}
