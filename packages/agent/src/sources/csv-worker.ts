// Runs CSV queries in a worker thread: parsing, typing, filtering (LIKE included),
// ordering and grouping of a whole file is work the agent's main thread must not do, and
// a query past its time limit is stopped by terminating the worker. Protocol:
// worker-pool.ts (one batch per pull; an error keeps its code when it is the query's own).
import { parentPort, workerData } from 'node:worker_threads';
import { InsituError } from '@insitu/core/basics';
import type { DataValue } from '@insitu/sdk';
import { csvRows, type CsvWorkerData } from './csv-rows.js';
import { runPlan } from './row-engine.js';
import type { CsvWorkerQuery } from './worker-pool.js';

const port = parentPort;
if (!port) throw new Error('csv-worker must run as a worker thread');
const { config, maxSortRows } = workerData as CsvWorkerData;

let current: { rows: AsyncGenerator<DataValue[][]>; lines: boolean; stop: AbortController } | undefined;
// Batches are produced one at a time, in the order they were pulled.
let queue: Promise<void> = Promise.resolve();

async function sendBatch(): Promise<void> {
  const query = current;
  if (!query) return;
  try {
    const next = await query.rows.next();
    if (next.done) {
      current = undefined;
      post(query, [], true);
    } else post(query, next.value, false);
  } catch (error) {
    current = undefined;
    query.stop.abort();
    const code = error instanceof InsituError ? error.code : undefined;
    port?.postMessage({
      type: 'error',
      message: (error as Error).message,
      ...(code && code !== 'INSITU_INTERNAL' ? { code } : {}),
    });
  }
}

function post(query: { lines: boolean }, rows: DataValue[][], done: boolean): void {
  if (!query.lines) {
    port?.postMessage({ type: 'rows', rows, done });
    return;
  }
  let text = '';
  for (const row of rows) text += `${JSON.stringify(row)}\n`;
  port?.postMessage({ type: 'text', text, rows: rows.length, done });
}

port.on('message', (message: CsvWorkerQuery | { type: 'pull' }) => {
  if (message.type === 'query') {
    current?.stop.abort();
    const stop = new AbortController();
    current = {
      rows: runPlan(message.plan, csvRows(config, message.plan, stop.signal), { maxSortRows }),
      lines: message.lines,
      stop,
    };
  }
  queue = queue.then(sendBatch);
});
