// The small HTTP app every path of the benchmark reaches: 1 KB answers and one 1 GB stream.
import http from 'node:http';

const ONE_KB = Buffer.alloc(1024, 'x');
const CHUNK = Buffer.alloc(64 * 1024, 'y');
const server = http.createServer((req, res) => {
  if (req.url === '/bulk') {
    let left = 1024 * 1024 * 1024;
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(left) });
    const pump = () => {
      while (left > 0) {
        const n = Math.min(left, CHUNK.length);
        left -= n;
        if (!res.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) {
          res.once('drain', pump);
          return;
        }
      }
      res.end();
    };
    pump();
    return;
  }
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '1024' });
  res.end(ONE_KB);
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`));
