import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { waitFor } from '@insitu/core';
import { makeTempDir, removeDir } from '@insitu/test-helpers';
import { start } from './helpers.js';

const BIN = fileURLToPath(new URL('../../bin/insitu.js', import.meta.url));

describe('insitu up', () => {
  let dir = '';
  before(async () => {
    dir = await makeTempDir('insitu-up-');
  });
  after(async () => removeDir(dir));

  it('brings up the platform with a demo catalog, prints working curl commands, and reuses the data dir', async () => {
    const first = start(['up', '--data-dir', dir, '--port', '0']);
    await first.waitForOutput(/Press Ctrl-C to stop/);
    assert.match(first.output.stdout, /admin: +admin@insitu\.local +password: \S+/);
    const curls = first.output.stdout.split('\n').filter((line) => line.startsWith('curl '));
    assert.ok(curls.length >= 2, first.output.stdout);
    const search = curls[0] ?? '';
    const token = /Bearer (isu_ses_\S+)'/.exec(search)?.[1];
    const url = /'(http:\/\/[^']+)'$/.exec(search)?.[1];
    assert.ok(token && url);
    const found = (await (await fetch(url, { headers: { authorization: `Bearer ${token}` } })).json()) as { items: Array<{ name: string; providerName: string; rowCount: number; columns: unknown[] }> };
    assert.equal(found.items[0]?.name, 'sales');
    assert.equal(found.items[0]?.providerName, 'demo-retail');
    assert.equal(found.items[0]?.rowCount, 60_000);
    assert.ok(!JSON.stringify(found).includes('LC0'), 'no row value (loyalty card ids) reaches the catalog');
    assert.equal(await first.stop(), 0);

    const second = start(['up', '--data-dir', dir, '--port', '0', '--json']);
    const [line] = await second.waitForOutput(/^\{.*\}$/m);
    const report = JSON.parse(line) as { admin: { password?: string }; datasets: string[]; url: string; token: string };
    assert.equal(report.admin.password, undefined, 'the password is shown on the first run only');
    assert.deepEqual(report.datasets, ['products', 'sales', 'stores', 'weather']);
    const all = (await (await fetch(`${report.url}/api/v1/datasets?provider=demo-retail`, { headers: { authorization: `Bearer ${report.token}` } })).json()) as { items: unknown[] };
    assert.equal(all.items.length, 4, 'no duplicates after a second run');
    assert.equal(await second.stop(), 0);
  });

  it('as a real process: the printed curl line works as printed, and Ctrl-C stops it cleanly', async () => {
    const child = spawn(process.execPath, [BIN, 'up', '--data-dir', dir, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await waitFor(() => stdout.includes('Press Ctrl-C'), { timeoutMs: 60_000, what: `insitu up to be ready (stderr: ${stderr})` });
      const curl = stdout.split('\n').find((l) => l.startsWith('curl ') && l.includes('tag=weather'));
      assert.ok(curl);
      const { stdout: answer } = await promisify(execFile)('/bin/sh', ['-c', curl]);
      const names = (JSON.parse(answer) as { items: Array<{ name: string }> }).items.map((d) => d.name);
      assert.deepEqual(names, ['weather']);
      child.kill('SIGINT');
      assert.equal(await exited, 0);
      assert.match(stderr, /stopping/);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
