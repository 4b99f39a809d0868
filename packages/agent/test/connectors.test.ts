import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '@insitu/core';
import { DataApiError, readDataset, listDatasets, type DataValue, type ReadOptions } from '@insitu/sdk';
import {
  makeTempDir,
  removeDir,
  startMariaDb,
  startPostgres,
  type MariaDbInstance,
  type PostgresInstance,
} from '@insitu/test-helpers';
import { DataApiServer, DatasetRegistry, openSource, parseAgentConfig } from '../src/index.js';
import { compareText } from '../src/sources/row-engine.js';
import { mariadbSetup, postgresSetup, salesRows, writeCsv, writeSqlite, type SaleRow } from './fixtures.js';

const withMariaDb = process.env.INSITU_TEST_MARIADB !== '0';
const rows = salesRows(60);
const logger = createLogger({ name: 'test', level: 'silent' });

describe('connectors: the same data API request gives the same rows on SQLite, CSV, PostgreSQL and MariaDB', () => {
  let dir = '';
  let pg: PostgresInstance | undefined;
  let maria: MariaDbInstance | undefined;
  let registry: DatasetRegistry;
  let api: DataApiServer;
  let socketPath = '';
  let datasets: string[] = [];

  before(async () => {
    dir = await makeTempDir('insitu-agent-conn-');
    writeSqlite(join(dir, 'shop.db'), rows);
    writeCsv(join(dir, 'sales.csv'), rows);
    const [pgInstance, mariaInstance] = await Promise.all([
      startPostgres(),
      withMariaDb ? startMariaDb() : Promise.resolve(undefined),
    ]);
    pg = pgInstance;
    maria = mariaInstance;
    await pg.query(postgresSetup(rows, 'reader-pw'));
    if (maria) await maria.query(mariadbSetup(maria.database, rows, 'reader-pw'));
    const env = { READER_PW: 'reader-pw' };
    const config = parseAgentConfig(
      {
        sources: [
          { name: 'lite', kind: 'sqlite', path: 'shop.db', datasets: { sales: { name: 'sales_sqlite' } } },
          {
            name: 'files',
            kind: 'csv',
            files: './*.csv',
            datasets: { sales: { name: 'sales_csv', columns: { amount: { type: 'decimal' } } } },
          },
          {
            name: 'pg',
            kind: 'postgres',
            host: pg.host,
            port: pg.port,
            database: pg.database,
            user: 'reader',
            passwordEnv: 'READER_PW',
            datasets: { sales: { name: 'sales_pg' } },
          },
          ...(maria
            ? [
                {
                  name: 'maria',
                  kind: 'mysql',
                  host: maria.host,
                  port: maria.port,
                  database: maria.database,
                  user: 'reader',
                  passwordEnv: 'READER_PW',
                  datasets: { sales: { name: 'sales_mariadb' } },
                },
              ]
            : []),
        ],
      },
      { what: 'test config', baseDir: dir },
    );
    registry = new DatasetRegistry(
      config.sources.map((s) => openSource(s, config.limits, env)),
      logger,
    );
    const report = await registry.refresh();
    assert.deepEqual(
      report.sources.filter((s) => s.error),
      [],
      'every source introspects',
    );
    datasets = report.datasets.map((d) => d.name);
    api = new DataApiServer({ registry, declared: '*', limits: config.limits, logger });
    socketPath = join(dir, 'data.sock');
    await api.listen(socketPath);
  });

  after(async () => {
    await api?.close();
    await registry?.close();
    await Promise.all([pg?.stop(), maria?.stop()]);
    await removeDir(dir);
  });

  async function read(name: string, query: ReadOptions): Promise<DataValue[][]> {
    const out: DataValue[][] = [];
    for await (const row of readDataset(name, { ...query, socketPath, arrays: true })) out.push(row);
    return out;
  }

  /** Runs `query` on every source, checks they agree, and returns the common answer. */
  async function same(query: ReadOptions): Promise<DataValue[][]> {
    const answers = await Promise.all(datasets.map(async (name) => ({ name, rows: await read(name, query) })));
    const [first, ...others] = answers;
    assert.ok(first);
    for (const other of others)
      assert.deepEqual(other.rows, first.rows, `${other.name} differs from ${first.name} for ${JSON.stringify(query)}`);
    return first.rows;
  }

  const ids = (answer: DataValue[][]) => answer.map((r) => r[0]);
  const expectIds = (pick: (r: SaleRow) => boolean) => rows.filter(pick).map((r) => r.id);

  it('introspects the same columns and logical types everywhere', async () => {
    const listed = await listDatasets({ socketPath });
    assert.equal(listed.length, withMariaDb ? 4 : 3);
    for (const d of listed) {
      assert.equal(d.rowCount, rows.length, d.name);
      assert.deepEqual(
        d.columns.map((c) => `${c.name}:${c.type}${c.nullable ? '?' : ''}`),
        [
          'id:integer',
          'store:text',
          'city:text',
          'amount:decimal',
          'qty:integer',
          'price:number',
          'sold_on:date',
          'returned:boolean?',
          'note:text?',
        ],
        d.name,
      );
    }
  });

  it('reads every row with the same values, in wire form', async () => {
    const all = await same({ orderBy: 'id' });
    assert.equal(all.length, rows.length);
    const r = rows[11] as SaleRow;
    assert.deepEqual(all[11], [
      r.id,
      r.store,
      r.city,
      String(Number(r.amount)),
      r.qty,
      r.price,
      r.sold_on,
      r.returned,
      r.note,
    ]);
  });

  it('compares text case-sensitively and by code point', async () => {
    assert.deepEqual(
      ids(await same({ columns: ['id'], where: [{ column: 'city', op: '=', value: 'Berlin' }], orderBy: 'id' })),
      expectIds((r) => r.city === 'Berlin'),
    );
    assert.deepEqual(
      ids(await same({ columns: ['id'], where: [{ column: 'city', op: 'like', value: 'B%' }], orderBy: 'id' })),
      expectIds((r) => r.city.startsWith('B')),
    );
    assert.deepEqual(
      ids(await same({ columns: ['id'], where: [{ column: 'city', op: 'like', value: 'B\\_%' }], orderBy: 'id' })),
      expectIds((r) => r.city.startsWith('B_')),
    );
    assert.deepEqual(
      ids(await same({ columns: ['id'], where: [{ column: 'note', op: 'like', value: '%\\%' }], orderBy: 'id' })),
      expectIds((r) => r.note?.endsWith('%') === true),
    );
    assert.deepEqual(
      ids(await same({ columns: ['id'], where: [{ column: 'city', op: '>', value: 'Z' }], orderBy: 'id' })),
      expectIds((r) => compareText(r.city, 'Z') > 0),
    );
    const ordered = await same({ columns: ['city', 'id'], orderBy: ['city', 'id'] });
    const expected = [...rows].sort((a, b) => compareText(a.city, b.city) || a.id - b.id).map((r) => [r.city, r.id]);
    assert.deepEqual(ordered, expected);
  });

  it('filters with every operator', async () => {
    assert.deepEqual(
      ids(
        await same({
          columns: ['id'],
          where: [{ column: 'store', op: 'in', value: ['north', 'west'] }],
          orderBy: 'id',
        }),
      ),
      expectIds((r) => ['north', 'west'].includes(r.store)),
    );
    assert.deepEqual(
      ids(await same({ columns: ['id'], where: [{ column: 'store', op: '!=', value: 'north' }], orderBy: 'id' })),
      expectIds((r) => r.store !== 'north'),
    );
    assert.deepEqual(
      ids(await same({ columns: ['id'], where: [{ column: 'note', op: 'is null' }], orderBy: 'id' })),
      expectIds((r) => r.note === null),
    );
    assert.deepEqual(
      ids(
        await same({
          columns: ['id'],
          where: [
            { column: 'returned', op: 'is not null' },
            { column: 'returned', op: '=', value: true },
          ],
          orderBy: 'id',
        }),
      ),
      expectIds((r) => r.returned === true),
    );
    assert.deepEqual(
      ids(
        await same({
          columns: ['id'],
          where: [
            { column: 'amount', op: '>=', value: '50.5' },
            { column: 'qty', op: '<', value: 4 },
          ],
          orderBy: 'id',
        }),
      ),
      expectIds((r) => Number(r.amount) >= 50.5 && r.qty < 4),
    );
    assert.deepEqual(
      ids(await same({ columns: ['id'], where: [{ column: 'price', op: '<=', value: 2.5 }], orderBy: 'id' })),
      expectIds((r) => r.price <= 2.5),
    );
    assert.deepEqual(
      ids(
        await same({ columns: ['id'], where: [{ column: 'sold_on', op: '>=', value: '2025-10-01' }], orderBy: 'id' }),
      ),
      expectIds((r) => r.sold_on >= '2025-10-01'),
    );
  });

  it('orders with nulls first ascending and last descending, and pages with limit and offset', async () => {
    const asc = await same({ columns: ['note', 'id'], orderBy: ['note', 'id'] });
    assert.equal(asc[0]?.[0], null);
    const desc = await same({ columns: ['note', 'id'], orderBy: ['-note', 'id'] });
    assert.equal(desc.at(-1)?.[0], null);
    const page = await same({ columns: ['id'], orderBy: ['-amount', 'id'], limit: 5, offset: 10 });
    const expected = [...rows]
      .sort((a, b) => Number(b.amount) - Number(a.amount) || a.id - b.id)
      .slice(10, 15)
      .map((r) => [r.id]);
    assert.deepEqual(page, expected);
  });

  it('groups and aggregates at the source', async () => {
    const grouped = await same({
      groupBy: ['city'],
      aggregates: [
        { fn: 'count' },
        { fn: 'sum', column: 'qty', as: 'qty' },
        { fn: 'avg', column: 'price' },
        { fn: 'min', column: 'amount' },
        { fn: 'max', column: 'sold_on' },
        { fn: 'count', column: 'note' },
        { fn: 'sum', column: 'amount' },
      ],
      orderBy: 'city',
    });
    const cities = [...new Set(rows.map((r) => r.city))].sort(compareText);
    assert.deepEqual(
      grouped.map((g) => g[0]),
      cities,
    );
    const berlin = grouped.find((g) => g[0] === 'Berlin');
    const inBerlin = rows.filter((r) => r.city === 'Berlin');
    assert.equal(berlin?.[1], inBerlin.length);
    assert.equal(
      berlin?.[2],
      inBerlin.reduce((s, r) => s + r.qty, 0),
    );
    assert.equal(berlin?.[3], inBerlin.reduce((s, r) => s + r.price, 0) / inBerlin.length);
    const total = await same({
      aggregates: [{ fn: 'count' }, { fn: 'max', column: 'city' }, { fn: 'min', column: 'city' }],
      where: [{ column: 'qty', op: '>', value: 100 }],
    });
    assert.deepEqual(total, [[0, null, null]], 'aggregates over no rows give one row');
    const byTotal = await same({
      groupBy: ['store'],
      aggregates: [{ fn: 'sum', column: 'qty', as: 'total' }],
      orderBy: [{ column: 'total', direction: 'desc' }, 'store'],
      limit: 2,
    });
    assert.equal(byTotal.length, 2);
  });

  // The SQL sources read in worker threads, one connection each; with a pool of one, every
  // query after a cut, failed or timed-out one must find the worker (or its replacement) usable.
  const ENGINES = [
    {
      engine: 'PostgreSQL',
      skip: false,
      setup: async () => {
        assert.ok(pg);
        await pg.query(`CREATE SCHEMA bulk;
          CREATE TABLE bulk.numbers (n integer PRIMARY KEY, label text NOT NULL);
          INSERT INTO bulk.numbers SELECT g, 'label number ' || g || ' with padding to make rows longer' FROM generate_series(1, 100000) g;
          CREATE VIEW bulk.failing AS SELECT CASE WHEN g > 4500 THEN 1 / (g - g) ELSE g END AS n FROM generate_series(1, 6000) g;
          GRANT USAGE ON SCHEMA bulk TO reader; GRANT SELECT ON ALL TABLES IN SCHEMA bulk TO reader;`);
        return {
          name: 'bulk',
          kind: 'postgres',
          host: pg.host,
          port: pg.port,
          database: pg.database,
          schema: 'bulk',
          user: 'reader',
          passwordEnv: 'READER_PW',
          poolSize: 1,
        };
      },
      failure: /division by zero/,
    },
    {
      engine: 'MariaDB',
      skip: !withMariaDb,
      setup: async () => {
        assert.ok(maria);
        await maria.query(`CREATE DATABASE bulk;
          CREATE TABLE bulk.numbers (n INT NOT NULL PRIMARY KEY, label VARCHAR(64) NOT NULL);
          INSERT INTO bulk.numbers SELECT seq, CONCAT('label number ', seq, ' with padding to make rows longer') FROM seq_1_to_100000;
          CREATE VIEW bulk.failing AS SELECT IF(seq > 4500, (SELECT 1 UNION SELECT 2), seq) AS n FROM seq_1_to_6000;
          GRANT SELECT ON bulk.* TO 'reader'@'%'; GRANT SELECT ON bulk.* TO 'reader'@'localhost';`);
        return {
          name: 'bulk',
          kind: 'mysql',
          host: maria.host,
          port: maria.port,
          database: 'bulk',
          user: 'reader',
          passwordEnv: 'READER_PW',
          poolSize: 1,
        };
      },
      failure: /Subquery returns more than 1 row/,
    },
  ];
  for (const { engine, skip, setup, failure } of ENGINES) {
    it(
      `${engine} query workers survive a cut answer, a query that fails half-way and one that runs out of time`,
      { skip },
      async () => {
        // Its own schema or database, so the datasets of the other tests stay the same on every source.
        const config = parseAgentConfig({ sources: [await setup()] }, { what: 'test config', baseDir: dir });
        const bulk = new DatasetRegistry(
          config.sources.map((s) => openSource(s, config.limits, { READER_PW: 'reader-pw' })),
          logger,
        );
        // Two data APIs over the same source: a row cap for the first half, a short time limit for the second.
        const bulkApi = new DataApiServer({
          registry: bulk,
          declared: '*',
          limits: { ...config.limits, maxRows: 10_000 },
          logger,
        });
        const slowApi = new DataApiServer({
          registry: bulk,
          declared: '*',
          limits: { ...config.limits, queryTimeoutMs: 500 },
          logger,
        });
        const bulkSocket = join(dir, `bulk-${engine}.sock`);
        const slowSocket = join(dir, `slow-${engine}.sock`);
        try {
          assert.deepEqual(
            (await bulk.refresh()).sources.filter((s) => s.error),
            [],
          );
          await bulkApi.listen(bulkSocket);
          await slowApi.listen(slowSocket);
          const firstThree = async () => {
            const out: DataValue[] = [];
            for await (const row of readDataset('numbers', {
              socketPath: bulkSocket,
              arrays: true,
              columns: ['n'],
              where: [{ column: 'n', op: '<=', value: 3 }],
              orderBy: 'n',
            }))
              out.push(row[0] ?? null);
            return out;
          };

          let end: { rows: number; truncated: boolean } | undefined;
          let count = 0;
          for await (const _ of readDataset('numbers', {
            socketPath: bulkSocket,
            arrays: true,
            onEnd: (e) => (end = e),
          }))
            count++;
          assert.equal(count, 10_000);
          assert.deepEqual(end, { rows: 10_000, truncated: true });
          assert.deepEqual(await firstThree(), [1, 2, 3]);

          let before = 0;
          await assert.rejects(
            (async () => {
              for await (const _ of readDataset('failing', { socketPath: bulkSocket, arrays: true })) before++;
            })(),
            (e: unknown) =>
              e instanceof DataApiError && e.code === 'INSITU_DATA_SOURCE_UNAVAILABLE' && failure.test(e.message),
          );
          assert.ok(before <= 4500, `${before} rows before the failure`);
          assert.deepEqual(await firstThree(), [1, 2, 3]);

          const slow = readDataset('numbers', { socketPath: slowSocket, arrays: true });
          await slow.next();
          // The application stops reading; the deadline passes while the worker waits for a pull.
          await new Promise((resolve) => setTimeout(resolve, 900));
          await assert.rejects(
            (async () => {
              for await (const _ of slow) void _;
            })(),
            (e: unknown) => e instanceof DataApiError && e.code === 'INSITU_DATA_QUERY_TIMEOUT',
          );
          assert.deepEqual(await firstThree(), [1, 2, 3]);
        } finally {
          await bulkApi.close();
          await slowApi.close();
          await bulk.close();
        }
      },
    );
  }

  it('refuses unknown columns and injection attempts, and binds values', async () => {
    for (const name of datasets) {
      for (const query of [
        { columns: ['id', 'store"; DROP TABLE sales; --'] },
        { where: [{ column: 'city` = 1 OR 1=1 -- ', op: '=' as const, value: 'x' }] },
        { orderBy: 'id; DELETE FROM sales' },
        { groupBy: ['(SELECT 1)'], aggregates: [{ fn: 'count' as const }] },
      ]) {
        await assert.rejects(
          read(name, query),
          (e: unknown) => e instanceof DataApiError && e.code === 'INSITU_DATA_QUERY_INVALID',
          `${name}: ${JSON.stringify(query)}`,
        );
      }
      assert.deepEqual(
        await read(name, { columns: ['id'], where: [{ column: 'city', op: '=', value: "x' OR '1'='1" }] }),
        [],
      );
      assert.deepEqual(
        await read(name, { columns: ['id'], where: [{ column: 'city', op: 'like', value: "%' OR 1=1 --" }] }),
        [],
      );
      assert.deepEqual(
        ids(
          await read(name, { columns: ['id'], where: [{ column: 'city', op: '=', value: "O'Brien" }], orderBy: 'id' }),
        ),
        expectIds((r) => r.city === "O'Brien"),
      );
      await assert.rejects(
        read(name, { where: [{ column: 'qty', op: '=', value: '1 OR 1=1' }] }),
        (e: unknown) => e instanceof DataApiError && e.code === 'INSITU_DATA_QUERY_INVALID',
      );
    }
    // The tables are still whole.
    assert.equal((await same({ aggregates: [{ fn: 'count' }] }))[0]?.[0], rows.length);
  });
});
