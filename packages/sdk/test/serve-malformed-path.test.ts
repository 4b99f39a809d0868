import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Server } from 'node:http';
import { makeTempDir, rawHttp, removeDir } from '@insitu/test-helpers';
import { serve } from '../src/index.js';

/*
 * Issue 16, item 8, inside the application: serve() decoded path parameters with
 * decodeURIComponent in the request callback, so one request with a broken escape threw
 * out of it and ended the application's process. It is a 400 now, and the app lives on.
 */
describe('sdk serve(): a malformed path parameter', () => {
  let dir = '';
  let server: Server;
  let socketPath = '';
  before(async () => {
    dir = await makeTempDir('insitu-sdk-paths-');
    socketPath = join(dir, 'app.sock');
    server = await serve({ 'GET /hello/{name}': ({ params }) => ({ hello: params.name }) }, { socketPath });
  });
  after(async () => {
    server?.close();
    await removeDir(dir);
  });

  it('is answered 400 BAD_PATH, and the application keeps serving', async () => {
    for (const path of ['/hello/%E0%A4%A', '/hello/%FF']) {
      const answer = await rawHttp({ path: socketPath }, `GET ${path} HTTP/1.1\r\nHost: app`);
      assert.equal(answer.status, 400, answer.body);
      assert.equal((JSON.parse(answer.body) as { error: { code: string } }).error.code, 'BAD_PATH');
    }
    const fine = await rawHttp({ path: socketPath }, 'GET /hello/caf%C3%A9 HTTP/1.1\r\nHost: app');
    assert.deepEqual([fine.status, JSON.parse(fine.body)], [200, { hello: 'café' }]);
  });
});
