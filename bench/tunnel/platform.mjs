// One platform node for the benchmark: the tunnel endpoint, and a minimal HTTP front
// that sends every request down the tunnel (what the gateway will do).
import http from 'node:http';
import { createTunnelServer } from '@insitu/tunnel';

const tunnel = createTunnelServer({
  nodeId: 'bench-node',
  deadlineMs: 60_000,
  authenticate: async (credential) => {
    const match = /^isu_agt_bench_(\d+)$/.exec(credential);
    return match ? { agentId: `agt_${match[1]}`, providerId: 'prv_bench' } : undefined;
  },
});
const tunnelServer = http.createServer((_req, res) => res.writeHead(404).end());
tunnelServer.on('upgrade', (req, socket, head) => {
  if (!tunnel.handleUpgrade(req, socket, head)) socket.destroy();
});
const front = http.createServer(async (req, res) => {
  try {
    const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
    const answer = await tunnel.request({
      providerId: 'prv_bench',
      service: 'app@1',
      method: req.method ?? 'GET',
      path: req.url ?? '/',
      headers: req.headers,
      ...(hasBody ? { body: req } : {}),
    });
    res.writeHead(answer.status, answer.headers);
    answer.body.pipe(res);
  } catch (error) {
    res.writeHead(error.status ?? 502, { 'content-type': 'text/plain' });
    res.end(String(error.code ?? error.message));
  }
});
front.keepAliveTimeout = 60_000;
let ready = 0;
const announce = () => {
  if (++ready < 2) return;
  process.stdout.write(
    `${JSON.stringify({ tunnelPort: tunnelServer.address().port, frontPort: front.address().port })}\n`,
  );
};
tunnelServer.listen(0, '127.0.0.1', announce);
front.listen(0, '127.0.0.1', announce);
process.on('message', (message) => {
  if (message === 'sessions') process.send?.(tunnel.sessions().length);
  if (message === 'ready-sessions') process.send?.(tunnel.table.candidates('prv_bench', undefined).length);
});
process.on('SIGINT', () => process.exit(0));
