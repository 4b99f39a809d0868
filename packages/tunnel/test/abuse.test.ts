import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { createLogger, waitFor } from '@insitu/core';
import { TUNNEL_PATH, TUNNEL_PROTOCOL, type TunnelClient } from '@insitu/tunnel';
import {
  credentialFor,
  echoHandler,
  startAgent,
  startPlatform,
  text,
  waitRoutable,
  type TestPlatform,
} from './helpers.js';

/** Log lines of the platform, to check that each refusal is logged with a code. */
const lines: Array<{ code?: string; msg?: string }> = [];
const logger = createLogger({
  level: 'info',
  destination: new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n'))
        if (line) lines.push(JSON.parse(line) as { code?: string; msg?: string });
      done();
    },
  }),
});

function rawUpgrade(port: number, request: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(request));
    let answer = '';
    socket.on('data', (chunk) => {
      answer += chunk.toString('latin1');
    });
    socket.on('close', () => resolve(answer));
    socket.on('error', () => resolve(answer));
    socket.setTimeout(5000, () => socket.destroy());
  });
}

describe('tunnel: bad upgrades, bad credentials, garbage and protocol abuse', () => {
  let platform: TestPlatform | undefined;
  let good: TunnelClient | undefined;
  after(async () => {
    await good?.close(200);
    await platform?.close();
  });

  async function stillServes(): Promise<void> {
    assert.ok(platform);
    const response = await platform.tunnel.request({ providerId: 'prv_good', method: 'GET', path: '/still' });
    assert.equal(JSON.parse(await text(response)).agent, 'good');
  }

  it('refuses malformed upgrades, missing and wrong credentials with a status and a code', async () => {
    platform = await startPlatform({ logger });
    good = await startAgent([platform.url], echoHandler('good'), { providerId: 'prv_good', sessions: 1 });
    await waitRoutable(platform.tunnel, 1, 'prv_good');
    const { port } = platform;
    const cases: Array<[string, RegExp, string]> = [
      [
        `POST ${TUNNEL_PATH} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: ${TUNNEL_PROTOCOL}\r\n\r\n`,
        /^HTTP\/1.1 400/,
        'INSITU_TUNNEL_BAD_UPGRADE',
      ],
      [
        `GET ${TUNNEL_PATH} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`,
        /^HTTP\/1.1 400/,
        'INSITU_TUNNEL_BAD_UPGRADE',
      ],
      [
        `GET ${TUNNEL_PATH} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: ${TUNNEL_PROTOCOL}\r\n\r\n`,
        /^HTTP\/1.1 401/,
        'INSITU_UNAUTHENTICATED',
      ],
      [
        `GET ${TUNNEL_PATH} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: ${TUNNEL_PROTOCOL}\r\nAuthorization: Bearer isu_agt_wrong\r\n\r\n`,
        /^HTTP\/1.1 401/,
        'INSITU_UNAUTHENTICATED',
      ],
    ];
    for (const [request, status, code] of cases) {
      const answer = await rawUpgrade(port, request);
      assert.match(answer, status);
      assert.ok(answer.includes(`"code":"${code}"`), answer);
    }
    assert.ok(lines.filter((l) => l.code === 'INSITU_TUNNEL_BAD_UPGRADE').length >= 2);
    assert.ok(lines.filter((l) => l.code === 'INSITU_UNAUTHENTICATED').length >= 2);
    // Garbage instead of HTTP: the HTTP server answers 400 and closes; nothing else moves.
    const garbage = await rawUpgrade(port, '\x16\x03\x01garbage\x00\xff\r\n\r\n');
    assert.match(garbage, /^HTTP\/1.1 400/);
    await stillServes();
    assert.equal(platform.tunnel.sessions().length, 1);
  });

  it('refuses plain text when the platform requires TLS', async () => {
    const strict = await startPlatform({ allowPlainText: () => false, logger });
    try {
      const answer = await rawUpgrade(
        strict.port,
        `GET ${TUNNEL_PATH} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: ${TUNNEL_PROTOCOL}\r\nAuthorization: Bearer ${credentialFor('agt_plain')}\r\n\r\n`,
      );
      assert.match(answer, /^HTTP\/1.1 403/);
      assert.ok(answer.includes('INSITU_TUNNEL_TLS_REQUIRED'));
    } finally {
      await strict.close();
    }
  });

  it('closes a session that sends garbage after the upgrade, and only that one', async () => {
    assert.ok(platform);
    const credential = credentialFor('agt_garbage', 'prv_garbage');
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const request = http.request({
        host: '127.0.0.1',
        port: platform?.port,
        path: TUNNEL_PATH,
        headers: { connection: 'Upgrade', upgrade: TUNNEL_PROTOCOL, authorization: `Bearer ${credential}` },
      });
      request.on('upgrade', (_res, s) => resolve(s));
      request.on('error', reject);
      request.end();
    });
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.on('error', () => undefined);
    socket.resume();
    socket.write(Buffer.alloc(4096, 0xab));
    await closed;
    await waitFor(
      () =>
        lines.some(
          (l) => l.code === 'INSITU_TUNNEL_PROTOCOL' || (l.msg === 'closing agent session' && l.code !== undefined),
        ),
      { what: 'the closed session logged with a code' },
    );
    await stillServes();
  });

  it('closes a session whose control frames break the schema, logged INSITU_TUNNEL_BAD_FRAME', async () => {
    assert.ok(platform);
    const credential = credentialFor('agt_badframe', 'prv_badframe');
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const request = http.request({
        host: '127.0.0.1',
        port: platform?.port,
        path: TUNNEL_PATH,
        headers: { connection: 'Upgrade', upgrade: TUNNEL_PROTOCOL, authorization: `Bearer ${credential}` },
      });
      request.on('upgrade', (_res, s, head) => {
        if (head.length > 0) s.unshift(head);
        resolve(s);
      });
      request.on('error', reject);
      request.end();
    });
    // A hand-made agent that answers the control stream with a frame of the wrong shape.
    const server = http2.createServer((_req, res) => {
      res.writeHead(200);
      res.write('{"type":"hello","agentVersion":"x","services":[{"key":"bad key with spaces"}]}\n');
    });
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.on('error', () => undefined);
    server.emit('connection', socket);
    await closed;
    await waitFor(() => lines.some((l) => l.code === 'INSITU_TUNNEL_BAD_FRAME'), {
      what: 'the bad frame logged with its code',
    });
    assert.equal(platform.tunnel.sessions().filter((s) => s.agentId === 'agt_badframe').length, 0);
    server.close();
    await stillServes();
  });
});
