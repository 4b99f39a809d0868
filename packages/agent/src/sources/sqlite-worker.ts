// Runs SQLite reads in a worker thread: better-sqlite3 is synchronous, and one long
// query in the agent's main thread would stall every other request. A query that runs
// past its time limit is stopped by terminating the worker. Protocol: worker-pool.ts.
import { parentPort, workerData } from 'node:worker_threads';
import BetterSqlite3 from 'better-sqlite3';
import { rowLines, wireConverters, type WireConverter } from './values.js';
import type { WorkerQuery } from './worker-pool.js';

const port = parentPort;
if (!port) throw new Error('sqlite-worker must run as a worker thread');
const db = new BetterSqlite3((workerData as { path: string }).path, { readonly: true, fileMustExist: true });
db.pragma('query_only = ON');

let rows: IterableIterator<unknown[]> | undefined;
let batchSize = 1000;
let converters: Array<WireConverter | null> | undefined;

function sendBatch(): void {
  if (!rows) return;
  const batch: unknown[][] = [];
  try {
    for (let i = 0; i < batchSize; i++) {
      const next = rows.next();
      if (next.done) {
        rows = undefined;
        post(batch, true);
        return;
      }
      batch.push(next.value);
    }
  } catch (error) {
    rows = undefined;
    port?.postMessage({ type: 'error', message: (error as Error).message });
    return;
  }
  post(batch, false);
}

function post(batch: unknown[][], done: boolean): void {
  if (converters) port?.postMessage({ type: 'text', text: rowLines(batch, converters), rows: batch.length, done });
  else port?.postMessage({ type: 'rows', rows: batch, done });
}

port.on('message', (message: WorkerQuery | { type: 'pull' }) => {
  if (message.type === 'query') {
    try {
      const statement = db.prepare(message.sql).raw(true);
      batchSize = message.batch;
      converters = message.types ? wireConverters(message.types) : undefined;
      rows = statement.iterate(...message.params) as IterableIterator<unknown[]>;
    } catch (error) {
      port.postMessage({ type: 'error', message: (error as Error).message });
      return;
    }
    sendBatch();
  } else if (message.type === 'pull') {
    sendBatch();
  }
});
