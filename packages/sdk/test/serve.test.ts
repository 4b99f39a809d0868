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
): Promise<{ status: number; text: string; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text, headers: res.headers }));
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

  it('frames answers with a content-length, not chunked (one write less per call for every proxy on the way)', async () => {
    for (const [method, path, body] of [
      ['GET', '/hello/zo%C3%A9', undefined],
      ['POST', '/echo', '{"a":"é"}'],
      ['GET', '/nope', undefined],
    ] as const) {
      const answer = await get(socketPath, method, path, body);
      assert.equal(answer.headers['transfer-encoding'], undefined, path);
      assert.equal(answer.headers['content-length'], String(Buffer.byteLength(answer.text)), path);
    }
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
