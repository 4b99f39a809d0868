#!/usr/bin/env node
// bench/data-api: rows/s streamed from each connector into an application through the
// agent's data API, against reading the same source directly with its driver in this
// script. Run after `npm run build`:  node bench/data-api/run.mjs   (BENCH_ROWS=1000000, BENCH_REPEAT=3)
import { execFile } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';
import { promisify } from 'node:util';
import { cpus } from 'node:os';
import BetterSqlite3 from 'better-sqlite3';
import { parse } from 'csv-parse';
import { createReadStream } from 'node:fs';
import pg from 'pg';
import Cursor from 'pg-cursor';
import { createConnection } from 'mysql2';
import { createLogger } from '@insitu/core';
import { DataApiServer, DatasetRegistry, openSource, parseAgentConfig } from '@insitu/agent';
import { makeTempDir, removeDir, startMariaDb, startPostgres } from '@insitu/test-helpers';

const ROWS = Number(process.env.BENCH_ROWS ?? 1_000_000);
const REPEAT = Number(process.env.BENCH_REPEAT ?? 3);
if (process.argv.length > 2 || !Number.isInteger(ROWS) || ROWS < 1 || !Number.isInteger(REPEAT) || REPEAT < 1) {
  process.stderr.write(
    'usage: [BENCH_ROWS=1000000] [BENCH_REPEAT=3] node bench/data-api/run.mjs (both positive integers; no flags)\n',
  );
  process.exit(process.argv.includes('--help') ? 0 : 2);
}
const run = promisify(execFile);
const here = new URL('.', import.meta.url).pathname;

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

async function timeIt(fn) {
  const out = [];
  for (let i = 0; i < REPEAT; i++) {
    const started = process.hrtime.bigint();
    let rows = await fn();
    let ms = Number(process.hrtime.bigint() - started) / 1e6;
    // The reader process times itself, from its first request to its last row (node's own start-up is not the data API's).
    if (typeof rows === 'object') ({ rows, ms } = rows);
    if (rows !== ROWS) throw new Error(`read ${rows} rows, expected ${ROWS}`);
    out.push((rows / ms) * 1000);
  }
  return median(out);
}

const dir = await makeTempDir('insitu-bench-data-api-');
const log = (s) => process.stderr.write(`${s}\n`);
try {
  log(`preparing ${ROWS} rows in SQLite, CSV, PostgreSQL and MariaDB…`);
  const sqlitePath = join(dir, 'bench.db');
  const db = new BetterSqlite3(sqlitePath);
  db.exec(`CREATE TABLE items (id INTEGER PRIMARY KEY, store TEXT NOT NULL, qty INTEGER NOT NULL, price REAL NOT NULL, label TEXT NOT NULL);
    WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ${ROWS})
    INSERT INTO items SELECT i, 'store-' || (i % 50), i % 17, (i % 1000) / 4.0, 'item label ' || i FROM s;`);
  db.close();
  const csvPath = join(dir, 'items.csv');
  const csv = createWriteStream(csvPath);
  csv.write('id,store,qty,price,label\n');
  for (let i = 1; i <= ROWS; i++) {
    if (!csv.write(`${i},store-${i % 50},${i % 17},${(i % 1000) / 4},item label ${i}\n`)) await once(csv, 'drain');
  }
  csv.end();
  await once(csv, 'finish');

  const postgres = await startPostgres();
  const maria = await startMariaDb();
  try {
    await postgres.query(`CREATE TABLE items (id integer PRIMARY KEY, store text NOT NULL, qty integer NOT NULL, price double precision NOT NULL, label text NOT NULL);
      INSERT INTO items SELECT i, 'store-' || (i % 50), i % 17, (i % 1000) / 4.0, 'item label ' || i FROM generate_series(1, ${ROWS}) AS i;`);
    await maria.query(`CREATE TABLE items (id INT PRIMARY KEY, store VARCHAR(32) NOT NULL, qty INT NOT NULL, price DOUBLE NOT NULL, label VARCHAR(64) NOT NULL) DEFAULT CHARSET=utf8mb4;
      INSERT INTO items SELECT seq, CONCAT('store-', seq % 50), seq % 17, (seq % 1000) / 4.0, CONCAT('item label ', seq) FROM seq_1_to_${ROWS};`);

    const config = parseAgentConfig(
      {
        limits: { maxRows: ROWS * 2, queryTimeoutMs: 600_000 },
        sources: [
          { name: 'sqlite', kind: 'sqlite', path: sqlitePath, datasets: { items: { name: 'items_sqlite' } } },
          { name: 'csv', kind: 'csv', files: csvPath, datasets: { items: { name: 'items_csv' } } },
          {
            name: 'pg',
            kind: 'postgres',
            host: postgres.host,
            port: postgres.port,
            database: postgres.database,
            user: postgres.user,
            passwordEnv: 'BENCH_PG_PASSWORD',
            datasets: { items: { name: 'items_postgres' } },
          },
          {
            name: 'maria',
            kind: 'mysql',
            host: maria.host,
            port: maria.port,
            database: maria.database,
            user: maria.user,
            passwordEnv: 'BENCH_MARIA_PASSWORD',
            datasets: { items: { name: 'items_mariadb' } },
          },
        ],
      },
      { what: 'bench', baseDir: dir },
    );
    const env = { BENCH_PG_PASSWORD: postgres.password, BENCH_MARIA_PASSWORD: maria.password };
    const logger = createLogger({ name: 'bench', level: 'silent' });
    const registry = new DatasetRegistry(
      config.sources.map((s) => openSource(s, config.limits, env)),
      logger,
    );
    await registry.refresh();
    const api = new DataApiServer({ registry, declared: '*', limits: config.limits, logger });
    const socketPath = join(dir, 'data.sock');
    await api.listen(socketPath);

    async function viaApi(name, mode = 'arrays') {
      const { stdout } = await run(process.execPath, [join(here, 'reader.mjs'), socketPath, name, mode], {
        maxBuffer: 1 << 20,
      });
      return JSON.parse(stdout);
    }

    const direct = {
      sqlite: async () => {
        const conn = new BetterSqlite3(sqlitePath, { readonly: true });
        let n = 0;
        for (const _ of conn.prepare('SELECT id, store, qty, price, label FROM items').raw(true).iterate()) n++;
        conn.close();
        return n;
      },
      csv: async () => {
        let n = -1;
        for await (const _ of createReadStream(csvPath).pipe(parse({ delimiter: ',' }))) n++;
        return n;
      },
      postgres: async () => {
        const client = new pg.Client({
          host: postgres.host,
          port: postgres.port,
          database: postgres.database,
          user: postgres.user,
          password: postgres.password,
        });
        await client.connect();
        const cursor = client.query(
          new Cursor('SELECT id, store, qty, price, label FROM items', [], { rowMode: 'array' }),
        );
        let n = 0;
        for (;;) {
          const rows = await cursor.read(2000);
          if (rows.length === 0) break;
          n += rows.length;
        }
        await cursor.close();
        await client.end();
        return n;
      },
      mariadb: async () => {
        const conn = createConnection({
          host: maria.host,
          port: maria.port,
          database: maria.database,
          user: maria.user,
          password: maria.password,
        });
        let n = 0;
        for await (const _ of conn
          .query({ sql: 'SELECT id, store, qty, price, label FROM items', rowsAsArray: true })
          .stream())
          n++;
        conn.destroy();
        return n;
      },
    };

    const results = [];
    for (const source of ['sqlite', 'csv', 'postgres', 'mariadb']) {
      log(`measuring ${source}…`);
      const directRate = await timeIt(direct[source]);
      const apiRate = await timeIt(() => viaApi(`items_${source}`));
      const objectRate = await timeIt(() => viaApi(`items_${source}`, 'objects'));
      const rawRate = await timeIt(() => viaApi(`items_${source}`, 'raw'));
      results.push({ source, directRate, apiRate, objectRate, rawRate });
    }
    await api.close();
    await registry.close();

    const fmt = (n) => Math.round(n).toLocaleString('en-US');
    process.stdout.write(
      `data-api benchmark: ${ROWS.toLocaleString('en-US')} rows x 5 columns, median of ${REPEAT}, ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), node ${process.version}\n`,
    );
    process.stdout.write(
      '| source | direct driver rows/s | data API rows/s (arrays) | ratio | data API rows/s (objects) | ratio | agent alone (rows not parsed) | ratio |\n|---|---:|---:|---:|---:|---:|---:|---:|\n',
    );
    for (const r of results) {
      process.stdout.write(
        `| ${r.source} | ${fmt(r.directRate)} | ${fmt(r.apiRate)} | ${(r.apiRate / r.directRate).toFixed(2)} | ${fmt(r.objectRate)} | ${(r.objectRate / r.directRate).toFixed(2)} | ${fmt(r.rawRate)} | ${(r.rawRate / r.directRate).toFixed(2)} |\n`,
      );
    }
  } finally {
    await Promise.all([postgres.stop(), maria.stop()]);
  }
} finally {
  await removeDir(dir);
}
