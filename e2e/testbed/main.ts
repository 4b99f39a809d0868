/**
 * The 3+2 test bed: the whole platform on five namespace machines (mgmt1..3, prov1..2)
 * plus `client`, faults injected under load, invariants checked, recovery measured.
 * Run as root: `npm run testbed -- [--faults LIST|all] [--seed N] [--quick] [--keep] [--clean]`.
 * Exit 0: every scenario passed; 1: a scenario failed or the bed did not come up; 2: usage.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { InsituError, seededRandom } from '@insitu/core';
import { parseTestbedArgs, type TestbedOptions } from './args.js';
import { startBed, stopBed, type Bed } from './bed.js';
import { makeFault } from './faults.js';
import type { Check } from './invariants.js';
import { checkKeyLimit } from './limit.js';
import { bedNamespaces, cleanBed, createBedNetwork, MARKER } from './network.js';
import { failedScenario, markdownTable, runScenario, type ScenarioResult } from './scenario.js';

const out = (line: string) => process.stdout.write(`testbed: ${line}\n`);

async function run(options: TestbedOptions): Promise<number> {
  if (process.getuid?.() !== 0) throw new InsituError('INSITU_USAGE', 'the test bed needs root (network namespaces)');
  if (options.clean) {
    const removed = cleanBed();
    out(
      `clean: killed ${removed.processes.length} process(es), deleted ${removed.namespaces.length} namespace(s)${removed.bridge ? ' and the bridge' : ''}`,
    );
    return 0;
  }
  if (bedNamespaces().length > 0) {
    throw new InsituError(
      'INSITU_CONFLICT',
      `a bed is already up (namespaces ${bedNamespaces().join(', ')}); stop it or run --clean`,
    );
  }
  const started = Date.now();
  const dir = join(tmpdir(), `${MARKER}run-${process.pid}`);
  const outDir = resolve(options.out);
  await mkdir(dir, { recursive: true });
  await mkdir(outDir, { recursive: true });
  const holder: { bed: Partial<Bed> } = { bed: {} };
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    out(`${signal}: tearing down`);
    void stopBed(holder).finally(() => {
      cleanBed();
      process.exit(130);
    });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const results: ScenarioResult[] = [];
  let limit: Check | undefined;
  let setupError = '';
  let setupMs = 0;
  try {
    await createBedNetwork();
    const bed = await startBed(dir, holder);
    setupMs = Date.now() - started;
    const random = seededRandom(options.seed);
    for (const name of options.faults) {
      const fault = makeFault(name, random);
      try {
        results.push(await runScenario(bed, fault, options.rate, outDir));
      } catch (error) {
        // One fault that cannot be played (e.g. no netem in this kernel) fails its row, not the run;
        // heal in case it was half-injected.
        out(`scenario ${name} could not run: ${(error as Error).message}`);
        await fault.heal(bed).catch(() => undefined);
        results.push(
          failedScenario(name, fault.describe, (error as Error).message, (error as { skipped?: boolean }).skipped),
        );
      }
    }
    out('cluster-wide key limit: 300/s offered to a key limited to 100/s');
    try {
      limit = await checkKeyLimit(bed);
    } catch (error) {
      limit = { name: 'the key-limit check ran', ok: false, detail: (error as Error).message.slice(0, 500) };
    }
    out(`  ${limit.ok ? 'ok  ' : 'FAIL'} ${limit.name}: ${limit.detail}`);
  } catch (error) {
    setupError = (error as Error).stack ?? String(error);
    process.stderr.write(`testbed: ${setupError}\n`);
  } finally {
    if (options.keep && setupError === '') {
      out(
        `--keep: bed left up in ${dir}; this process stays with it: Ctrl-C here tears it down (or npm run testbed -- --clean from another shell)`,
      );
    } else {
      await stopBed(holder);
      cleanBed();
      if (setupError === '') await rm(dir, { recursive: true, force: true });
      else out(`logs kept in ${dir}/logs`);
    }
  }
  const report = {
    date: new Date(started).toISOString(),
    options,
    machine: {
      cpus: cpus().length,
      model: cpus()[0]?.model ?? '?',
      node: process.version,
      loadavg: loadavg().map((l) => Number(l.toFixed(1))),
    },
    setupMs,
    totalMs: Date.now() - started,
    error: setupError || undefined,
    scenarios: results,
    limit,
    ok: setupError === '' && results.every((r) => r.ok) && limit?.ok === true,
  };
  await writeFile(join(outDir, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
  const table = `${markdownTable(results)}\n\n${limit ? `${limit.ok ? 'pass' : 'FAIL'}: ${limit.name}: ${limit.detail}` : ''}`;
  await writeFile(
    join(outDir, 'report.md'),
    `# Test bed run ${report.date}\n\nseed ${options.seed}, ${options.rate} calls/s, ${report.machine.cpus} cores (${report.machine.model}), load ${report.machine.loadavg.join(' ')} at the end, setup ${(setupMs / 1000).toFixed(0)} s, total ${(report.totalMs / 1000).toFixed(0)} s\n\n${table}\n`,
  );
  process.stdout.write(`\n${table}\n\n`);
  out(`report: ${join(outDir, 'report.json')} and report.md; ${report.ok ? 'all scenarios passed' : 'FAILED'}`);
  return report.ok ? 0 : 1;
}

async function main(): Promise<void> {
  let options: TestbedOptions;
  try {
    options = parseTestbedArgs(process.argv.slice(2));
  } catch (error) {
    if (error instanceof InsituError) {
      process.stderr.write(`${error.code}: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  try {
    process.exitCode = await run(options);
  } catch (error) {
    if (error instanceof InsituError) {
      process.stderr.write(`${error.code}: ${error.message}\n`);
      process.exitCode = error.code === 'INSITU_USAGE' ? 2 : 1;
      return;
    }
    throw error;
  }
}

await main();
