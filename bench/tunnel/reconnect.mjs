#!/usr/bin/env node
// bench/tunnel/reconnect — how soon an agent is back on a platform node that was down 8 s (a restart):
// time from the node listening again to the agent's session, production back-off (base 250 ms, cap 2 s for the
// first minute of an outage, then 30 s) against the former one (cap 30 s from the start), five trials each.
// Run after `npm run build`:  node bench/tunnel/reconnect.mjs
import { startPlatform, startAgent } from '../../packages/tunnel/dist/test/helpers.js';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function trial(backoff, downMs) {
  let platform = await startPlatform({ timings: { pingIntervalMs: 10000, pingTimeoutMs: 5000 } });
  const port = platform.port;
  const agent = await startAgent([platform.url], (req, res) => res.end('ok'), {
    backoff,
    sessions: 1,
    waitSessions: 1,
    pingIntervalMs: 10000,
    pingTimeoutMs: 5000,
  });
  await platform.close();
  await sleep(downMs);
  platform = await startPlatform({ port, timings: { pingIntervalMs: 10000, pingTimeoutMs: 5000 } });
  const t0 = Date.now();
  while (platform.tunnel.sessions().length === 0) await sleep(10);
  const took = Date.now() - t0;
  await agent.close(0);
  await platform.close();
  return took;
}
const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
for (const [label, backoff] of [
  ['fast phase (now)', {}],
  ['before (cap 30 s)', { fastMaxMs: 30000, fastForMs: 0 }],
]) {
  const xs = [];
  for (let i = 0; i < 5; i++) xs.push(await trial(backoff, 8000));
  console.log(`${label}: platform down 8 s, session back after it listens: median ${med(xs)} ms (${xs.join(', ')})`);
}
process.exit(0);
