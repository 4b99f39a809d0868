import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { InsituError } from '@insitu/core';
import { RAW_STREAM_HANDLER, type RawStreamCapable, type TunnelClient, type TunnelHandler } from '@insitu/tunnel';
import { startAgent, startPlatform, text, waitRoutable, type TestPlatform } from './helpers.js';

// Regression (3+2 bed): the platform breaks a request stream off with RST_STREAM when its caller
// gives up; on the agent that is an 'error' event on the stream, and a raw stream handler that
// listened only for 'close' (the agent's probe answer, under load past the probe's deadline) made
// it an uncaught exception: both hospital agents died in the steady phase of a run.
describe('tunnel: a request the platform breaks off reaches a raw stream handler without crashing the agent', () => {
  let platform: TestPlatform | undefined;
  let agent: TunnelClient | undefined;
  after(async () => {
    await agent?.close(200);
    await platform?.close();
  });

  it('a deadline passes before the answer: the caller gets a coded timeout, the agent keeps serving', async () => {
    platform = await startPlatform({ nodeId: 'node-raw' });
    const handler = (() => undefined) as unknown as TunnelHandler & RawStreamCapable;
    handler[RAW_STREAM_HANDLER] = (stream, headers) => {
      // No 'error' listener, as the agent's probe answer: only 'close'.
      stream.on('close', () => undefined);
      if (headers[':path'] === '/slow') return;
      stream.respond({ ':status': 200, 'content-type': 'text/plain' });
      stream.end('fine');
    };
    agent = await startAgent([platform.url], handler, { providerId: 'prv_raw' });
    const tunnel = platform.tunnel;
    await waitRoutable(tunnel, 1, 'prv_raw');
    for (let i = 0; i < 3; i++) {
      await assert.rejects(
        tunnel.request({ providerId: 'prv_raw', service: 'app@1.0.0', method: 'GET', path: '/slow', deadlineMs: 200 }),
        (error: unknown) => error instanceof InsituError && error.code === 'INSITU_TUNNEL_TIMEOUT',
      );
    }
    const answer = await tunnel.request({ providerId: 'prv_raw', service: 'app@1.0.0', method: 'GET', path: '/fine' });
    assert.equal(answer.status, 200);
    assert.equal(await text(answer), 'fine');
  });
});
