// The Python SDK's serve() reads request bodies framed either way: by content-length and
// chunked (with chunk extensions and trailers), and answers 400 to a malformed framing.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { makeTempDir, removeDir } from '@insitu/test-helpers';

const PYTHON_DIR = fileURLToPath(new URL('../../python', import.meta.url));
const APP = `
import sys, insitu
insitu.serve({"POST /echo": lambda r: {"length": len(r.body()), "text": r.body().decode("utf-8")}}, socket_path=sys.argv[1])
`;

/** Send raw HTTP/1.1 bytes; the whole answer as text. */
function raw(socketPath: string, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    let answer = '';
    socket.on('data', (c: Buffer) => {
      answer += c.toString();
      if (/\r\n\r\n/.test(answer)) {
        const length = Number(/content-length: (\d+)/i.exec(answer)?.[1] ?? -1);
        if (length >= 0 && Buffer.byteLength(answer.split('\r\n\r\n').slice(1).join('\r\n\r\n')) >= length)
          socket.end();
      }
    });
    socket.on('end', () => resolve(answer));
    socket.on('close', () => resolve(answer));
    socket.on('error', reject);
    socket.write(text);
  });
}

describe('python serve() request bodies', () => {
  let dir = '';
  let child: ChildProcess | undefined;
  let socketPath = '';

  before(async () => {
    dir = await makeTempDir('insitu-sdk-py-');
    socketPath = join(dir, 'app.sock');
    child = spawn('python3', ['-c', APP, socketPath], {
      env: { ...process.env, PYTHONPATH: PYTHON_DIR },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    // Wait for the socket to appear, with a deadline (the SDK package does not depend on core's waitFor).
    const deadline = Date.now() + 20_000;
    while (!existsSync(socketPath)) {
      if (Date.now() > deadline) throw new Error('the python app did not listen within 20 s');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  });
  after(async () => {
    child?.kill();
    await removeDir(dir);
  });

  it('reads a body by its content-length', async () => {
    const answer = await raw(socketPath, 'POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\nhello');
    assert.match(answer, /^HTTP\/1\.[01] 200/);
    assert.match(answer, /\{"length": 5, "text": "hello"\}/);
  });

  it('reads a chunked body, with extensions and a trailer', async () => {
    const answer = await raw(
      socketPath,
      'POST /echo HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nx-sum: 1\r\n\r\n',
    );
    assert.match(answer, /^HTTP\/1\.[01] 200/);
    assert.match(answer, /\{"length": 12, "text": "hello, world"\}/);
  });

  it('answers 400 to a malformed chunked body', async () => {
    const answer = await raw(
      socketPath,
      'POST /echo HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n',
    );
    assert.match(answer, /^HTTP\/1\.[01] 400/);
  });
});
