import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { databaseTargets, rawHttp, type RawHttpResponse } from '@insitu/test-helpers';
import { type Api, type OrgWorld, makeOrg, startApi } from './fixtures.js';

/*
 * Issue 16, item 8: a broken percent-escape answered 500 INSITU_INTERNAL (data API) or
 * Fastify's own body (REST), and a path parameter over 200 characters Fastify's
 * FST_ERR_MAX_PARAM_LENGTH body, without our shape or a request id. Every edge of the
 * platform's port (REST API, gateway, what Node's parser refuses) now answers coded 4xx
 * `{ error: { code, message, requestId } }`, over real sockets.
 */
const sqlite = databaseTargets().find((t) => t.dialect === 'sqlite');

describe('malformed paths get coded 4xx answers on every edge of the platform port', () => {
  let api: Api;
  let acme: OrgWorld;
  let port = 0;

  const send = (path: string | Buffer, headers = 'Host: insitu.test', token?: string): Promise<RawHttpResponse> =>
    rawHttp(
      { port },
      Buffer.concat([
        Buffer.from('GET '),
        Buffer.isBuffer(path) ? path : Buffer.from(path, 'latin1'),
        Buffer.from(` HTTP/1.1\r\n${headers}${token ? `\r\nAuthorization: Bearer ${token}` : ''}`),
      ]),
    );

  /** The answer is ours: the status and code, a request id in the body that the header repeats, a short message. */
  function assertCoded(response: RawHttpResponse, status: number, code: string): void {
    assert.equal(response.status, status, response.body);
    const { error } = JSON.parse(response.body) as { error: { code: string; message: string; requestId: string } };
    assert.equal(error.code, code);
    assert.match(error.requestId, /^req_[0-9a-z]{26}$/);
    assert.equal(response.headers['insitu-request-id'], error.requestId);
    assert.ok(
      error.message.length > 0 && error.message.length < 300,
      `a bounded message: ${error.message.length} characters`,
    );
  }

  before(async () => {
    if (!sqlite) throw new Error('no SQLite target');
    api = await startApi(sqlite);
    acme = await makeOrg(api, 'acme');
    await api.app.listen({ port: 0, host: '127.0.0.1' });
    port = (api.app.server.address() as AddressInfo).port;
  });
  after(async () => api?.close());

  it('a path parameter over 200 characters is 414 INSITU_PATH_TOO_LONG (one of 200 reaches the route)', async () => {
    assertCoded(await send(`/api/v1/orgs/${'a'.repeat(201)}`, undefined, api.adminToken), 414, 'INSITU_PATH_TOO_LONG');
    assertCoded(
      await send(`/api/v1/apps/${'p'.repeat(20)}/versions/${'v'.repeat(300)}`, undefined, acme.tokens.developer),
      414,
      'INSITU_PATH_TOO_LONG',
    );
    // At the limit the route runs, and its own validation answers.
    assertCoded(await send(`/api/v1/orgs/${'a'.repeat(200)}`, undefined, api.adminToken), 400, 'INSITU_VALIDATION');
  });

  it('a broken percent-escape or one that is not UTF-8 is 400 INSITU_BAD_PATH on the REST API and the gateway', async () => {
    for (const path of [
      '/api/v1/orgs/%E0%A4%A',
      '/api/v1/orgs/%FF',
      `/api/v1/providers/${acme.providerId}/datasets/%E0%A4%A`,
      '/api/v1/%zz',
      '/s/%E0%A4%A/query',
      '/s/sales/v1/%FF',
      '/s/sales/items/%C3',
    ]) {
      assertCoded(await send(path, undefined, acme.tokens.agent), 400, 'INSITU_BAD_PATH');
    }
  });

  it('bytes a URL may not hold (not UTF-8, raw) are 400 INSITU_BAD_PATH, not a bare status line', async () => {
    assertCoded(await send(Buffer.from([0x2f, 0x61, 0x70, 0x69, 0x2f, 0xff, 0xfe])), 400, 'INSITU_BAD_PATH');
    assertCoded(
      await send(Buffer.concat([Buffer.from('/s/'), Buffer.from([0xc3, 0x28]), Buffer.from('/x')])),
      400,
      'INSITU_BAD_PATH',
    );
  });

  it('a request line past the 16 KiB limit is 431, and malformed HTTP is 400 INSITU_BAD_REQUEST', async () => {
    assertCoded(await send(`/api/v1/orgs/${'x'.repeat(20_000)}`), 431, 'INSITU_HEADERS_TOO_LARGE');
    assertCoded(await send(`/s/sales/${'x'.repeat(20_000)}`), 431, 'INSITU_HEADERS_TOO_LARGE');
    assertCoded(await send('/healthz', 'Host: insitu.test\r\nthis is not a header'), 400, 'INSITU_BAD_REQUEST');
  });

  it('keeps serving after all of it', async () => {
    const health = await send('/healthz');
    assert.equal(health.status, 200, health.body);
    const service = await send('/s/no-such-service/x');
    assertCoded(service, 404, 'INSITU_SERVICE_NOT_FOUND');
  });
});
