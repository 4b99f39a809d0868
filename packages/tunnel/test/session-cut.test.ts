import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import type net from 'node:net';
import { after, describe, it } from 'node:test';
import { InsituError } from '@insitu/core';
import { TUNNEL_PATH, TUNNEL_PROTOCOL } from '@insitu/tunnel';
import { credentialFor, readAll, startPlatform, waitRoutable, type TestPlatform } from './helpers.js';

/** Dial the platform as an agent would and hand the upgraded socket to an HTTP/2 server. */
async function handMadeAgent(
  platform: TestPlatform,
  providerId: string,
  onRequest: (socket: net.Socket, stream: http2.ServerHttp2Stream) => void,
): Promise<net.Socket> {
  const credential = credentialFor(`agt_${providerId}`, providerId);
  const socket = await new Promise<net.Socket>((resolve, reject) => {
    const request = http.request({
      host: '127.0.0.1',
      port: platform.port,
      path: TUNNEL_PATH,
      headers: { connection: 'Upgrade', upgrade: TUNNEL_PROTOCOL, authorization: `Bearer ${credential}` },
    });
    request.on('upgrade', (_res, s: net.Socket, head: Buffer) => {
      if (head.length > 0) s.unshift(head);
      resolve(s);
    });
    request.on('error', reject);
    request.end();
  });
  socket.on('error', () => undefined);
  const server = http2.createServer();
  server.on('stream', (stream, headers) => {
    stream.on('error', () => undefined);
    if (headers[':path'] === '/_insitu/control') {
      stream.respond({ ':status': 200 });
      stream.write(`${JSON.stringify({ type: 'hello', agentVersion: 'test', services: [{ key: 'app@1.0.0' }] })}\n`);
      return;
    }
    onRequest(socket, stream);
  });
  server.on('session', (session) => session.on('error', () => undefined));
  server.emit('connection', socket);
  return socket;
}

describe('tunnel: a session cut under a response in flight', () => {
  let platform: TestPlatform | undefined;
  after(async () => {
    await platform?.close();
  });

  // Regression: "runs 1,000 concurrent streams over one session" once failed under heavy
  // load with a raw `read ECONNRESET`: an agent that gives up on the session (PINGs
  // unanswered in time) resets the connection while response bodies are still being read,
  // and the socket's error reached the body stream as it was.
  it('fails a response body cut by a connection reset with INSITU_TUNNEL_UPSTREAM_FAILED, not a raw socket error', async () => {
    platform = await startPlatform();
    const socket = await handMadeAgent(platform, 'prv_reset', (_socket, stream) => {
      stream.respond({ ':status': 200, 'content-type': 'text/plain' });
      stream.write('the first half of the answer');
    });
    await waitRoutable(platform.tunnel, 1, 'prv_reset');
    const response = await platform.tunnel.request({ providerId: 'prv_reset', method: 'GET', path: '/cut' });
    assert.equal(response.status, 200);
    // The agent resets its connection (RST) once the platform holds the response headers.
    socket.resetAndDestroy();
    await assert.rejects(readAll(response.body), (error: unknown) => {
      assert.ok(error instanceof InsituError, `a coded error, not ${String(error)}`);
      assert.equal(error.code, 'INSITU_TUNNEL_UPSTREAM_FAILED');
      assert.match(error.message, /ended before the answer was complete: its connection failed: .*ECONNRESET/);
      return true;
    });
  });

  it('fails a response body cut by the platform closing the session with INSITU_TUNNEL_UPSTREAM_FAILED and the reason', async () => {
    assert.ok(platform);
    const tunnel = platform.tunnel;
    await handMadeAgent(platform, 'prv_revoked', (_socket, stream) => {
      stream.respond({ ':status': 200, 'content-type': 'text/plain' });
      stream.write('the first half of the answer');
    });
    await waitRoutable(tunnel, 1, 'prv_revoked');
    const response = await tunnel.request({ providerId: 'prv_revoked', method: 'GET', path: '/cut' });
    assert.equal(tunnel.closeAgent('agt_prv_revoked'), 1);
    await assert.rejects(readAll(response.body), (error: unknown) => {
      assert.ok(error instanceof InsituError, `a coded error, not ${String(error)}`);
      assert.equal(error.code, 'INSITU_TUNNEL_UPSTREAM_FAILED');
      assert.match(error.message, /INSITU_UNAUTHENTICATED/);
      return true;
    });
  });
});
