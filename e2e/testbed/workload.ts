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

export async function startWorkload(bed: Bed, name: string, rate: number): Promise<Workload> {
  const config = {
    url: frontUrl,
    key: bed.key,
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
