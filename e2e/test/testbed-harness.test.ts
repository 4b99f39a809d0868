// The 3+2 test bed (e2e/testbed/) is too slow for `npm test`; this exercises its harness:
// argument validation (a coded INSITU_USAGE error, exit 2) and `--clean`, which must remove
// a leftover bed (its namespaces, the processes inside them, the bridge) and nothing else.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { waitFor } from '@insitu/core';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const MAIN = fileURLToPath(new URL('../testbed/main.js', import.meta.url));

function run(command: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('the test bed harness', () => {
  for (const args of [
    ['--bogus'],
    ['--faults', 'server-kill,meteor-strike'],
    ['--seed', 'x'],
    ['--quick', '--faults', 'agent-kill'],
    ['--rate'],
  ]) {
    it(`rejects ${args.join(' ')} with INSITU_USAGE and exit 2, starting nothing`, async () => {
      const result = await run(process.execPath, [MAIN, ...args]);
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, /^INSITU_USAGE: /);
      assert.match(result.stderr, /usage: npm run testbed --/);
      assert.equal(
        spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.includes('itb-'),
        false,
        'no namespace created',
      );
    });
  }

  it(
    'npm run testbed -- --clean removes a leftover bed: its namespaces, processes inside them and the bridge',
    { skip: process.getuid?.() !== 0 && 'needs root' },
    async () => {
      // A leftover as a crashed run leaves it: a namespace of the bed with a process inside, and the bridge.
      assert.equal(spawnSync('ip', ['netns', 'add', 'itb-client']).status, 0);
      assert.equal(spawnSync('ip', ['link', 'add', 'itb-br0', 'type', 'bridge']).status, 0);
      const leftover = spawn('ip', ['netns', 'exec', 'itb-client', 'sleep', '600'], { stdio: 'ignore' });
      const bystander = spawn('sleep', ['600'], { stdio: 'ignore' });
      try {
        await waitFor(
          () => spawnSync('ip', ['netns', 'pids', 'itb-client'], { encoding: 'utf8' }).stdout.trim() !== '',
          { timeoutMs: 10_000, what: 'the leftover process in itb-client' },
        );
        const result = await run('npm', ['run', '--silent', 'testbed', '--', '--clean']);
        assert.equal(result.code, 0, result.stderr + result.stdout);
        assert.match(result.stdout, /clean: killed 1 process\(es\), deleted 1 namespace\(s\) and the bridge/);
        assert.equal(spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.includes('itb-client'), false);
        assert.notEqual(
          spawnSync('ip', ['link', 'show', 'itb-br0'], { stdio: 'ignore' }).status,
          0,
          'the bridge is gone',
        );
        await waitFor(() => leftover.exitCode !== null || leftover.signalCode !== null, {
          timeoutMs: 10_000,
          what: 'the leftover process to die',
        });
        assert.equal(alive(bystander.pid ?? 0), true, 'a process outside the bed is untouched');
      } finally {
        leftover.kill('SIGKILL');
        bystander.kill('SIGKILL');
        spawnSync('ip', ['netns', 'del', 'itb-client'], { stdio: 'ignore' });
        spawnSync('ip', ['link', 'del', 'itb-br0'], { stdio: 'ignore' });
      }
    },
  );
});
