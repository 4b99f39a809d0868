import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { waitFor } from '@insitu/core';
import { makeTempDir, removeDir } from '@insitu/test-helpers';
import { run, start } from './helpers.js';

const BIN = fileURLToPath(new URL('../../bin/insitu.js', import.meta.url));

describe('insitu up', () => {
  let dir = '';
  before(async () => {
    dir = await makeTempDir('insitu-up-');
  });
  after(async () => removeDir(dir));

  it('brings up the platform, the demo provider and its published service, prints working curl commands, and reuses the data dir', async () => {
    const first = start(['up', '--data-dir', dir, '--port', '0']);
    await first.waitForOutput(/Press Ctrl-C to stop/, 120_000);
    assert.match(first.output.stdout, /admin: +admin@insitu\.local +password: \S+/);
    assert.match(first.output.stdout, /service: .*running next to the data/);
    const consoleUrl = /console: +(http:\/\/\S+\/console\/)/.exec(first.output.stdout)?.[1];
    assert.ok(consoleUrl, first.output.stdout);
    assert.match(
      await (await fetch(consoleUrl)).text(),
      /<div id="app">/,
      'the printed console URL serves the console',
    );
    const curls = first.output.stdout.split('\n').filter((line) => line.startsWith('curl '));
    assert.ok(curls.length >= 3, first.output.stdout);
    const serviceCall = curls[0] ?? '';
    const key = /Bearer (isu_key_\S+)'/.exec(serviceCall)?.[1];
    const serviceUrl = /'(http:\/\/[^']+)'$/.exec(serviceCall)?.[1];
    assert.ok(key && serviceUrl);
    const answer = (await (await fetch(serviceUrl, { headers: { authorization: `Bearer ${key}` } })).json()) as {
      currency: string;
      cities: Array<{ city: string; revenue: number }>;
    };
    assert.equal(answer.currency, 'EUR');
    assert.equal(answer.cities.length, 20, 'a computed answer: revenue of every city');
    assert.ok(answer.cities.every((c) => c.revenue > 0));
    assert.ok(!JSON.stringify(answer).includes('LC0'), 'no loyalty card id leaves the provider');
    const search = curls.find((c) => c.includes('/api/v1/datasets?q=sales')) ?? '';
    const token = /Bearer (isu_ses_\S+)'/.exec(search)?.[1];
    const url = /'(http:\/\/[^']+)'$/.exec(search)?.[1];
    assert.ok(token && url);
    const found = (await (await fetch(url, { headers: { authorization: `Bearer ${token}` } })).json()) as {
      items: Array<{ name: string; providerName: string; rowCount: number; columns: unknown[] }>;
    };
    assert.equal(found.items[0]?.name, 'sales');
    assert.equal(found.items[0]?.providerName, 'demo-retail');
    assert.equal(found.items[0]?.rowCount, 60_000);
    assert.ok(!JSON.stringify(found).includes('LC0'), 'no row value (loyalty card ids) reaches the catalog');
    assert.equal(await first.stop(), 0);

    const second = start(['up', '--data-dir', dir, '--port', '0', '--json']);
    const [line] = await second.waitForOutput(/^\{.*\}$/m, 120_000);
    const report = JSON.parse(line) as {
      admin: { password?: string };
      datasets: string[];
      url: string;
      token: string;
      service: { running: boolean };
      key: string;
    };
    assert.equal(report.admin.password, undefined, 'the password is shown on the first run only');
    assert.equal(report.service.running, true);
    assert.equal(report.key, key, 'the demo key is created once and shown again, not one more key per start');
    assert.deepEqual(report.datasets, ['products', 'sales', 'stores', 'weather']);
    const all = (await (
      await fetch(`${report.url}/api/v1/datasets?provider=demo-retail`, {
        headers: { authorization: `Bearer ${report.token}` },
      })
    ).json()) as { items: unknown[] };
    assert.equal(all.items.length, 4, 'no duplicates after a second run');
    assert.equal(await second.stop(), 0);
  });

  it('with its port busy, fails before initialising anything, so the next run still shows the password', async () => {
    const fresh = join(dir, 'busy');
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen({ host: '127.0.0.1', port: 0 }, resolve));
    const port = (blocker.address() as AddressInfo).port;
    try {
      const busy = await run(['up', '--data-dir', fresh, '--port', String(port)]);
      assert.equal(busy.code, 2);
      assert.match(busy.stderr, new RegExp(`port ${port} on 127\\.0\\.0\\.1 is in use.*--port.*\\[INSITU_USAGE\\]`));
      assert.ok(!existsSync(join(fresh, 'config.yaml')), 'not initialised');
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
    const next = start(['up', '--data-dir', fresh, '--port', '0']);
    try {
      await next.waitForOutput(/Press Ctrl-C to stop/, 120_000);
      assert.match(next.output.stdout, /admin: +admin@insitu\.local +password: \S+/);
    } finally {
      await next.stop();
    }
    const third = start(['up', '--data-dir', fresh, '--port', '0']);
    try {
      await third.waitForOutput(/Press Ctrl-C to stop/, 120_000);
      assert.match(third.output.stdout, /to set a new one: insitu admin reset-password --data-dir /);
    } finally {
      await third.stop();
    }
  });

  it('as a real process: the printed service call works as printed, and Ctrl-C stops it cleanly', async () => {
    const child = spawn(process.execPath, [BIN, 'up', '--data-dir', dir, '--port', '0'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await waitFor(() => stdout.includes('Press Ctrl-C'), {
        timeoutMs: 120_000,
        what: `insitu up to be ready (stderr: ${stderr})`,
      });
      const curl = stdout.split('\n').find((l) => l.startsWith('curl ') && l.includes('/top-products'));
      assert.ok(curl);
      const { stdout: answer } = await promisify(execFile)('/bin/sh', ['-c', curl]);
      const products = JSON.parse(answer) as Array<{ product: string; units: number }>;
      assert.equal(products.length, 5);
      assert.ok(products[0] && products[0].units >= (products[4]?.units ?? 0), 'best sellers first');
      child.kill('SIGINT');
      assert.equal(await exited, 0);
      assert.match(stderr, /stopping/);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
  // Issue 14: Ctrl-C on `npm start` restarted the sandboxed application while shutting down.
  // A terminal's Ctrl-C signals the whole foreground process group, so the child gets its
  // own group and the group is signalled, as a terminal would.
  it('Ctrl-C stops insitu up without starting an application instance after the signal', async () => {
    const own = await makeTempDir('insitu-up-sigint-');
    const child = spawn(process.execPath, [BIN, 'up', '--data-dir', own, '--port', '0'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const log = join(own, 'insitu.log');
    const lines = () =>
      (existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : []).map(
        (l) => JSON.parse(l) as { time: string; msg: string },
      );
    try {
      await waitFor(() => stdout.includes('Press Ctrl-C'), {
        timeoutMs: 120_000,
        what: `insitu up to be ready (stderr: ${stderr})`,
      });
      await waitFor(() => lines().some((l) => l.msg === 'instance ready'), {
        timeoutMs: 60_000,
        what: 'the demo application to run',
      });
      const signalled = new Date().toISOString();
      process.kill(-(child.pid ?? 0), 'SIGINT');
      assert.equal(await exited, 0, stderr);
      const restarted = lines().filter(
        (l) => l.time >= signalled && ['instance started', 'instance ended; restarting after a delay'].includes(l.msg),
      );
      assert.deepEqual(restarted, [], 'no instance started or was scheduled to restart after the signal');
    } finally {
      if (child.exitCode === null) process.kill(-(child.pid ?? 0), 'SIGKILL');
      await removeDir(own);
    }
  });
});
