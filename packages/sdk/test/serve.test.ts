import assert from 'node:assert/strict';
import { request } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Server } from 'node:http';
import { makeTempDir, removeDir } from '@insitu/test-helpers';
import { DataApiError, readDataset, respond, serve } from '../src/index.js';

function get(
  socketPath: string,
  method: string,
  path: string,
  body?: string,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('sdk serve()', () => {
  let dir = '';
  let server: Server;
  let socketPath = '';
  before(async () => {
    dir = await makeTempDir('insitu-sdk-');
    socketPath = join(dir, 'app.sock');
    server = await serve(
      {
        'GET /hello/{name}': ({ params, query }) => ({ hello: params.name, loud: query.get('loud') === '1' }),
        'POST /echo': async (req) => respond(201, await req.json(), { 'x-test': 'yes' }),
        'GET /boom': () => {
          throw new Error('secret detail');
        },
      },
      { socketPath },
    );
  });
  after(async () => {
    server?.close();
    await removeDir(dir);
  });

  it('routes with parameters, answers JSON, and lets handlers choose the status', async () => {
    assert.deepEqual(JSON.parse((await get(socketPath, 'GET', '/hello/ana%20b?loud=1')).text), {
      hello: 'ana b',
      loud: true,
    });
    const echoed = await get(socketPath, 'POST', '/echo', '{"a":1}');
    assert.deepEqual([echoed.status, JSON.parse(echoed.text)], [201, { a: 1 }]);
  });

  it('answers the health check, 404 and 405, and hides handler errors', async () => {
    assert.equal((await get(socketPath, 'GET', '/healthz')).status, 200);
    assert.equal((await get(socketPath, 'GET', '/nope')).status, 404);
    assert.equal((await get(socketPath, 'DELETE', '/echo')).status, 405);
    const boom = await get(socketPath, 'GET', '/boom');
    assert.equal(boom.status, 500);
    assert.ok(!boom.text.includes('secret detail'));
  });

  it('readDataset without a data API says so clearly', async () => {
    await assert.rejects(
      readDataset('x', { socketPath: join(dir, 'missing.sock') }).next(),
      (e: unknown) => e instanceof DataApiError && e.code === 'INSITU_DATA_SOURCE_UNAVAILABLE',
    );
  });
});
