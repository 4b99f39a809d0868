#!/usr/bin/env node
// bench/catalog: load N datasets of 20 columns into the catalog and measure search.
// For each dialect (SQLite file, private MariaDB): insert rate, then the median and p99
// latency of a mix of search requests through the real HTTP API (one keep-alive client,
// sequential), and the same searches straight on the repository as the baseline, so the
// ratio shows what HTTP, auth and JSON add. Usage:
//   node bench/catalog/run.mjs [--datasets 100000] [--searches 2000] [--dialect sqlite|mysql|both]
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import os from 'node:os';
import { seededRandom } from '@insitu/core';
import { openStore } from '@insitu/store';
import { defaultServerConfig, initPlatform, issueSession, startServer } from '@insitu/server';
import { makeTempDir, removeDir, startMariaDb } from '@insitu/test-helpers';
import { benchArgs } from '../args.mjs';

const values = benchArgs('node bench/catalog/run.mjs [--datasets N] [--searches N] [--dialect sqlite|mysql|both]', {
  datasets: { default: '100000', kind: 'count', help: 'datasets loaded into the catalog' },
  searches: { default: '2000', kind: 'count', help: 'searches timed per dialect' },
  dialect: { default: 'both', kind: 'dialect', help: 'sqlite, mysql (a private MariaDB) or both' },
});
const N = Number(values.datasets);
const SEARCHES = Number(values.searches);

const DOMAINS = [
  'sales',
  'weather',
  'energy',
  'health',
  'traffic',
  'finance',
  'retail',
  'telecom',
  'sensor',
  'logistics',
  'hr',
  'marketing',
  'water',
  'air',
  'soil',
  'shipping',
  'census',
  'crime',
  'school',
  'tourism',
];
const ENTITIES = [
  'orders',
  'readings',
  'customers',
  'invoices',
  'trips',
  'stations',
  'patients',
  'meters',
  'events',
  'payments',
  'shipments',
  'visits',
  'calls',
  'alerts',
  'forecasts',
  'inventory',
  'prices',
  'claims',
  'sessions',
  'devices',
];
const WORDS =
  'data daily hourly monthly regional national city county district europe north south east west average total count rate index score level measure record sample survey report summary history archive open public internal quarterly annual weekly raw clean aggregated estimated observed predicted verified anonymised pseudonymised gross net value volume share growth change trend peak minimum maximum median variance quality coverage source provider station network grid zone area site facility unit device product service customer account member household business sector industry market channel region country'.split(
    ' ',
  );
const COLUMNS = [
  'id',
  'created_at',
  'updated_at',
  'city',
  'country',
  'region',
  'amount',
  'currency',
  'quantity',
  'price',
  'temperature',
  'humidity',
  'pressure',
  'wind_speed',
  'status',
  'category',
  'customer_id',
  'order_id',
  'product_id',
  'store_id',
  'latitude',
  'longitude',
  'timestamp',
  'day',
  'month',
  'year',
  'value',
  'unit',
  'sensor_id',
  'reading',
  'kwh',
  'co2',
  'pm25',
  'no2',
  'age_band',
  'gender',
  'postcode',
  'duration_s',
  'distance_km',
  'speed',
  'vehicle_type',
  'route',
  'station_id',
  'account_id',
  'balance',
  'interest_rate',
  'score',
  'risk_class',
  'ward',
  'diagnosis_code',
];
const TYPES = ['integer', 'number', 'decimal', 'text', 'boolean', 'date', 'timestamp'];
const TAGS = Array.from(
  { length: 60 },
  (_, i) => `${DOMAINS[i % DOMAINS.length]}${i < 20 ? '' : `-${Math.floor(i / 20)}`}`,
);

function makeDataset(i, random) {
  const domain = DOMAINS[Math.floor(random() * DOMAINS.length)];
  const entity = ENTITIES[Math.floor(random() * ENTITIES.length)];
  const words = Array.from(
    { length: 8 + Math.floor(random() * 12) },
    () => WORDS[Math.floor(Math.pow(random(), 1.5) * WORDS.length)],
  );
  const columns = [];
  const used = new Set();
  while (columns.length < 20) {
    const name = COLUMNS[Math.floor(random() * COLUMNS.length)];
    const unique = used.has(name) ? `${name}_${columns.length}` : name;
    used.add(unique);
    columns.push({ name: unique, type: TYPES[Math.floor(random() * TYPES.length)], nullable: random() < 0.5 });
  }
  const tags = [
    ...new Set([domain, TAGS[Math.floor(random() * TAGS.length)], TAGS[Math.floor(random() * TAGS.length)]]),
  ];
  return {
    name: `${domain}_${entity}_${i}`,
    input: {
      sourceKind: 'postgres',
      description: `${domain} ${entity}: ${words.join(' ')}`,
      tags,
      columns,
      rowCount: Math.floor(random() * 1e7),
      visibility: random() < 0.9 ? 'public' : 'org',
    },
  };
}

const QUERIES = [
  ['one common word', () => 'q=sales'],
  ['one rare word', () => 'q=pseudonymised'],
  ['two words', () => 'q=energy%20readings'],
  ['prefix', () => 'q=temp'],
  ['word + tag', () => 'q=daily&tag=weather'],
  ['column filter', () => 'column=pm25'],
  ['word + column', () => 'q=city&column=kwh'],
  ['three words', () => 'q=regional%20average%20price'],
  ['browse page 5', () => 'limit=20&cursor=' + Buffer.from(JSON.stringify({ o: 80, k: 'x' })).toString('base64url')],
];

function stats(samples) {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return { median: at(0.5), p99: at(0.99), n: sorted.length };
}

function searchParams(query) {
  const params = new URLSearchParams(query);
  return {
    q: params.get('q') ?? undefined,
    tags: params.getAll('tag').length ? params.getAll('tag') : undefined,
    column: params.get('column') ?? undefined,
    offset: params.get('cursor') ? 80 : 0,
    limit: 20,
  };
}

async function runDialect(dialect) {
  const dir = await makeTempDir('insitu-bench-catalog-');
  let maria;
  try {
    let storeConfig;
    if (dialect === 'sqlite') storeConfig = { kind: 'sqlite', path: join(dir, 'platform.db') };
    else {
      maria = await startMariaDb({
        database: 'bench',
        extraConfig: { innodb_buffer_pool_size: '512M', innodb_flush_log_at_trx_commit: 2 },
      });
      storeConfig = {
        kind: 'mysql',
        host: maria.host,
        port: maria.port,
        user: maria.user,
        password: maria.password,
        database: maria.database,
      };
    }
    const store = await openStore(storeConfig);
    const kdf = { N: 1024, r: 8, p: 1 };
    const init = await initPlatform(store, { adminEmail: 'bench@insitu.test' }, kdf);
    const org = await store.orgs.create({ name: 'bench', displayName: 'Bench', status: 'active' });
    await store.users.addRole(org.id, init.admin.id, 'user');
    const providers = [];
    for (let p = 0; p < 50; p++)
      providers.push(
        (
          await store.providers.create({
            orgId: org.id,
            name: `bench-${p}`,
            displayName: `Bench ${p}`,
            description: '',
          })
        ).id,
      );

    const random = seededRandom(42);
    const batch = 500;
    const t0 = performance.now();
    let lastReport = t0;
    for (let i = 0; i < N; i += batch) {
      await store.transaction(async (tx) => {
        for (let j = i; j < Math.min(N, i + batch); j++) {
          const { name, input } = makeDataset(j, random);
          await tx.datasets.upsert(providers[j % providers.length], name, input);
        }
      });
      if (performance.now() - lastReport > 5000) {
        lastReport = performance.now();
        process.stderr.write(`  ${dialect}: ${i + batch}/${N} datasets loaded\n`);
      }
    }
    const loadSeconds = (performance.now() - t0) / 1000;
    const insertRate = N / loadSeconds;

    const server = await startServer({
      config: defaultServerConfig({ listen: { port: 0 }, log: { level: 'silent' } }),
      dataDir: dir,
      store,
      logger: undefined,
    });
    const session = await issueSession(store, init.admin, 3_600_000);
    // A regular (non-admin) viewer exercises the visibility filter, as most callers would.
    const viewer = await store.users.create({ email: 'viewer@insitu.test', name: 'Viewer', passwordHash: 'x' });
    await store.users.addRole(org.id, viewer.id, 'user');
    const viewerSession = await issueSession(store, viewer, 3_600_000);
    void session;

    const perQuery = {};
    const api = [];
    const direct = [];
    // Warm-up, then measure: each round runs every query once through HTTP and once directly.
    for (let round = -5; round < Math.ceil(SEARCHES / QUERIES.length); round++) {
      for (const [label, make] of QUERIES) {
        let query = make();
        if (label.startsWith('browse')) {
          const first = await fetch(`${server.url}/api/v1/datasets?limit=20`, {
            headers: { authorization: `Bearer ${viewerSession.token}` },
          }).then((r) => r.json());
          query = `limit=20&cursor=${first.nextCursor}`;
        }
        const a = performance.now();
        const response = await fetch(`${server.url}/api/v1/datasets?${query}`, {
          headers: { authorization: `Bearer ${viewerSession.token}` },
        });
        const body = await response.json();
        const apiMs = performance.now() - a;
        if (response.status !== 200) throw new Error(`${label}: ${response.status} ${JSON.stringify(body)}`);
        const b = performance.now();
        await store.datasets.search({ ...searchParams(query), viewer: { all: false, orgIds: [org.id] } });
        const directMs = performance.now() - b;
        if (round < 0) continue;
        (perQuery[label] ??= []).push(apiMs);
        api.push(apiMs);
        direct.push(directMs);
      }
    }
    await server.close();
    await store.close();
    return {
      dialect,
      loadSeconds,
      insertRate,
      api: stats(api),
      direct: stats(direct),
      perQuery: Object.fromEntries(Object.entries(perQuery).map(([k, v]) => [k, stats(v)])),
    };
  } finally {
    await maria?.stop();
    await removeDir(dir);
  }
}

const dialects = values.dialect === 'both' ? ['sqlite', 'mysql'] : [values.dialect];
const results = [];
for (const dialect of dialects) {
  process.stderr.write(`${dialect}: loading ${N} datasets x 20 columns\n`);
  results.push(await runDialect(dialect));
}
const fmt = (ms) => `${ms.toFixed(2)} ms`;
console.log(
  `\nbench/catalog — ${N} datasets x 20 columns, ${SEARCHES} searches per dialect; ${os.cpus().length} cores, ${os.cpus()[0]?.model ?? ''}, node ${process.version}, ${new Date().toISOString()}`,
);
for (const r of results) {
  console.log(`\n[${r.dialect}] insert: ${Math.round(r.insertRate)} datasets/s (${r.loadSeconds.toFixed(1)} s)`);
  console.log(
    `[${r.dialect}] search via HTTP API: median ${fmt(r.api.median)}, p99 ${fmt(r.api.p99)}  |  repository only (baseline): median ${fmt(r.direct.median)}, p99 ${fmt(r.direct.p99)}  |  API/baseline median ratio ${(r.api.median / r.direct.median).toFixed(2)}`,
  );
  for (const [label, s] of Object.entries(r.perQuery))
    console.log(`    ${label.padEnd(16)} median ${fmt(s.median)}  p99 ${fmt(s.p99)}`);
}
if (results.length === 2) {
  const [a, b] = results;
  console.log(
    `\nratio mysql/sqlite: search median ${(b.api.median / a.api.median).toFixed(2)}, p99 ${(b.api.p99 / a.api.p99).toFixed(2)}, insert rate ${(b.insertRate / a.insertRate).toFixed(2)}`,
  );
}
