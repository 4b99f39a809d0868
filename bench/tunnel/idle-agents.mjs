// Simulates N idle agents in one process: each dials the platform, upgrades with its
// own credential and answers the control stream's hello, then stays idle.
import http from 'node:http';
import http2 from 'node:http2';

const [tunnelPort, count] = process.argv.slice(2).map(Number);
const server = http2.createServer({ settings: { initialWindowSize: 4 * 1024 * 1024 } }, (req, res) => {
  res.writeHead(200, { 'content-type': 'application/x-ndjson' });
  res.write(`${JSON.stringify({ type: 'hello', agentVersion: 'sim', services: [{ key: 'idle@1' }] })}\n`);
  req.resume();
});
server.on('session', (session) => session.on('error', () => undefined));

function dial(n) {
  return new Promise((resolve, reject) => {
    const request = http.request({
      host: '127.0.0.1',
      port: tunnelPort,
      path: '/api/v1/tunnel',
      agent: false,
      headers: { connection: 'Upgrade', upgrade: 'insitu-tunnel/1', authorization: `Bearer isu_agt_bench_${n}` },
    });
    request.on('upgrade', (_res, socket, head) => {
      if (head.length > 0) socket.unshift(head);
      socket.on('error', () => undefined);
      server.emit('connection', socket);
      resolve();
    });
    request.on('response', (res) => reject(new Error(`agent ${n}: ${res.statusCode}`)));
    request.on('error', reject);
    request.end();
  });
}

let next = 1;
await Promise.all(
  Array.from({ length: 100 }, async () => {
    while (next <= count) await dial(next++);
  }),
);
process.stdout.write('dialled\n');
