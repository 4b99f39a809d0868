// The agent for the benchmark: a tunnel client that proxies to the app.
import { TunnelClient, createHttpProxyHandler } from '@insitu/tunnel';

const [platformUrl, appPort] = process.argv.slice(2);
const client = new TunnelClient({
  platforms: [platformUrl],
  credential: 'isu_agt_bench_0',
  allowPlainText: true,
  sessions: 1,
  services: [{ key: 'app@1' }],
  handler: createHttpProxyHandler({ host: '127.0.0.1', port: Number(appPort) }),
});
client.once('session', () => process.stdout.write('ready\n'));
client.start();
process.on('SIGINT', () => process.exit(0));
