import { fileURLToPath } from 'node:url';
import { waitFor } from '@insitu/core';
import type { Bed } from './bed.js';
import { frontUrl } from './bed.js';
import type { NsProcess } from './ns-process.js';

const WORKER = fileURLToPath(new URL('./workload-worker.js', import.meta.url));

export interface CallOutcome {
  k: 'call';
  n: number;
  t: number;
  status: number;
  code?: string;
  agent?: string;
  body?: string;
  error?: string;
  ms: number;
}
export interface WriteOutcome {
  k: 'write';
  n: number;
  t: number;
  name: string;
  status: number;
  acked: boolean;
  id?: string;
  code?: string;
  error?: string;
}

/** A running load generator in `client`; `stop()` returns every outcome it logged. */
export interface Workload {
  proc: NsProcess;
  stop(): Promise<{ calls: CallOutcome[]; writes: WriteOutcome[] }>;
}

export const CALL_DEADLINE_MS = 10_000;

/**
 * A fresh API key for one scenario's calls, so the platform's metering of exactly these
 * calls can be compared with what the client counted.
 */
export async function scenarioKey(bed: Bed, name: string): Promise<{ id: string; key: string }> {
  const response = await fetch(`${frontUrl}/api/v1/keys`, {
    method: 'POST',
    headers: { authorization: `Bearer ${bed.devToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ orgId: bed.devOrgId, name: `load-${name}-${Date.now()}`, services: [bed.service] }),
    signal: AbortSignal.timeout(10_000),
  });
  const body = (await response.json()) as { id?: string; key?: string };
  if (response.status !== 201 || !body.id || !body.key)
    throw new Error(`cannot create the scenario's key: ${response.status} ${JSON.stringify(body)}`);
  return { id: body.id, key: body.key };
}

export async function startWorkload(bed: Bed, name: string, rate: number, key = bed.key): Promise<Workload> {
  const config = {
    url: frontUrl,
    key,
    path: bed.callPath,
    rate,
    deadlineMs: CALL_DEADLINE_MS,
    token: bed.devToken,
    orgId: bed.devOrgId,
    service: bed.service,
    writeEveryMs: 100,
  };
  const proc = bed.spawn(`workload-${name}`, 'client', process.execPath, [WORKER, JSON.stringify(config)]);
  await waitFor(
    () => {
      if (!proc.running) throw new Error(`the workload exited: ${proc.output.slice(-1000)}`);
      return proc.output.includes('"k":"call"');
    },
    { timeoutMs: 120_000, what: 'the first call outcome' },
  );
  let lines = '';
  proc.child?.stdout?.on('data', (c: Buffer) => (lines += c.toString()));
  const early = proc.output;
  return {
    proc,
    stop: async () => {
      await proc.stop(CALL_DEADLINE_MS + 5000);
      const calls: CallOutcome[] = [];
      const writes: WriteOutcome[] = [];
      // `early` is what arrived before we listened; lines after. The ring buffer caps `early`.
      for (const line of (early + lines).split('\n')) {
        if (!line.startsWith('{')) continue;
        try {
          const record = JSON.parse(line) as CallOutcome | WriteOutcome | { k: 'end' };
          if (record.k === 'call') calls.push(record);
          else if (record.k === 'write') writes.push(record);
        } catch {
          // a line cut by the ring buffer
        }
      }
      return { calls, writes };
    },
  };
}
