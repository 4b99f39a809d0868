import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { describe, it } from 'node:test';
import { waitFor } from '@insitu/core';
import { removeDir } from '../src/index.js';
import { isGone } from '../src/process-tree.js';
import { findCommand } from '../src/require-command.js';

interface Started {
  pids: number[];
  dirs: string[];
}

/**
 * Run a test process that starts servers, reports them, and then ends the way `ending`
 * says, without calling stop().
 */
async function runTestProcess(
  ending: string,
): Promise<{ started: Started; code: number | null; signal: NodeJS.Signals | null }> {
  const index = new URL('../src/index.js', import.meta.url).href;
  const script = `
    import { startMariaDb, startEtcd } from ${JSON.stringify(index)};
    const servers = process.argv[1] === 'sigkill' ? [await startEtcd()] : [await startMariaDb(), await startEtcd()];
    process.stdout.write(JSON.stringify({ pids: servers.map((s) => s.pid), dirs: servers.map((s) => s.dataDir) }) + '\\n', () => {
      if (process.argv[1] === 'exit') process.exit(0);
      if (process.argv[1] === 'sigterm') { setInterval(() => {}, 1000); process.kill(process.pid, 'SIGTERM'); }
      if (process.argv[1] === 'sigkill') process.kill(process.pid, 'SIGKILL');
      // 'forget': return; the servers must not keep the event loop alive.
    });
  `;
  const child = spawn(process.execPath, ['--input-type=module', '--eval', script, ending], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8');
  });
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => {
    child.once('close', (exitCode, exitSignal) => {
      resolve([exitCode, exitSignal]);
    });
  });
  return { started: JSON.parse(output) as Started, code, signal };
}

async function assertAllGone(started: Started): Promise<void> {
  assert.ok(started.pids.length > 0);
  await waitFor(() => started.pids.every(isGone), { what: 'servers of the dead test process to be gone' });
}

describe('servers die with the test process', () => {
  for (const ending of ['exit', 'forget', 'sigterm'] as const) {
    it(`kills the servers and deletes their dirs when the test process ends by ${ending}`, async () => {
      const { started, code, signal } = await runTestProcess(ending);
      if (ending === 'sigterm') assert.equal(code, 143, `exit code ${String(code)} signal ${String(signal)}`);
      else assert.equal(code, 0);
      await assertAllGone(started);
      for (const dataDir of started.dirs) await assert.rejects(stat(dirname(dataDir)), { code: 'ENOENT' });
    });
  }

  it('kills the servers when the test process is SIGKILLed (parent-death signal)', async (t) => {
    if ((await findCommand('setpriv')) === undefined) {
      t.skip('setpriv (util-linux) is not installed');
      return;
    }
    const { started, signal } = await runTestProcess('sigkill');
    assert.equal(signal, 'SIGKILL');
    try {
      await assertAllGone(started);
    } finally {
      // No handler runs on SIGKILL: the dirs are ours to remove.
      for (const dataDir of started.dirs) await removeDir(dirname(dataDir));
    }
  });
});
