// A test application that tries what a hostile or broken application would try, and
// reports what happened. It is written to a bundle directory as plain JS.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const PROBE_MAIN = String.raw`
import { readFileSync, writeFileSync, chownSync, openSync, writeSync, closeSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { Worker } from 'node:worker_threads';
import { serve, readDataset } from '@insitu/sdk';

const held = [];
const outcome = (fn) => { try { return { ok: true, value: fn() }; } catch (e) { return { ok: false, code: e.code ?? e.name, message: String(e.message) }; } };

await serve({
  'GET /hello': () => ({ pid: process.pid, uid: process.getuid() }),
  'GET /read': ({ query }) => outcome(() => readFileSync(query.get('path'), 'utf8').length),
  'GET /write': ({ query }) => outcome(() => writeFileSync(query.get('path'), 'x')),
  'GET /fill': ({ query }) => {
    const chunk = Buffer.alloc(1024 * 1024, 1);
    let written = 0;
    const fd = openSync(query.get('path'), 'w');
    try {
      for (let i = 0; i < Number(query.get('mb') ?? 64); i++) written += writeSync(fd, chunk);
      return { ok: true, written };
    } catch (e) { return { ok: false, written, code: e.code }; } finally { closeSync(fd); }
  },
  'GET /ids': () => ({
    uid: process.getuid(), gid: process.getgid(),
    uidMap: readFileSync('/proc/self/uid_map', 'utf8'),
    chownToRoot: outcome(() => { writeFileSync('/tmp/mine', 'x'); chownSync('/tmp/mine', 0, 0); }),
    seccomp: /^Seccomp:\s*(\d)/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1],
  }),
  'GET /tcp': ({ query }) => new Promise((resolve) => {
    const socket = connect(Number(query.get('port')), query.get('host') ?? '127.0.0.1');
    socket.on('connect', () => { socket.destroy(); resolve({ ok: true }); });
    socket.on('error', (e) => resolve({ ok: false, code: e.code }));
  }),
  'GET /fork': () => new Promise((resolve) => {
    let spawned = 0; let error;
    for (let i = 0; i < 300; i++) {
      try { const c = spawn('/bin/sleep', ['30'], { stdio: 'ignore' }); c.on('error', (e) => { error ??= e.code; }); if (c.pid) spawned++; }
      catch (e) { error ??= e.code; }
    }
    setTimeout(() => resolve({ spawned, error }), 300);
  }),
  'GET /alloc': () => { for (;;) held.push(Buffer.alloc(16 * 1024 * 1024, 1)); },
  'GET /spin': () => { new Worker('for (;;) {}', { eval: true }); return { spinning: true }; },
  'GET /hang': () => new Promise(() => {}),
  'GET /data/{name}': async ({ params, query }) => {
    const where = query.get('city') ? [{ column: 'city', op: '=', value: query.get('city') }] : [];
    try {
      const rows = [];
      for await (const row of readDataset(params.name, { columns: query.get('column') ? [query.get('column')] : undefined, where, limit: 5, orderBy: 'id' })) rows.push(row);
      return { ok: true, rows };
    } catch (e) { return { ok: false, code: e.code, message: e.message }; }
  },
});
`;

/** Write the probe app as a bundle into `dir`; returns `dir`. */
export function writeProbeBundle(dir: string, manifest: Record<string, unknown> = {}): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'main.mjs'), PROBE_MAIN);
  writeFileSync(
    join(dir, 'insitu.json'),
    JSON.stringify({
      name: 'probe',
      version: '1.0.0',
      runtime: 'node',
      entry: 'main.mjs',
      datasets: [{ provider: 'acme', dataset: 'sales' }],
      endpoints: [{ method: 'GET', path: '/hello' }],
      limits: { memoryMb: 128, cpuSeconds: 3, processes: 48, openFiles: 128, requestTimeoutMs: 3000 },
      ...manifest,
    }),
  );
  return dir;
}
