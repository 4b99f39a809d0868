import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '@insitu/core';
import { readDataset } from '@insitu/sdk';
import { makeTempDir, rawHttp, removeDir, type RawHttpResponse } from '@insitu/test-helpers';
import { DataApiServer, DatasetRegistry, openSource, parseAgentConfig } from '../src/index.js';
import { salesRows, writeCsv } from './fixtures.js';

/*
 * Issue 16, item 8: `POST /v1/datasets/%E0%A4%A/query` on the data API answered 500
 * INSITU_INTERNAL (decodeURIComponent threw). An application can send anything on its
 * socket: each such request is a coded 4xx with a request id, and the API keeps serving.
 */
const logger = createLogger({ name: 'test', level: 'silent' });

describe('data API: malformed paths are coded 4xx, never 500', () => {
  let dir = '';
  let registry: DatasetRegistry;
  let api: DataApiServer;
  let socketPath = '';

  const send = (head: string | Buffer): Promise<RawHttpResponse> => rawHttp({ path: socketPath }, head);

  function assertCoded(response: RawHttpResponse, status: number, code: string): void {
    assert.equal(response.status, status, response.body);
    const { error } = JSON.parse(response.body) as { error: { code: string; message: string; requestId: string } };
    assert.equal(error.code, code);
    assert.match(error.requestId, /^req_[0-9a-z]{26}$/);
    assert.equal(response.headers['insitu-request-id'], error.requestId);
    assert.ok(error.message.length < 300, 'the message does not repeat a long path');
  }

  before(async () => {
    dir = await makeTempDir('insitu-agent-paths-');
    writeCsv(join(dir, 'sales.csv'), salesRows(5));
    const config = parseAgentConfig(
      { sources: [{ name: 'files', kind: 'csv', files: 'sales.csv' }] },
      { what: 't', baseDir: dir },
    );
    registry = new DatasetRegistry(
      config.sources.map((s) => openSource(s, config.limits)),
      logger,
    );
    await registry.refresh();
    api = new DataApiServer({ registry, declared: new Set(['sales']), limits: config.limits, logger });
    socketPath = join(dir, 'data.sock');
    await api.listen(socketPath);
  });

  after(async () => {
    await api?.close();
    await registry?.close();
    await removeDir(dir);
  });

  it('answers a broken or non-UTF-8 percent-escape with 400 INSITU_BAD_PATH (the reported request)', async () => {
    assertCoded(
      await send('POST /v1/datasets/%E0%A4%A/query HTTP/1.1\r\nHost: data-api\r\nContent-Length: 0'),
      400,
      'INSITU_BAD_PATH',
    );
    assertCoded(
      await send('POST /v1/datasets/%FF/query HTTP/1.1\r\nHost: data-api\r\nContent-Length: 0'),
      400,
      'INSITU_BAD_PATH',
    );
    assertCoded(await send('GET /v1/datasets/%zz HTTP/1.1\r\nHost: data-api'), 400, 'INSITU_BAD_PATH');
  });

  it('answers what the HTTP parser refuses in our shape too', async () => {
    assertCoded(
      await send(
        Buffer.concat([
          Buffer.from('GET /v1/datasets/'),
          Buffer.from([0xff, 0xfe]),
          Buffer.from(' HTTP/1.1\r\nHost: data-api'),
        ]),
      ),
      400,
      'INSITU_BAD_PATH',
    );
    assertCoded(
      await send(`GET /v1/datasets/${'s'.repeat(20_000)} HTTP/1.1\r\nHost: data-api`),
      431,
      'INSITU_HEADERS_TOO_LARGE',
    );
    assertCoded(
      await send(`GET /v1/datasets/${'s'.repeat(5000)} HTTP/1.1\r\nHost: data-api`),
      403,
      'INSITU_DATASET_NOT_DECLARED',
    );
  });

  it('keeps serving declared datasets afterwards', async () => {
    const rows = [];
    for await (const row of readDataset('sales', { socketPath })) rows.push(row);
    assert.equal(rows.length, 5);
  });
});
