// The agent of bench/tunnel and bench/invoke (c): a bare tunnel client (no gateway) that
// proxies to the app, given as a loopback port or a Unix socket path.
// BENCH_WORK_CONNECTIONS=N (> 0) turns on work connections (the data plane beside the
// HTTP/2 session, packages/tunnel README "Work connections"), at most N per session.
import { TunnelClient, createHttpProxyHandler } from '@insitu/tunnel';

const [platformUrl, app] = process.argv.slice(2);
const workConnections = Number(process.env.BENCH_WORK_CONNECTIONS ?? 0);
if (!Number.isInteger(workConnections) || workConnections < 0) {
  process.stderr.write(`BENCH_WORK_CONNECTIONS must be a whole number, not ${process.env.BENCH_WORK_CONNECTIONS}\n`);
  process.exit(2);
}
const client = new TunnelClient({
  workConnections,
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
