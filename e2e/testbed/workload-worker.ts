/*
 * The bed's load generator, run inside the `client` namespace: service calls through
 * HAProxy at a fixed rate and platform writes (API keys) with their acknowledgements,
 * every outcome one JSON line on stdout. Stops on SIGTERM after the calls in flight end.
 * Argument: one JSON object (see WorkerConfig).
 */
import { performance } from 'node:perf_hooks';

interface WorkerConfig {
  url: string;
  key: string;
  path: string;
  rate: number;
  deadlineMs: number;
  /** Session token and org for writes; a write every writeEveryMs. */
  token: string;
  orgId: string;
  service: string;
  writeEveryMs: number;
}

const config = JSON.parse(process.argv[2] ?? '{}') as WorkerConfig;
let running = true;
let inFlight = 0;
const out = (record: object) => process.stdout.write(`${JSON.stringify(record)}\n`);

async function call(n: number): Promise<void> {
  inFlight++;
  const t0 = Date.now();
  const start = performance.now();
  try {
    const response = await fetch(`${config.url}${config.path}`, {
      headers: { authorization: `Bearer ${config.key}` },
      signal: AbortSignal.timeout(config.deadlineMs),
    });
    const text = await response.text();
    let code: string | undefined;
    let agent: string | undefined;
    try {
      const body = JSON.parse(text) as { code?: string; error?: { code?: string }; agent?: string };
      code = body.code ?? body.error?.code;
      agent = body.agent;
    } catch {
      // not JSON: no code
    }
    // An uncoded failure keeps the start of its body as evidence (a proxy's own error page).
    const body = code === undefined && !response.ok ? text.slice(0, 120) : undefined;
    out({ k: 'call', n, t: t0, status: response.status, code, agent, body, ms: Math.round(performance.now() - start) });
  } catch (error) {
    out({ k: 'call', n, t: t0, status: 0, error: (error as Error).name, ms: Math.round(performance.now() - start) });
  } finally {
    inFlight--;
  }
}

async function write(n: number): Promise<void> {
  inFlight++;
  const name = `tb-${process.pid}-${n}`;
  const t0 = Date.now();
  try {
    const response = await fetch(`${config.url}/api/v1/keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${config.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ orgId: config.orgId, name, services: [config.service] }),
      signal: AbortSignal.timeout(config.deadlineMs),
    });
    const text = await response.text();
    let id: string | undefined;
    let code: string | undefined;
    try {
      const body = JSON.parse(text) as { id?: string; code?: string };
      id = body.id;
      code = body.code;
    } catch {
      // not JSON
    }
    out({ k: 'write', n, t: t0, name, status: response.status, acked: response.status === 201, id, code });
  } catch (error) {
    out({ k: 'write', n, t: t0, name, status: 0, acked: false, error: (error as Error).name });
  } finally {
    inFlight--;
  }
}

process.on('SIGTERM', () => {
  running = false;
});

const started = performance.now();
let calls = 0;
let writes = 0;
let skipped = 0;
const tick = setInterval(() => {
  if (!running) {
    clearInterval(tick);
    const drain = setInterval(() => {
      if (inFlight === 0) {
        clearInterval(drain);
        out({ k: 'end', calls, writes, skipped });
        process.exit(0);
      }
    }, 20);
    return;
  }
  // Catch up to the schedule: the timer is coarse, the rate is not.
  // A stalled loop (an overloaded machine) does not burst: slots more than 1 s late are
  // dropped and counted, so the offered rate stays what was asked.
  const elapsed = performance.now() - started;
  const dueCalls = Math.floor((elapsed / 1000) * config.rate);
  if (dueCalls - calls > config.rate) {
    skipped += dueCalls - calls - config.rate;
    calls = dueCalls - config.rate;
  }
  while (calls < dueCalls) void call(calls++);
  const dueWrites = Math.floor(elapsed / config.writeEveryMs);
  if (dueWrites - writes > 10) writes = dueWrites - 10;
  while (writes < dueWrites) void write(writes++);
}, 10);
