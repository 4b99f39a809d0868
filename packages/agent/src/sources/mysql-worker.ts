// Runs MySQL/MariaDB reads in a worker thread with its own connection: mysql2's row
// parsing and the rows' conversion and serialisation leave the agent's main thread, which
// only writes the text to the application. Protocol: worker-pool.ts.
import { parentPort, workerData } from 'node:worker_threads';
import { createConnection, type Connection, type ConnectionOptions } from 'mysql2';
import { rowLines, wireConverters, type WireConverter } from './values.js';
import type { WorkerQuery } from './worker-pool.js';

const port = parentPort;
if (!port) throw new Error('mysql-worker must run as a worker thread');
const settings = workerData as { connection: ConnectionOptions; session: string[] };

let connection: Connection | undefined;
/** The running query's state: rows gathered for the next batch, and whether the worker waits for a pull. */
let batch: unknown[][] = [];
let batchSize = 1000;
let converters: Array<WireConverter | null> | undefined;
let waiting = false;
let ended = false;
/** A query runs and has not sent its last message (done or error): pulls for anything else are ignored. */
let active = false;

function connect(): Connection {
  if (connection) return connection;
  const fresh = createConnection(settings.connection);
  // A connection that broke is dropped; the next query opens another.
  fresh.on('error', () => {
    if (connection === fresh) connection = undefined;
  });
  for (const statement of settings.session) fresh.query(statement, () => undefined);
  connection = fresh;
  return fresh;
}

function post(done: boolean): void {
  if (done) active = false;
  const rows = batch;
  batch = [];
  if (converters) port?.postMessage({ type: 'text', text: rowLines(rows, converters), rows: rows.length, done });
  else port?.postMessage({ type: 'rows', rows, done });
}

port.on('message', (message: WorkerQuery | { type: 'pull' }) => {
  if (message.type === 'pull') {
    if (!active) return;
    waiting = false;
    if (ended) post(true);
    else if (batch.length >= batchSize) {
      waiting = true;
      post(false);
    } else connection?.resume();
    return;
  }
  batch = [];
  batchSize = message.batch;
  converters = message.types ? wireConverters(message.types) : undefined;
  waiting = false;
  ended = false;
  active = true;
  const conn = connect();
  // A connection paused by a query that failed while paused would never read again.
  conn.resume();
  conn
    .query({ sql: message.sql, values: message.params as unknown[], rowsAsArray: true })
    .on('result', (row) => {
      batch.push(row as unknown as unknown[]);
      if (batch.length >= batchSize && !waiting) {
        // Stop reading until the main thread asks for the next batch.
        conn.pause();
        waiting = true;
        post(false);
      }
    })
    .on('error', (error: Error & { fatal?: boolean }) => {
      if (error.fatal && connection === conn) connection = undefined;
      ended = true;
      active = false;
      batch = [];
      port.postMessage({ type: 'error', message: error.message });
    })
    .on('end', () => {
      if (ended) return;
      ended = true;
      if (!waiting) post(true);
    });
});
