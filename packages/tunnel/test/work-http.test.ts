import assert from 'node:assert/strict';
import net, { type AddressInfo, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { InsituError, waitFor } from '@insitu/core';
import { createHttpProxyHandler, type TunnelClient } from '@insitu/tunnel';
import { AnswerParser, encodeRequestHead, MAX_ANSWER_HEAD_BYTES, type AnswerHead } from '../src/work-http.js';
import { readAll, startAgent, startPlatform, waitRoutable, type TestPlatform } from './helpers.js';

/** Feed `input` to a fresh parser in pieces of `step` bytes; what it produced, or the error it threw. */
function parse(
  input: string | Buffer,
  { step = Infinity, head = false, end = false } = {},
): { heads: AnswerHead[]; body: string; complete: boolean | undefined; error: unknown; parser: AnswerParser } {
  const heads: AnswerHead[] = [];
  const chunks: Buffer[] = [];
  let complete: boolean | undefined;
  const parser = new AnswerParser(
    {
      onHead: (h) => heads.push(h),
      onBody: (chunk) => chunks.push(Buffer.from(chunk)),
      onComplete: (reusable) => {
        assert.equal(complete, undefined, 'completed twice');
        complete = reusable;
      },
    },
    head,
  );
  const bytes = Buffer.isBuffer(input) ? input : Buffer.from(input, 'latin1');
  let error: unknown;
  try {
    for (let at = 0; at < bytes.length; at += Math.min(step, bytes.length))
      parser.execute(bytes.subarray(at, Math.min(bytes.length, at + step)));
    if (end) parser.end();
  } catch (caught) {
    error = caught;
  }
  return { heads, body: Buffer.concat(chunks).toString('latin1'), complete, error, parser };
}

function assertMalformed(error: unknown, what: RegExp): void {
  assert.ok(error instanceof InsituError, `an InsituError, not ${String(error)}`);
  assert.equal(error.code, 'INSITU_TUNNEL_UPSTREAM_FAILED');
  assert.match(error.message, what);
}

describe('work connections: the answer parser', () => {
  it('reads a content-length answer fed one byte at a time, and keeps the connection', () => {
    const answer = 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 11\r\nX-A:  a \r\n\r\nhello world';
    for (const step of [1, 2, 7, Infinity]) {
      const r = parse(answer, { step });
      assert.equal(r.error, undefined);
      assert.equal(r.heads.length, 1);
      assert.equal(r.heads[0]?.status, 200);
      assert.deepEqual(r.heads[0]?.headers, { 'content-type': 'text/plain', 'content-length': '11', 'x-a': 'a' });
      assert.equal(r.body, 'hello world');
      assert.equal(r.complete, true);
    }
  });

  it('reads a chunked answer with extensions and trailers, byte by byte', () => {
    const answer =
      'HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n5;name=x\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Sum: 1\r\n\r\n';
    for (const step of [1, 3, Infinity]) {
      const r = parse(answer, { step });
      assert.equal(r.error, undefined);
      assert.equal(r.heads[0]?.status, 201);
      assert.equal(r.body, 'hello 0123456789');
      assert.equal(r.complete, true);
    }
  });

  it('skips informational answers, and knows answers without a body', () => {
    const r = parse('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n');
    assert.deepEqual(
      r.heads.map((h) => h.status),
      [204],
    );
    assert.equal(r.complete, true);
    const head = parse('HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n', { head: true });
    assert.equal(head.complete, true, 'a HEAD answer has no body whatever its content-length');
    const notModified = parse('HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n');
    assert.equal(notModified.complete, true);
  });

  it('reads an answer framed by the close to its end, and never reuses that connection', () => {
    const r = parse('HTTP/1.1 200 OK\r\n\r\nall of it', { end: true });
    assert.equal(r.body, 'all of it');
    assert.equal(r.complete, false);
  });

  it('keeps a connection only when the answer allows it', () => {
    assert.equal(parse('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n').complete, false);
    assert.equal(parse('HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n').complete, false);
    assert.equal(parse('HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n').complete, true);
    // Bytes after a complete answer, unasked for: not reused.
    assert.equal(parse('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxHTTP/1.1 200 OK\r\n').complete, false);
    assert.equal(parse('HTTP/1.1 204 No Content\r\n\r\nextra').complete, false);
    const hint = parse('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5, max=100\r\nContent-Length: 0\r\n\r\n');
    assert.equal(hint.parser.keepAliveMs, 5000);
  });

  it('combines repeated headers as Node does: set-cookie a list, single-valued ones the first, others joined', () => {
    const r = parse(
      'HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\nContent-Type: a\r\nContent-Type: b\r\nVary: x\r\nVary: y\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n',
    );
    assert.equal(r.error, undefined);
    assert.deepEqual(r.heads[0]?.headers, {
      'set-cookie': ['a=1', 'b=2'],
      'content-type': 'a',
      vary: 'x, y',
      'content-length': '0',
    });
  });

  it('refuses hostile answers with a coded error, never a guess', () => {
    const cases: Array<[string, string | Buffer, RegExp]> = [
      ['garbage', 'garbage\r\n\r\n', /bad status line/],
      ['HTTP/2', 'HTTP/2 200 OK\r\n\r\n', /bad status line/],
      ['a two-digit status', 'HTTP/1.1 20 OK\r\n\r\n', /bad status line/],
      ['a status glued to its reason', 'HTTP/1.1 200OK\r\n\r\n', /bad status line/],
      ['a CR in the reason', 'HTTP/1.1 200 O\rK\r\n\r\n', /bad status line/],
      ['101 not asked for', 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n', /101/],
      ['a header without a colon', 'HTTP/1.1 200 OK\r\nNoColon\r\n\r\n', /without a name/],
      ['a space before the colon', 'HTTP/1.1 200 OK\r\nX-A : 1\r\n\r\n', /bad header name/],
      ['an obsolete line folding', 'HTTP/1.1 200 OK\r\nX-A: 1\r\n  folded: x\r\n\r\n', /bad header name/],
      ['a NUL in a value', 'HTTP/1.1 200 OK\r\nX-A: a\u0000b\r\n\r\n', /bad value/],
      ['a bare LF in a value', 'HTTP/1.1 200 OK\r\nX-A: a\nContent-Length: 0\r\n\r\n', /bad value/],
      [
        'both content-length and chunked',
        'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
        /both content-length and transfer-encoding/,
      ],
      [
        'two different content-lengths',
        'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello',
        /two different/,
      ],
      ['a negative content-length', 'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n', /bad content-length/],
      ['a content-length list', 'HTTP/1.1 200 OK\r\nContent-Length: 1, 1\r\n\r\n', /bad content-length/],
      ['a hex content-length', 'HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n', /bad content-length/],
      ['a non-hex chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhi\r\n', /chunk size/],
      ['an empty chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n', /chunk size/],
      ['a signed chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n', /chunk size/],
      [
        'a chunk size past 2^48',
        'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000\r\n',
        /chunk size/,
      ],
      [
        'a chunk longer than its size',
        'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n',
        /not followed by CRLF/,
      ],
      [
        'a chunk-size line that never ends',
        Buffer.concat([
          Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;'),
          Buffer.alloc(5000, 'a'),
        ]),
        /too long/,
      ],
      [
        'a head that never ends',
        Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nX-A: '), Buffer.alloc(MAX_ANSWER_HEAD_BYTES + 10, 'a')]),
        /too large/,
      ],
      [
        'a complete head over the limit',
        `HTTP/1.1 200 OK\r\nX-A: ${'a'.repeat(MAX_ANSWER_HEAD_BYTES)}\r\nContent-Length: 0\r\n\r\n`,
        /too large/,
      ],
      [
        'trailers that never end',
        Buffer.concat([
          Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n'),
          Buffer.from(`X-T: ${'t'.repeat(100)}\r\n`.repeat(200)),
        ]),
        /trailers are too long/,
      ],
    ];
    for (const [name, input, what] of cases) {
      for (const step of [1, 1024, Infinity]) {
        const r = parse(input, { step });
        assert.ok(r.error !== undefined, `${name} (in pieces of ${step}) was accepted`);
        assertMalformed(r.error, what);
        assert.notEqual(r.complete, true, `${name}: completed`);
      }
    }
  });

  it('knows an answer cut short by the close from a complete one', () => {
    const cut = parse('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc');
    assert.equal(cut.parser.end(), false);
    assert.equal(cut.complete, undefined);
    const cutChunked = parse('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab');
    assert.equal(cutChunked.parser.end(), false);
    const noHead = parse('HTTP/1.1 200 OK\r\nContent-Le');
    assert.equal(noHead.parser.end(), false);
    assert.equal(noHead.heads.length, 0);
  });
});

describe('work connections: the request head', () => {
  it('writes one head with the framing the body needs', () => {
    const get = encodeRequestHead('GET', '/a?b=1', { host: 'localhost', accept: ['a', 'b'] }, 'none');
    assert.equal(get.head, 'GET /a?b=1 HTTP/1.1\r\nhost: localhost\r\naccept: a\r\naccept: b\r\n\r\n');
    assert.equal(get.framing, 'none');
    const post = encodeRequestHead('POST', '/', { host: 'localhost' }, 'none');
    assert.match(post.head, /content-length: 0\r\n\r\n$/, 'an empty POST says so, as Node did');
    const stream = encodeRequestHead('PUT', '/', { host: 'localhost' }, 'stream');
    assert.equal(stream.framing, 'chunked');
    assert.match(stream.head, /transfer-encoding: chunked\r\n\r\n$/);
    const sized = encodeRequestHead('PUT', '/', { host: 'localhost', 'content-length': '5' }, 'stream');
    assert.equal(sized.framing, 'length');
    assert.doesNotMatch(sized.head, /transfer-encoding/);
  });

  it('refuses what would break the message (header or request splitting)', () => {
    const bad: Array<[string, string, Record<string, string | string[]>]> = [
      ['GET /', '/', {}],
      ['GET', '/a b', {}],
      ['GET', '/a\r\nX: y', {}],
      ['GET', '', {}],
      ['GET', '/', { 'x-a': 'v\r\nInjected: 1' }],
      ['GET', '/', { 'x-a': ['ok', 'v\nb'] }],
      ['GET', '/', { 'bad name': 'v' }],
      ['GET', '/', { 'x\r\ny': 'v' }],
    ];
    for (const [method, path, headers] of bad) {
      assert.throws(
        () => encodeRequestHead(method, path, headers, 'none'),
        (error: unknown) => error instanceof InsituError && error.code === 'INSITU_VALIDATION',
        `${JSON.stringify([method, path, headers])} was accepted`,
      );
    }
  });
});

/**
 * An application that answers by path with what a broken or hostile server could send,
 * over real sockets behind a real agent and work connections.
 */
async function startHostileApp(): Promise<{ port: number; hosts: string[]; close(): Promise<void> }> {
  const hosts: string[] = [];
  const sockets = new Set<Socket>();
  const answers: Record<string, (socket: Socket) => void> = {
    '/ok': (s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'),
    '/hint': (s) => s.write('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=2\r\nContent-Length: 2\r\n\r\nok'),
    '/bad-status': (s) => s.write('HTTP/1.1 2000 Nope\r\nContent-Length: 0\r\n\r\n'),
    '/both': (s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'),
    '/huge-head': (s) => s.write(`HTTP/1.1 200 OK\r\nX-Big: ${'b'.repeat(MAX_ANSWER_HEAD_BYTES + 100)}\r\n\r\n`),
    '/bad-chunk': (s) => s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nxyz\r\n'),
    '/early-close': (s) => s.end('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nonly this'),
    '/close-framed': (s) => s.end('HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nto the end'),
  };
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let pending = '';
    socket.on('data', (chunk: Buffer) => {
      pending += chunk.toString('latin1');
      let end: number;
      while ((end = pending.indexOf('\r\n\r\n')) >= 0) {
        const head = pending.slice(0, end);
        pending = pending.slice(end + 4);
        hosts.push(/\r\nhost: ([^\r]*)/i.exec(head)?.[1] ?? '');
        const path = head.split(' ')[1] ?? '';
        (answers[path] ?? answers['/ok'])?.(socket);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    hosts,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('work connections: hostile answers through a real agent', () => {
  let platform: TestPlatform;
  let agent: TunnelClient;
  let app: Awaited<ReturnType<typeof startHostileApp>>;
  let proxy: ReturnType<typeof createHttpProxyHandler>;

  before(async () => {
    app = await startHostileApp();
    platform = await startPlatform({ timings: { workSpares: 4, workIdleMs: 60_000 } });
    proxy = createHttpProxyHandler({ host: '127.0.0.1', port: app.port });
    agent = await startAgent([platform.url], proxy, { agentId: 'agthostile', sessions: 1, workConnections: 8 });
    await waitRoutable(platform.tunnel, 1);
    const [candidate] = platform.tunnel.table.candidates('prv_test', 'app@1.0.0');
    await waitFor(() => (candidate?.session.work?.spares ?? 0) >= 4, { timeoutMs: 10_000, what: 'spares' });
  });

  after(async () => {
    await agent?.close(200);
    await platform?.close();
    proxy?.close();
    await app?.close();
  });

  // Not idempotent: a failure is not retried on another session (there is none) or over HTTP/2.
  const call = (path: string) =>
    platform.tunnel.request({ providerId: 'prv_test', service: 'app@1.0.0', method: 'GET', path, idempotent: false });

  async function ok(): Promise<void> {
    const res = await call('/ok');
    assert.equal(res.status, 200);
    assert.equal((await readAll(res.body)).toString(), 'ok');
  }

  it('a malformed head fails the request with 502 INSITU_TUNNEL_UPSTREAM_FAILED, and the next request is served', async () => {
    await ok();
    const served = app.hosts.length;
    for (const path of ['/bad-status', '/both', '/huge-head']) {
      await assert.rejects(call(path), (error: unknown) => {
        assert.ok(error instanceof InsituError, String(error));
        assert.equal(error.code, 'INSITU_TUNNEL_UPSTREAM_FAILED');
        assert.match(error.message, /malformed/);
        return true;
      });
      await ok();
    }
    assert.deepEqual(app.hosts.slice(served), Array(6).fill('localhost'), 'all over work connections');
  });

  it('a body broken after its head (bad chunk, early close) reaches the caller as an error, not an end', async () => {
    for (const [path, what] of [
      ['/bad-chunk', /malformed: a bad chunk size/],
      ['/early-close', /before the answer was complete/],
    ] as const) {
      const res = await call(path);
      assert.equal(res.status, 200);
      await assert.rejects(readAll(res.body), (error: unknown) => {
        assert.ok(error instanceof InsituError, String(error));
        assert.equal(error.code, 'INSITU_TUNNEL_UPSTREAM_FAILED');
        assert.match(error.message, what);
        return true;
      });
      await ok();
    }
  });

  it("closes an idle connection after the application's Keep-Alive hint less a second, others after workIdleMs", async () => {
    const work = platform.tunnel.table.candidates('prv_test', 'app@1.0.0')[0]?.session.work;
    assert.ok(work);
    // Two at once: two connections, one told `timeout=2` (kept 1 s), one not (kept 60 s).
    const [hinted, plain] = await Promise.all([call('/hint'), call('/ok')]);
    await Promise.all([readAll(hinted.body), readAll(plain.body)]);
    await waitFor(() => work.idle('app@1.0.0') >= 2, { what: 'both connections idle' });
    const idleBefore = work.idle('app@1.0.0');
    await waitFor(() => work.idle('app@1.0.0') === idleBefore - 1, {
      timeoutMs: 10_000,
      what: 'the hinted connection closed',
    });
    await ok();
  });

  it('an answer framed by the close arrives whole', async () => {
    const res = await call('/close-framed');
    assert.equal(res.status, 200);
    assert.equal((await readAll(res.body)).toString(), 'to the end');
    await ok();
  });
});
