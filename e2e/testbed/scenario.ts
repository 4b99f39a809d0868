import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Bed } from './bed.js';
import { serverCuts, type Fault } from './faults.js';
import {
  checkAudit,
  checkCalls,
  checkAlerts,
  checkFencing,
  checkMetering,
  checkPrimaries,
  checkWrites,
  PrimarySampler,
  waitConverged,
  type Check,
} from './invariants.js';
import { agentSpread, formatSpread, type AgentSpread } from './spread.js';
import { scenarioKey, startWorkload, type CallOutcome } from './workload.js';

export const STEADY_MS = 20_000;
export const CONVERGE_BOUND_MS = 90_000;

export interface ScenarioResult {
  fault: string;
  describe: string;
  injected: string;
  /** ms from injection to the first failed call or write (null: none failed). */
  detectionMs: number | null;
  /** ms from injection to the last failed call or write, i.e. service back (null: none failed). */
  recoveryMs: number | null;
  convergedAfterHealMs: number | null;
  calls: number;
  failedCalls: number;
  windowCalls: number;
  windowSuccessRatio: number;
  writesAcked: number;
  writesFailed: number;
  p99Ms: number;
  /** The scenario's 2xx calls per hospital agent, from the audit log (null: could not be read). */
  agents: AgentSpread | null;
  checks: Check[];
  ok: boolean;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const okCall = (c: CallOutcome) => c.status >= 200 && c.status < 300;
const log = (line: string) => process.stdout.write(`testbed: ${line}\n`);

/** Steady load, fault, hold, heal, settle (until converged), then every invariant. */
export async function runScenario(bed: Bed, fault: Fault, rate: number, outDir: string): Promise<ScenarioResult> {
  log(`scenario ${fault.name}: ${fault.describe}`);
  const sampler = new PrimarySampler(bed);
  const startedAt = Date.now();
  const hookFrom = bed.hook.accepted.length;
  const mailFrom = bed.smtp.mails.length;
  const loadKey = await scenarioKey(bed, fault.name);
  const workload = await startWorkload(bed, fault.name, rate, loadKey.key);
  let injected = '';
  let injectedAt = 0;
  let healedAt = 0;
  let convergedAfterHealMs: number | null = null;
  let convergeError = '';
  let outcomes: Awaited<ReturnType<typeof workload.stop>> = { calls: [], writes: [] };
  try {
    await sleep(STEADY_MS);
    injectedAt = Date.now();
    injected = await fault.inject(bed);
    log(`  ${injected}`);
    await sleep(fault.holdMs);
    await fault.heal(bed);
    healedAt = Date.now();
    try {
      convergedAfterHealMs = await waitConverged(bed, CONVERGE_BOUND_MS);
    } catch (error) {
      convergeError = (error as Error).message;
    }
    await sleep(3000);
  } finally {
    outcomes = await workload.stop();
    await sampler.stop();
  }
  const { calls, writes } = outcomes;
  const windowEnd = healedAt + (convergedAfterHealMs ?? CONVERGE_BOUND_MS);
  const inWindow = calls.filter((c) => c.t >= injectedAt && c.t <= windowEnd);
  const failures = [
    ...calls.filter((c) => !okCall(c) && c.t >= injectedAt).map((c) => c.t),
    ...writes.filter((w) => !w.acked && w.t >= injectedAt).map((w) => w.t),
  ].sort((a, b) => a - b);
  const latencies = calls
    .filter(okCall)
    .map((c) => c.ms)
    .sort((a, b) => a - b);
  const checks: Check[] = [
    checkCalls(calls),
    checkPrimaries(sampler),
    await checkWrites(bed, writes),
    await checkAudit(bed),
    await checkFencing(bed),
    await checkMetering(
      bed,
      loadKey.id,
      calls,
      serverCuts.filter((cut) => cut >= injectedAt),
    ),
    await checkAlerts(bed, hookFrom, mailFrom),
    {
      name: `converges within ${CONVERGE_BOUND_MS / 1000} s after heal`,
      ok: convergedAfterHealMs !== null,
      detail: convergedAfterHealMs !== null ? `${convergedAfterHealMs} ms` : convergeError.slice(0, 500),
    },
  ];
  const agents = await agentSpread(bed, loadKey.id, startedAt).catch((error: unknown) => {
    log(`  calls per agent not read: ${(error as Error).message}`);
    return null;
  });
  const result: ScenarioResult = {
    fault: fault.name,
    describe: fault.describe,
    injected,
    detectionMs: failures.length > 0 ? (failures[0] ?? 0) - injectedAt : null,
    recoveryMs: failures.length > 0 ? (failures.at(-1) ?? 0) - injectedAt : null,
    convergedAfterHealMs,
    calls: calls.length,
    failedCalls: calls.filter((c) => !okCall(c)).length,
    windowCalls: inWindow.length,
    windowSuccessRatio: inWindow.length === 0 ? 1 : inWindow.filter(okCall).length / inWindow.length,
    writesAcked: writes.filter((w) => w.acked).length,
    writesFailed: writes.filter((w) => !w.acked).length,
    p99Ms: latencies[Math.floor(latencies.length * 0.99)] ?? 0,
    agents,
    checks,
    ok: checks.every((c) => c.ok),
  };
  await writeFile(
    join(outDir, `${fault.name}.outcomes.jsonl`),
    [...calls, ...writes].map((r) => JSON.stringify(r)).join('\n') + '\n',
  );
  log(
    `  calls per agent: ${formatSpread(agents)}${agents && agents.noAgent > 0 ? ` (${agents.noAgent} answered by the platform)` : ''}`,
  );
  for (const check of checks)
    log(
      `  ${check.ok ? 'ok  ' : 'FAIL'} ${check.name}: ${check.detail}${check.ok ? '' : `\n        evidence: ${JSON.stringify(check.evidence ?? null).slice(0, 2000)}`}`,
    );
  return result;
}

export function markdownTable(results: readonly ScenarioResult[]): string {
  const ms = (v: number | null) => (v === null ? '–' : `${(v / 1000).toFixed(1)} s`);
  const rows = results.map(
    (r) =>
      `| ${r.fault} | ${ms(r.detectionMs)} | ${ms(r.recoveryMs)} | ${ms(r.convergedAfterHealMs)} | ${r.failedCalls} / ${r.calls} | ${(r.windowSuccessRatio * 100).toFixed(2)} % | ${r.writesAcked} acked, ${r.checks.find((c) => c.name.startsWith('no acknowledged'))?.ok === false ? 'LOST' : '0 lost'} | ${r.p99Ms} ms | ${formatSpread(r.agents)} | ${
        r.checks[0]?.name === 'skipped'
          ? `skipped: ${r.checks[0].detail}`
          : r.ok
            ? 'pass'
            : `FAIL: ${r.checks
                .filter((c) => !c.ok)
                .map((c) => c.name)
                .join('; ')}`
      } |`,
  );
  return [
    '| fault | first failure | last failure | converged after heal | failed calls | success in fault window | writes | p99 (2xx) | 2xx calls per agent | invariants |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...rows,
  ].join('\n');
}

/** The row of a scenario that could not be played at all. */
export function failedScenario(fault: string, describe: string, error: string, skipped = false): ScenarioResult {
  return {
    fault,
    describe,
    injected: '',
    detectionMs: null,
    recoveryMs: null,
    convergedAfterHealMs: null,
    calls: 0,
    failedCalls: 0,
    windowCalls: 0,
    windowSuccessRatio: 0,
    writesAcked: 0,
    writesFailed: 0,
    p99Ms: 0,
    agents: null,
    checks: [{ name: skipped ? 'skipped' : 'the scenario ran', ok: skipped, detail: error.slice(0, 500) }],
    ok: skipped,
  };
}
