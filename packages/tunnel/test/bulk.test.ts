import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { TunnelClient } from '@insitu/tunnel';
import { startAgent, startPlatform, waitRoutable, zeroStream, type TestPlatform } from './helpers.js';

const GIB = 1024 * 1024 * 1024;

/** Sample the resident set size while `work` runs; resolves with the peak growth. */
async function peakGrowth(work: () => Promise<void>): Promise<number> {
  global.gc?.();
  const base = process.memoryUsage().rss;
  let peak = base;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 50);
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  return Math.max(peak, process.memoryUsage().rss) - base;
}

describe('tunnel: 1 GB through one session each way with flat memory', () => {
  let platform: TestPlatform | undefined;
  let agent: TunnelClient | undefined;
  after(async () => {
    await agent?.close(200);
    await platform?.close();
  });

  it('streams 1 GB from the platform to the agent and 1 GB back, memory bounded by the windows', async () => {
    platform = await startPlatform();
    agent = await startAgent(
      [platform.url],
      (req, res) => {
        if (req.url === '/upload') {
          let received = 0;
          req.on('data', (chunk: Buffer) => {
            received += chunk.length;
          });
          req.on('end', () => res.end(String(received)));
          return;
        }
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        zeroStream(GIB).pipe(res);
      },
      { providerId: 'prv_bulk', sessions: 1 },
    );
    await waitRoutable(platform.tunnel, 1, 'prv_bulk');
    const tunnel = platform.tunnel;

    let uploaded = '';
    const up = await peakGrowth(async () => {
      const response = await tunnel.request({
        providerId: 'prv_bulk',
        method: 'POST',
        path: '/upload',
        body: zeroStream(GIB),
        deadlineMs: 300_000,
      });
      for await (const chunk of response.body) uploaded += String(chunk);
    });
    assert.equal(uploaded, String(GIB));

    let downloaded = 0;
    const down = await peakGrowth(async () => {
      const response = await tunnel.request({
        providerId: 'prv_bulk',
        method: 'GET',
        path: '/download',
        deadlineMs: 300_000,
      });
      for await (const chunk of response.body) downloaded += (chunk as Buffer).length;
    });
    assert.equal(downloaded, GIB);
    const limit = 150 * 1024 * 1024;
    assert.ok(up < limit, `upload grew memory by ${Math.round(up / 1048576)} MiB`);
    assert.ok(down < limit, `download grew memory by ${Math.round(down / 1048576)} MiB`);
  });
});
