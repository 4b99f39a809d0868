// Runs SQLite reads in a worker thread: better-sqlite3 is synchronous, and one long
// query in the agent's main thread would stall every other request. A query that runs
// past its time limit is stopped by terminating the worker.
import { parentPort, workerData } from 'node:worker_threads';
import BetterSqlite3 from 'better-sqlite3';

interface Start { type: 'query'; sql: string; params: unknown[]; batch: number }
interface Pull { type: 'pull' }
type Message = Start | Pull;

const port = parentPort;
if (!port) throw new Error('sqlite-worker must run as a worker thread');
const db = new BetterSqlite3((workerData as { path: string }).path, { readonly: true, fileMustExist: true });
db.pragma('query_only = ON');

let rows: IterableIterator<unknown[]> | undefined;
let batchSize = 1000;

function sendBatch(): void {
  if (!rows) return;
  const batch: unknown[][] = [];
  try {
    for (let i = 0; i < batchSize; i++) {
      const next = rows.next();
      if (next.done) {
        rows = undefined;
        port?.postMessage({ type: 'rows', rows: batch, done: true });
        return;
      }
      batch.push(next.value);
    }
  } catch (error) {
    rows = undefined;
    port?.postMessage({ type: 'error', message: (error as Error).message });
    return;
  }
  port?.postMessage({ type: 'rows', rows: batch, done: false });
}

port.on('message', (message: Message) => {
  if (message.type === 'query') {
    try {
      const statement = db.prepare(message.sql).raw(true);
      batchSize = message.batch;
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
