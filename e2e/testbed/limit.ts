import { waitFor } from '@insitu/core';
import { runInsitu } from '../test/support.js';
import { frontUrl, serverUrl, type Bed } from './bed.js';
import type { Check } from './invariants.js';
import { MGMT } from './network.js';

export const LIMIT_RATE = 100;
export const LIMIT_BURST = 10;
export const OFFERED_RATE = 300;
const OFFER_MS = 10_000;
const MAX_IN_FLIGHT = 300;

/**
 * A key limited to 100/s (service "wards-limited", burst 10) called at 300/s round-robin
 * through all three servers directly (not through HAProxy, so each node sees a third):
 * the cluster-wide limit must accept at most 110/s. Accepted per second is
 * (2xx − burst) / seconds of offering; refusals must be coded 429s.
 */
export async function checkKeyLimit(
  bed: Bed,
): Promise<Check & { acceptedPerSecond: number; offeredPerSecond: number }> {
  const cli = (args: string[]) => runInsitu([...args, '--url', frontUrl, '--token', bed.devToken]);
  const published = await cli([
    'service',
    'publish',
    'wards-limited',
    '--app',
    bed.appId,
    '--rate',
    String(LIMIT_RATE),
    '--burst',
    String(LIMIT_BURST),
  ]);
  if (published.code !== 0) throw new Error(`service publish wards-limited: ${published.stderr}`);
  const created = await cli([
    'key',
    'create',
    '--org',
    bed.devOrgId,
    '--service',
    'wards-limited',
    '--name',
    'limited',
    '--json',
  ]);
  if (created.code !== 0) throw new Error(`key create: ${created.stderr}`);
  const key = (JSON.parse(created.stdout) as { key: string }).key;
  const call = async (m: (typeof MGMT)[number]) => {
    const response = await fetch(`${serverUrl(m)}/s/wards-limited/ping`, {
      headers: { authorization: `Bearer ${key}` },
      signal: AbortSignal.timeout(10_000),
    });
    const text = await response.text();
    let code: string | undefined;
    try {
      code = (JSON.parse(text) as { error?: { code?: string } }).error?.code;
    } catch {
      // not JSON
    }
    return { status: response.status, code };
  };
  for (const m of MGMT)
    await waitFor(async () => (await call(m)).status === 200, {
      timeoutMs: 60_000,
      what: `wards-limited through ${m}`,
    });
  // Let the buckets refill after the warm-up calls.
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const answers: Promise<{ status: number; code?: string }>[] = [];
  let settled = 0;
  let sent = 0;
  const started = performance.now();
  // Pacing of the offered load (not synchronisation): each turn sends what the schedule owes.
  while (performance.now() - started < OFFER_MS) {
    const owed = Math.floor(((performance.now() - started) / 1000) * OFFERED_RATE) - sent;
    for (let i = 0; i < owed && sent - settled < MAX_IN_FLIGHT; i++) {
      const answer = call(MGMT[sent % MGMT.length] ?? 'mgmt1').catch(() => ({ status: 0, code: 'client-error' }));
      sent++;
      void answer.then(() => settled++);
      answers.push(answer);
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const seconds = (performance.now() - started) / 1000;
  const all = await Promise.all(answers);
  const ok = all.filter((a) => a.status === 200).length;
  const refused = all.filter((a) => a.status === 429 && a.code?.startsWith('INSITU_')).length;
  const other = all.length - ok - refused;
  const acceptedPerSecond = Math.max(0, ok - LIMIT_BURST) / seconds;
  const offeredPerSecond = sent / seconds;
  return {
    name: `a key limited to ${LIMIT_RATE}/s called at ${OFFERED_RATE}/s through three nodes gets ≤ ${Math.round(LIMIT_RATE * 1.1)}/s`,
    ok: acceptedPerSecond <= LIMIT_RATE * 1.1 && other === 0 && offeredPerSecond >= LIMIT_RATE * 2,
    detail: `offered ${offeredPerSecond.toFixed(0)}/s for ${seconds.toFixed(1)} s: ${ok} accepted (${acceptedPerSecond.toFixed(1)}/s beyond the burst), ${refused} coded 429, ${other} other`,
    acceptedPerSecond,
    offeredPerSecond,
  };
}
