// Node-local readiness (issue 11's finding): a shared outage must not take every node out of
// the load balancer at once. Two nodes on one real MariaDB and one real etcd, with different
// grace windows: the database stopped briefly keeps the generous node ready ("degraded") while
// calls answer coded errors; coordination gone past its grace makes a node unready, and both
// come back when the dependency does.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from '@insitu/core';
import { openStore, type Store } from '@insitu/store';
import { startEtcd, startMariaDb, type EtcdMember, type MariaDbInstance } from '@insitu/test-helpers';
import { buildServer, defaultServerConfig, initPlatform, issueSession, type App } from '../src/index.js';
import { FAST_KDF, TEST_PASSWORD } from './fixtures.js';

const METRICS_TOKEN = 'readiness-metrics-token-0123456789abcdef';

interface Readyz {
  status: number;
  code?: string;
  checks: Record<string, string>;
}

async function readyz(app: App): Promise<Readyz> {
  const response = await app.inject({ method: 'GET', url: '/readyz' });
  const body = JSON.parse(response.body) as {
    checks?: Record<string, string>;
    error?: { code: string; details?: { checks?: Record<string, string> } };
  };
  return {
    status: response.statusCode,
    ...(body.error ? { code: body.error.code } : {}),
    checks: body.checks ?? body.error?.details?.checks ?? {},
  };
}

describe('readiness is node-local, with grace windows for shared dependencies', { timeout: 240_000 }, () => {
  let db: MariaDbInstance | undefined;
  let etcd: EtcdMember | undefined;
  const stores: Store[] = [];
  const apps: App[] = [];
  let patient: App; // database grace 120 s, coordination grace 5 s
  let strict: App; // database grace 1 s, coordination grace 120 s
  let token = '';

  before(async () => {
    [db, etcd] = await Promise.all([startMariaDb(), startEtcd()]);
    const build = async (databaseGraceMs: number, coordinationGraceMs: number, id: string) => {
      const store = await openStore({
        kind: 'mysql',
        host: db?.host ?? '',
        port: db?.port ?? 0,
        user: db?.user ?? '',
        password: db?.password ?? '',
        database: db?.database ?? '',
      });
      stores.push(store);
      const config = defaultServerConfig({
        log: { level: 'silent' },
        auth: { passwordCost: 10 },
        metrics: { token: METRICS_TOKEN },
        // Generous probe timeout: a loaded test machine answers slowly; a stopped dependency fails fast or times out.
        readiness: { probeTimeoutMs: 5000, databaseGraceMs, coordinationGraceMs },
        cluster: {
          coordination: 'etcd',
          etcdEndpoints: [etcd?.endpoint ?? ''],
          secret: 'readiness-test-secret-0123456789abcdef0123',
        },
      });
      const app = await buildServer({ config, store, nodeId: id });
      apps.push(app);
      return app;
    };
    patient = await build(120_000, 5000, 'node_patient');
    strict = await build(1000, 120_000, 'node_strict');
    const init = await initPlatform(
      stores[0] as Store,
      { adminEmail: 'root@platform.test', password: TEST_PASSWORD },
      FAST_KDF,
    );
    token = (await issueSession(stores[0] as Store, init.admin, 3_600_000)).token;
  });

  after(async () => {
    for (const app of apps) await app.close().catch(() => undefined);
    for (const store of stores) await store.close().catch(() => undefined);
    await etcd?.stop();
    await db?.stop();
  });

  it('both nodes are ready with every dependency answering', async () => {
    for (const app of [patient, strict]) {
      const state = await waitFor(
        async () => {
          const s = await readyz(app);
          return s.status === 200 ? s : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 200, what: 'the node to be ready' },
      );
      assert.deepEqual(state.checks, { database: 'ok', coordination: 'ok' });
    }
  });

  it('the database stopped: the node within its grace stays ready (degraded) and calls answer coded errors; the strict node goes unready', async () => {
    await db?.kill('SIGKILL');
    try {
      const seen: Readyz[] = [];
      await waitFor(
        async () => {
          const state = await readyz(patient);
          seen.push(state);
          return state.checks.database === 'degraded';
        },
        { timeoutMs: 30_000, intervalMs: 100, what: 'the patient node to report the database degraded' },
      );
      assert.ok(
        seen.every((s) => s.status === 200),
        `the patient node stayed ready: ${JSON.stringify(seen.filter((s) => s.status !== 200))}`,
      );
      const call = await patient.inject({
        method: 'GET',
        url: '/api/v1/users/me',
        headers: { authorization: `Bearer ${token}` },
      });
      assert.equal(call.statusCode, 503, call.body);
      assert.equal((JSON.parse(call.body) as { error: { code: string } }).error.code, 'INSITU_DATABASE_UNAVAILABLE');
      const metrics = (
        await patient.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${METRICS_TOKEN}` } })
      ).body;
      assert.match(metrics, /insitu_readiness_dependency_up\{dependency="database"\} 0/);
      assert.match(metrics, /insitu_ready 1/);

      const gone = await waitFor(
        async () => {
          const state = await readyz(strict);
          return state.status === 503 ? state : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 100, what: 'the strict node (1 s grace) to go unready' },
      );
      assert.equal(gone.code, 'INSITU_NOT_READY');
      assert.equal(gone.checks.database, 'down');
      assert.equal((await readyz(patient)).status, 200, 'still ready within its 120 s grace');
    } finally {
      await db?.start();
    }
    for (const app of [patient, strict])
      await waitFor(async () => (await readyz(app)).checks.database === 'ok', {
        timeoutMs: 60_000,
        intervalMs: 200,
        what: 'the database to answer again',
      });
    assert.equal((await readyz(strict)).status, 200);
    const call = await patient.inject({
      method: 'GET',
      url: '/api/v1/users/me',
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(call.statusCode, 200, call.body);
  });

  it('coordination gone past its grace makes that node unready; back when etcd is', async () => {
    await etcd?.kill('SIGKILL');
    try {
      const gone = await waitFor(
        async () => {
          const state = await readyz(patient);
          return state.status === 503 ? state : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 100, what: 'the node with 5 s coordination grace to go unready' },
      );
      assert.equal(gone.code, 'INSITU_NOT_READY');
      assert.equal(gone.checks.coordination, 'down');
      const other = await readyz(strict);
      assert.equal(other.status, 200, 'within its 120 s coordination grace');
      assert.equal(other.checks.coordination, 'degraded');
    } finally {
      await etcd?.start();
    }
    await waitFor(async () => (await readyz(patient)).status === 200, {
      timeoutMs: 60_000,
      intervalMs: 200,
      what: 'the node to be ready once etcd answers',
    });
  });
});
