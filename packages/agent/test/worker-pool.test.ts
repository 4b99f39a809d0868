import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { InsituError } from '@insitu/core';
import { makeTempDir, removeDir } from '@insitu/test-helpers';
import { WorkerPool, type WorkerQuery } from '../src/sources/worker-pool.js';

// A query worker speaking the pool's protocol: `ok` answers one line, `boom` throws in
// the thread, `hang` never answers.
const WORKER = `
import { parentPort } from 'node:worker_threads';
parentPort.on('message', (message) => {
  if (message.type !== 'query') return;
  if (message.sql === 'boom') throw new Error('boom');
  if (message.sql === 'ok') parentPort.postMessage({ type: 'text', text: '[1]\\n', rows: 1, done: true });
});
`;

const query = (sql: string): WorkerQuery => ({ type: 'query', sql, params: [], batch: 10, types: [] });

async function collect(pool: WorkerPool, sql: string, signal = new AbortController().signal): Promise<string> {
  let text = '';
  for await (const reply of pool.run(query(sql), signal, 'test')) if (reply.type === 'text') text += reply.text;
  return text;
}

describe('query worker pool', () => {
  let dir = '';
  let script: URL;
  // The pool's workers do not hold the process open (the agent's sockets do); here a timer does.
  let keepAlive: NodeJS.Timeout | undefined;

  before(async () => {
    keepAlive = setInterval(() => undefined, 1000);
    dir = await makeTempDir('insitu-worker-pool-');
    writeFileSync(join(dir, 'worker.mjs'), WORKER);
    script = pathToFileURL(join(dir, 'worker.mjs'));
  });
  after(async () => {
    clearInterval(keepAlive);
    await removeDir(dir);
  });

  it('fails the query of a worker that throws, keeps the process up, and replaces the worker', async () => {
    const pool = new WorkerPool(script, {}, 1);
    try {
      await assert.rejects(
        collect(pool, 'boom'),
        (e: unknown) =>
          e instanceof InsituError && e.code === 'INSITU_DATA_SOURCE_UNAVAILABLE' && /worker stopped/.test(e.message),
      );
      assert.equal(await collect(pool, 'ok'), '[1]\n');
    } finally {
      await pool.close();
    }
  });

  it('gives the place of an abandoned query to the one waiting, and refuses waiters when closed', async () => {
    const pool = new WorkerPool(script, {}, 1);
    const abandon = new AbortController();
    const hanging = collect(pool, 'hang', abandon.signal);
    const waiting = collect(pool, 'ok');
    abandon.abort();
    assert.equal(await hanging, '');
    assert.equal(await waiting, '[1]\n');

    const held = new AbortController();
    const holder = collect(pool, 'hang', held.signal);
    const refused = collect(pool, 'ok');
    await pool.close();
    await assert.rejects(
      refused,
      (e: unknown) => e instanceof InsituError && e.code === 'INSITU_DATA_SOURCE_UNAVAILABLE',
    );
    held.abort();
    await holder;
  });
});
