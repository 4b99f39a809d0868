// (c) of bench/invoke: a bare tunnel client that proxies to the SAME application instance
// the gateway path reaches (its Unix socket), so (b) - (c) is the gateway's own work.
import { TunnelClient, createHttpProxyHandler } from '@insitu/tunnel';

const [platformUrl, socketPath] = process.argv.slice(2);
const client = new TunnelClient({
  platforms: [platformUrl],
  credential: 'isu_agt_bench_0',
  allowPlainText: true,
  sessions: 1,
  services: [{ key: 'app@1' }],
  handler: createHttpProxyHandler({ socketPath }),
});
client.once('session', () => process.stdout.write('ready\n'));
client.start();
process.on('SIGINT', () => process.exit(0));
