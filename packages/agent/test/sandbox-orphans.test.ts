// Issue 16 item 5: no process of an instance outlives its agent, even when the agent is
// killed with SIGKILL (no code of it runs), while its instance runs or right after it
// spawned one (the moment bubblewrap's --die-with-parent alone loses the race).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { createLogger, waitFor } from '@insitu/core';
import { makeTempDir, removeDir } from '@insitu/test-helpers';
import { Agent, parseAgentConfig } from '../src/index.js';

const CHILD = fileURLToPath(new URL('./agent-child.js', import.meta.url));

/** Pids of the processes whose command line carries `marker` (every process of the instance does). */
function processesWith(marker: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(join('/proc', entry, 'cmdline'), 'utf8').includes(marker)) found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

function startAgent(dir: string, marker: string): { child: ChildProcess; line: (text: string) => Promise<void> } {
  const child = spawn(process.execPath, [CHILD, dir], {
    env: { ...process.env, INSITU_TEST_MARKER: marker, TMPDIR: dir },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const seen = new Set<string>();
  const waiting = new Map<string, () => void>();
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (text) => {
    seen.add(text);
    waiting.get(text)?.();
  });
  const line = (text: string) =>
    new Promise<void>((resolve, reject) => {
      if (seen.has(text)) return resolve();
      waiting.set(text, resolve);
      child.once('exit', (code) => reject(new Error(`the agent exited (${String(code)}) before printing ${text}`)));
    });
  return { child, line };
}

describe('no instance outlives a killed agent (issue 16 item 5)', () => {
  let dir = '';

  before(async () => {
    dir = await makeTempDir('insitu-agent-orphans-');
  });

  after(async () => {
    // A new agent on the same data directory sweeps its predecessors' cgroups (nothing is left to kill).
    const agent = await Agent.create({
      config: parseAgentConfig({ sources: [] }, { what: 'test config', baseDir: dir }),
      dataDir: join(dir, 'agent'),
      logger: createLogger({ name: 'test', level: 'silent' }),
      provider: '*',
    });
    await agent.close();
    await removeDir(dir);
  });

  it('kill -9 of an agent whose instance runs leaves no process of the instance', async () => {
    const marker = `orphan-${randomBytes(6).toString('hex')}`;
    const { child, line } = startAgent(dir, marker);
    await line('running');
    assert.ok(processesWith(marker).length >= 2, 'the instance runs (launcher, sandbox, app)');
    child.kill('SIGKILL');
    await waitFor(() => processesWith(marker).length === 0, {
      timeoutMs: 15_000,
      what: `no process of the instance left (${processesWith(marker).join(' ')})`,
    });
  });

  it('kill -9 right after the agent spawned an instance leaves no process of it (8 times)', async () => {
    for (let round = 0; round < 8; round++) {
      const marker = `orphan-${randomBytes(6).toString('hex')}`;
      const { child, line } = startAgent(dir, marker);
      await line('spawned');
      child.kill('SIGKILL');
      await waitFor(() => processesWith(marker).length === 0, {
        timeoutMs: 15_000,
        what: `round ${round}: no process of the instance left (${processesWith(marker).join(' ')})`,
      });
    }
  });
});
