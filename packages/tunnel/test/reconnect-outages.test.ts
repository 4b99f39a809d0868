import { after, describe, it } from 'node:test';
import { waitFor } from '@insitu/core';
import type { TunnelClient } from '@insitu/tunnel';
import { startAgent, startPlatform, type TestPlatform } from './helpers.js';

/*
 * Issue 14: after a platform restart, service calls failed for ~17 s. A node restarted again
 * after its agents were back (a second restart within the minute) found them in the slow
 * phase of the back-off: the outage was counted from the first restart, because only a
 * session of 30 s ended it. A session that lived `outageEndsAfterMs` now ends the outage.
 */
describe('agent reconnect across repeated restarts', () => {
  const open: Array<TestPlatform | TunnelClient> = [];
  after(async () => {
    for (const thing of open.reverse()) await thing.close().catch(() => undefined);
  });

  it('each restart gets its own fast phase once the agent was back', async () => {
    // Slow phase: delays drawn up to ≥ 60 s; fast phase (the first 1.5 s of an outage): under 50 ms. Five
    // outages of 200 ms with sessions of 150 ms between them: more than 1.5 s counted from the first one.
    const backoff = {
      baseMs: 60_000,
      maxMs: 600_000,
      stableAfterMs: 600_000,
      fastMaxMs: 50,
      fastForMs: 1500,
      outageEndsAfterMs: 100,
    };
    let platform = await startPlatform();
    open.push(platform);
    const port = platform.port;
    const agent = await startAgent([platform.url], (_req, res) => res.end('ok'), {
      backoff,
      sessions: 1,
      waitSessions: 1,
    });
    open.push(agent);
    for (let restart = 1; restart <= 5; restart++) {
      // The session lived past outageEndsAfterMs before the platform goes away.
      await new Promise((resolve) => setTimeout(resolve, 150));
      await platform.close();
      // Down 200 ms (shorter than a fast phase): the agent's dials fail meanwhile.
      await new Promise((resolve) => setTimeout(resolve, 200));
      platform = await startPlatform({ port });
      open.push(platform);
      const back = platform;
      await waitFor(() => back.tunnel.sessions().length === 1, {
        timeoutMs: 10_000,
        what: `the agent back after restart ${restart}`,
      });
    }
  });
});
