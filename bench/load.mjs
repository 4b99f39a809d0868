// The load generator of bench/tunnel and bench/invoke: `clients` keep-alive HTTP/1.1
// callers in this process, each sending GETs back to back; 1 s of warm-up (opens the
// connections, lets the JIT settle), then `seconds` measured.
import http from 'node:http';
import { performance } from 'node:perf_hooks';

/** One GET; resolves with the body's size, rejects on a status other than 200. */
export function get(agent, target, path, headers) {
  return new Promise((resolve, reject) => {
    const req = http.get({ ...target, path, agent, headers }, (res) => {
      let bytes = 0;
      res.on('data', (chunk) => (bytes += chunk.length));
      res.on('end', () => (res.statusCode === 200 ? resolve(bytes) : reject(new Error(`status ${res.statusCode}`))));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

/** Requests/s and latency percentiles (ms) of `clients` callers over `seconds`. */
export async function load(target, path, headers, clients, seconds) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
  const warmUntil = Date.now() + 1000;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (Date.now() < warmUntil) await get(agent, target, path, headers);
    }),
  );
  const latencies = [];
  const until = Date.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (Date.now() < until) {
        const t = performance.now();
        await get(agent, target, path, headers);
        latencies.push(performance.now() - t);
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))];
  return { rps: latencies.length / elapsed, p50: pct(0.5), p99: pct(0.99), n: latencies.length };
}
