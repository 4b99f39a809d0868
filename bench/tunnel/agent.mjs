// The agent of bench/tunnel and bench/invoke (c): a bare tunnel client (no gateway) that
// proxies to the app, given as a loopback port or a Unix socket path.
import { TunnelClient, createHttpProxyHandler } from '@insitu/tunnel';

const [platformUrl, app] = process.argv.slice(2);
const client = new TunnelClient({
  platforms: [platformUrl],
  credential: 'isu_agt_bench_0',
  allowPlainText: true,
  sessions: 1,
  services: [{ key: 'app@1' }],
  handler: createHttpProxyHandler(
    /^[0-9]+$/.test(app) ? { host: '127.0.0.1', port: Number(app) } : { socketPath: app },
  ),
});
client.once('session', () => process.stdout.write('ready\n'));
client.start();
process.on('SIGINT', () => process.exit(0));
