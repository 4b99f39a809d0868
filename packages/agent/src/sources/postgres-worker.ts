// Runs PostgreSQL reads in a worker thread with its own connection: pg's row parsing and
// the rows' conversion and serialisation leave the agent's main thread, which only
// writes the text to the application. Protocol: worker-pool.ts.
import { parentPort, workerData } from 'node:worker_threads';
import pg from 'pg';
import Cursor from 'pg-cursor';
import { postgresTypes } from './postgres-session.js';
import { rowLines, wireConverters, type WireConverter } from './values.js';
import type { WorkerQuery } from './worker-pool.js';

const port = parentPort;
if (!port) throw new Error('postgres-worker must run as a worker thread');
const settings = workerData as { client: pg.ClientConfig };

let client: pg.Client | undefined;
let cursor: Cursor | undefined;
let batchSize = 1000;
let converters: Array<WireConverter | null> | undefined;

async function connect(): Promise<pg.Client> {
  if (client) return client;
  const fresh = new pg.Client({ ...settings.client, types: postgresTypes });
  // A connection that broke is dropped; the next query opens another.
  fresh.on('error', () => {
    if (client === fresh) client = undefined;
  });
  await fresh.connect();
  client = fresh;
  return fresh;
}

/** Read and send the next batch of the running query. */
async function sendBatch(): Promise<void> {
  const running = cursor;
  if (!running) return;
  try {
    const rows = (await running.read(batchSize)) as unknown[][];
    const done = rows.length < batchSize;
    if (done) {
      cursor = undefined;
      await running.close();
    }
    if (converters) port?.postMessage({ type: 'text', text: rowLines(rows, converters), rows: rows.length, done });
    else port?.postMessage({ type: 'rows', rows, done });
  } catch (error) {
    fail(error);
  }
}

function fail(error: unknown): void {
  cursor = undefined;
  // After an error the session's state is not worth reasoning about: start afresh.
  const broken = client;
  client = undefined;
  void broken?.end().catch(() => undefined);
  port?.postMessage({ type: 'error', message: (error as Error).message });
}

port.on('message', (message: WorkerQuery | { type: 'pull' }) => {
  if (message.type === 'pull') {
    void sendBatch();
    return;
  }
  batchSize = message.batch;
  converters = message.types ? wireConverters(message.types) : undefined;
  connect()
    .then((c) => {
      cursor = c.query(new Cursor(message.sql, message.params as unknown[], { rowMode: 'array' }));
      return sendBatch();
    })
    .catch(fail);
});
