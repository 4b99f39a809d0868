// A provider agent in a process of its own, for tests that kill it: it deploys the probe
// app (with the marker from INSITU_TEST_MARKER as its argument, so the test can find every
// process of the instance) and prints `spawned` when an instance process exists and
// `running` when the instance is ready.
import { join } from 'node:path';
import { createLogger } from '@insitu/core';
import { Agent, bundleDigest, parseAgentConfig } from '../src/index.js';
import { writeProbeBundle } from './probe-app.js';

const dir = process.argv[2];
const marker = process.env.INSITU_TEST_MARKER;
if (!dir || !marker) throw new Error('usage: agent-child.js DIR (with INSITU_TEST_MARKER set)');
const bundle = writeProbeBundle(join(dir, `probe-${marker}`), { datasets: [], args: [marker] });
const agent = await Agent.create({
  config: parseAgentConfig({ sources: [] }, { what: 'test config', baseDir: dir }),
  dataDir: join(dir, 'agent'),
  logger: createLogger({ name: 'agent-child', level: 'silent' }),
  provider: '*',
});
let spawned = false;
let running = false;
agent.on('status', (status) => {
  const deployment = status.deployments[0];
  if (!spawned && deployment?.instances.some((i) => i.pid !== undefined)) {
    spawned = true;
    process.stdout.write('spawned\n');
  }
  if (!running && deployment?.state === 'running') {
    running = true;
    process.stdout.write('running\n');
  }
});
await agent.applyDesired([
  { id: 'probe', app: 'probe', version: '1.0.0', digest: await bundleDigest(bundle), replicas: 1, bundle },
]);
