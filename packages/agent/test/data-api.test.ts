import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '@insitu/core';
import { DataApiError, listDatasets, readDataset } from '@insitu/sdk';
import { makeTempDir, removeDir } from '@insitu/test-helpers';
import BetterSqlite3 from 'better-sqlite3';
import { DataApiServer, DatasetRegistry, openSource, parseAgentConfig } from '../src/index.js';
import { salesRows, writeCsv } from './fixtures.js';

const logger = createLogger({ name: 'test', level: 'silent' });

describe('data API limits and refusals', () => {
  let dir = '';
  let registry: DatasetRegistry;
  const servers: DataApiServer[] = [];

  async function serve(declared: ReadonlySet<string> | '*', limits: Record<string, number>): Promise<string> {
    const config = parseAgentConfig({ limits }, { what: 't', baseDir: dir });
    const api = new DataApiServer({ registry, declared, limits: config.limits, logger });
    const socketPath = join(dir, `api${servers.length}.sock`);
    await api.listen(socketPath);
    servers.push(api);
    return socketPath;
  }

  before(async () => {
    dir = await makeTempDir('insitu-agent-api-');
    const db = new BetterSqlite3(join(dir, 'big.db'));
    db.exec('CREATE TABLE numbers (n INTEGER NOT NULL, label TEXT NOT NULL)');
    const insert = db.prepare('INSERT INTO numbers VALUES (?, ?)');
    db.transaction(() => {
      for (let i = 0; i < 200_000; i++) insert.run(i, `label number ${i} with some padding to make rows longer`);
    })();
    db.close();
    writeCsv(join(dir, 'sales.csv'), salesRows(10));
    const config = parseAgentConfig(
      {
        sources: [
          { name: 'big', kind: 'sqlite', path: 'big.db' },
          { name: 'files', kind: 'csv', files: 'sales.csv' },
        ],
      },
      { what: 't', baseDir: dir },
    );
    registry = new DatasetRegistry(
      config.sources.map((s) => openSource(s, config.limits)),
      logger,
    );
    await registry.refresh();
  });

  after(async () => {
    for (const s of servers) await s.close();
    await registry?.close();
    await removeDir(dir);
  });

  it('refuses a dataset the manifest does not declare, and lists only declared ones', async () => {
    const socketPath = await serve(new Set(['sales']), {});
    assert.deepEqual(
      (await listDatasets({ socketPath })).map((d) => d.name),
      ['sales'],
    );
    await assert.rejects(
      readDataset('numbers', { socketPath }).next(),
      (e: unknown) => e instanceof DataApiError && e.code === 'INSITU_DATASET_NOT_DECLARED' && e.status === 403,
    );
    await assert.rejects(
      readDataset('nope', { socketPath }).next(),
      (e: unknown) => e instanceof DataApiError && e.code === 'INSITU_DATASET_NOT_DECLARED',
    );
  });

  it('cuts an answer at the row cap and says so', async () => {
    const socketPath = await serve('*', { maxRows: 1000 });
    let end: { rows: number; truncated: boolean } | undefined;
    let count = 0;
    for await (const _ of readDataset('numbers', { socketPath, arrays: true, onEnd: (e) => (end = e) })) count++;
    assert.equal(count, 1000);
    assert.deepEqual(end, { rows: 1000, truncated: true });
    let small: { rows: number; truncated: boolean } | undefined;
    for await (const _ of readDataset('numbers', { socketPath, limit: 10, onEnd: (e) => (small = e) })) count++;
    assert.deepEqual(small, { rows: 10, truncated: false });
  });

  it('stops a query at its time limit, even when the application reads slowly', async () => {
    const socketPath = await serve('*', { queryTimeoutMs: 300 });
    const rows = readDataset('numbers', { socketPath, arrays: true });
    await rows.next();
    // The application stops reading; the agent's send buffer fills and the deadline passes.
    await new Promise((resolve) => setTimeout(resolve, 600));
    await assert.rejects(
      (async () => {
        for await (const _ of rows) void _;
      })(),
      (e: unknown) => e instanceof DataApiError && e.code === 'INSITU_DATA_QUERY_TIMEOUT',
    );
    // The source is free again afterwards.
    const after = [];
    for await (const row of readDataset('numbers', {
      socketPath: await serve('*', {}),
      where: [{ column: 'n', op: '<', value: 3 }],
      orderBy: 'n',
    }))
      after.push(row.n);
    assert.deepEqual(after, [0, 1, 2]);
  });

  it('explains bad requests', async () => {
    const socketPath = await serve('*', {});
    const cases: Array<[object, RegExp]> = [
      [{ where: [{ column: 'n', op: 'like', value: '1%' }] }, /"like" works on text columns/],
      [{ aggregates: [{ fn: 'sum', column: 'label' }] }, /sum needs a numeric column/],
      [{ where: [{ column: 'n', op: 'is null', value: 1 }] }, /takes no value/],
      [{ where: [{ column: 'n', op: 'in', value: [] }] }, /non-empty array/],
      [{ where: [{ column: 'n', op: '~', value: 1 }] }, /op/],
      [{ groupBy: ['label'], columns: ['n'] }, /only grouped columns/],
      [{ orderBy: [{ column: 'n' }], groupBy: ['label'], aggregates: [{ fn: 'count' }] }, /not a grouped column/],
    ];
    for (const [query, pattern] of cases) {
      await assert.rejects(
        readDataset('numbers', { socketPath, ...query }).next(),
        (e: unknown) => e instanceof DataApiError && e.code === 'INSITU_DATA_QUERY_INVALID' && pattern.test(e.message),
        JSON.stringify(query),
      );
    }
  });
});
