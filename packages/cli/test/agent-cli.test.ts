import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import Database from 'better-sqlite3';
import { after, before, describe, it } from 'node:test';
import { waitFor } from '@insitu/core';
import { defaultServerConfig, initPlatform, issueSession, startServer, type RunningServer } from '@insitu/server';
import { makeTempDir, removeDir } from '@insitu/test-helpers';
import { main } from '../src/main.js';

function capture(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
  return { stream, text: () => text };
}

async function api<T>(url: string, method: string, path: string, token: string, body?: unknown): Promise<T> {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  return (await response.json()) as T;
}

describe('insitu agent and insitu app dev', () => {
  let dir = '';
  let server: RunningServer;
  let token = '';
  let providerId = '';

  before(async () => {
    dir = await makeTempDir('insitu-cli-agent-');
    await mkdir(join(dir, 'platform'));
    server = await startServer({
      config: defaultServerConfig({
        listen: { host: '127.0.0.1', port: 0 },
        log: { level: 'silent' },
        auth: { passwordCost: 10 },
      }),
      dataDir: join(dir, 'platform'),
    });
    const init = await initPlatform(server.store, { adminEmail: 'admin@example.test' }, { N: 1024, r: 8, p: 1 });
    const admin = (await issueSession(server.store, init.admin, 3600_000)).token;
    const org = await api<{ id: string }>(server.url, 'POST', '/api/v1/orgs', admin, {
      name: 'acme',
      displayName: 'Acme',
    });
    providerId = (
      await api<{ id: string }>(server.url, 'POST', '/api/v1/providers', admin, { orgId: org.id, name: 'acme-data' })
    ).id;
    token = (await api<{ token: string }>(server.url, 'POST', '/api/v1/tokens', admin, { providerId })).token;
    writeFileSync(join(dir, 'sales.csv'), 'id,store,amount\n1,north,10.5\n2,south,3\n3,north,1.5\n');
    writeFileSync(
      join(dir, 'agent.yaml'),
      `providerId: ${providerId}\nsources:\n  - name: files\n    kind: csv\n    files: ./*.csv\n    datasets:\n      sales: { description: Sales, tags: [retail] }\n`,
    );
  });

  after(async () => {
    await server?.close();
    await removeDir(dir);
  });

  it('enrols once, publishes the metadata, and reuses its credential', async () => {
    const args = [
      'agent',
      '--platform',
      server.url,
      '--config',
      join(dir, 'agent.yaml'),
      '--data-dir',
      join(dir, 'agent'),
      '--once',
      '--json',
      '--log-level',
      'silent',
    ];
    const out = capture();
    assert.equal(
      await main([...args, '--token', token], { stdout: out.stream, stderr: new PassThrough(), env: {}, cwd: dir }),
      0,
    );
    const first = JSON.parse(out.text()) as { enrolled: boolean; providerId: string; sync: { published: string[] } };
    assert.deepEqual([first.enrolled, first.providerId, first.sync.published], [true, providerId, ['sales']]);
    const again = capture();
    assert.equal(await main(args, { stdout: again.stream, stderr: new PassThrough(), env: {}, cwd: dir }), 0);
    assert.equal((JSON.parse(again.text()) as { enrolled: boolean }).enrolled, false);
  });

  it('rejects an invalid agent.yaml with a message naming the option', async () => {
    writeFileSync(join(dir, 'bad.yaml'), 'sources:\n  - name: files\n    kind: csv\n    file: ./*.csv\n');
    const err = capture();
    const code = await main(
      ['agent', '--platform', server.url, '--config', join(dir, 'bad.yaml'), '--data-dir', join(dir, 'agent')],
      { stdout: new PassThrough(), stderr: err.stream, env: {}, cwd: dir },
    );
    assert.equal(code, 2);
    assert.match(err.text(), /did you mean "files"/);
    assert.match(err.text(), /INSITU_CONFIG_INVALID/);
  });

  it('app dev runs an application in the sandbox against sample data and serves it on localhost', async () => {
    const app = join(dir, 'my-app');
    mkdirSync(app);
    writeFileSync(
      join(app, 'insitu.json'),
      JSON.stringify({
        name: 'my-app',
        version: '0.1.0',
        runtime: 'node',
        entry: 'main.mjs',
        datasets: [{ provider: 'acme-data', dataset: 'sales' }],
        endpoints: [{ method: 'GET', path: '/totals' }],
      }),
    );
    writeFileSync(
      join(app, 'main.mjs'),
      `import { readDataset, serve } from '@insitu/sdk';
serve({ 'GET /totals': async () => { const out = []; for await (const row of readDataset('sales', { groupBy: ['store'], aggregates: [{ fn: 'sum', column: 'amount', as: 'total' }], orderBy: 'store' })) out.push(row); return out; } });
`,
    );
    const out = capture();
    const controller = new AbortController();
    const running = main(['app', 'dev', app, '--data', join(dir, 'sales.csv'), '--log-level', 'silent'], {
      stdout: out.stream,
      stderr: new PassThrough(),
      env: {},
      cwd: dir,
      signal: controller.signal,
    });
    try {
      await waitFor(() => /^curl (\S+)$/m.test(out.text()), { timeoutMs: 60_000, what: 'app dev to print its URL' });
      assert.match(out.text(), /running in the sandbox: http:\/\/127\.0\.0\.1:\d+\//);
      const url = (/^curl (\S+)$/m.exec(out.text()) as RegExpExecArray)[1] as string;
      const response = await fetch(url);
      assert.equal(response.status, 200);
      assert.deepEqual(await response.json(), [
        { store: 'north', total: 12 },
        { store: 'south', total: 3 },
      ]);
    } finally {
      controller.abort();
      assert.equal(await running, 0);
    }
  });

  it('app dev --watch reloads the application when one of its files changes', async () => {
    const app = join(dir, 'watched-app');
    mkdirSync(app);
    writeFileSync(
      join(app, 'insitu.json'),
      JSON.stringify({
        name: 'watched-app',
        version: '0.1.0',
        runtime: 'node',
        entry: 'main.mjs',
        datasets: [{ provider: 'acme-data', dataset: 'sales' }],
        endpoints: [{ method: 'GET', path: '/hello' }],
      }),
    );
    const source = (word: string) =>
      `import { serve } from '@insitu/sdk';\nserve({ 'GET /hello': () => ({ word: ${JSON.stringify(word)} }) });\n`;
    writeFileSync(join(app, 'main.mjs'), source('first'));
    const out = capture();
    const controller = new AbortController();
    const running = main(['app', 'dev', app, '--watch', '--data', join(dir, 'sales.csv'), '--log-level', 'silent'], {
      stdout: out.stream,
      stderr: new PassThrough(),
      env: {},
      cwd: dir,
      signal: controller.signal,
    });
    try {
      await waitFor(() => /^curl (\S+)$/m.test(out.text()), { timeoutMs: 60_000, what: 'app dev to print its URL' });
      assert.match(out.text(), /watching .*watched-app/);
      const url = (/^curl (\S+)$/m.exec(out.text()) as RegExpExecArray)[1] as string;
      const word = async () => {
        try {
          const response = await fetch(url);
          return response.ok ? ((await response.json()) as { word: string }).word : undefined;
        } catch {
          return undefined;
        }
      };
      assert.equal(await word(), 'first');
      writeFileSync(join(app, 'main.mjs'), source('second'));
      await waitFor(() => /^reloaded watched-app@0\.1\.0/m.test(out.text()), { timeoutMs: 60_000, what: 'the reload' });
      await waitFor(async () => (await word()) === 'second', { timeoutMs: 60_000, what: 'the changed answer' });
    } finally {
      controller.abort();
      assert.equal(await running, 0);
    }
  });

  it('app dev --data NAME=FILE.db exposes every table of the SQLite file, as the agent does', async () => {
    const file = join(dir, 'shop.db');
    const db = new Database(file);
    db.exec(`CREATE TABLE sales (id INTEGER PRIMARY KEY, store TEXT, amount REAL);
INSERT INTO sales (store, amount) VALUES ('north', 10.5), ('south', 3), ('north', 1.5);
CREATE TABLE stores (name TEXT PRIMARY KEY, city TEXT);
INSERT INTO stores VALUES ('north', 'Basel'), ('south', 'Lugano');`);
    db.close();
    const app = join(dir, 'shop-app');
    mkdirSync(app);
    writeFileSync(
      join(app, 'insitu.json'),
      JSON.stringify({
        name: 'shop-app',
        version: '0.1.0',
        runtime: 'node',
        entry: 'main.mjs',
        datasets: [
          { provider: 'acme-data', dataset: 'sales' },
          { provider: 'acme-data', dataset: 'stores' },
        ],
        endpoints: [{ method: 'GET', path: '/cities' }],
      }),
    );
    writeFileSync(
      join(app, 'main.mjs'),
      `import { readDataset, serve } from '@insitu/sdk';
serve({ 'GET /cities': async () => {
  const cities = {};
  for await (const s of readDataset('stores')) cities[s.name] = s.city;
  const out = [];
  for await (const row of readDataset('sales', { groupBy: ['store'], aggregates: [{ fn: 'sum', column: 'amount', as: 'total' }], orderBy: 'store' })) out.push({ city: cities[row.store], total: row.total });
  return out;
} });
`,
    );
    const out = capture();
    const err = capture();
    const controller = new AbortController();
    const running = main(['app', 'dev', app, '--data', 'shop=shop.db', '--log-level', 'silent'], {
      stdout: out.stream,
      stderr: err.stream,
      env: {},
      cwd: dir,
      signal: controller.signal,
    });
    try {
      await waitFor(
        async () => {
          const settled = await Promise.race([running, Promise.resolve(undefined)]);
          if (settled !== undefined) throw new Error(`app dev ended with ${settled}: ${err.text()}`);
          return /^curl (\S+)$/m.test(out.text());
        },
        { timeoutMs: 60_000, what: 'app dev to print its URL' },
      );
      assert.match(out.text(), /^sample datasets: sales, stores$/m);
      assert.doesNotMatch(err.text(), /no sample data/);
      const url = (/^curl (\S+)$/m.exec(out.text()) as RegExpExecArray)[1] as string;
      const response = await fetch(url);
      assert.equal(response.status, 200);
      assert.deepEqual(await response.json(), [
        { city: 'Basel', total: 12 },
        { city: 'Lugano', total: 3 },
      ]);
    } finally {
      controller.abort();
      assert.equal(await running, 0);
    }
  });
});
