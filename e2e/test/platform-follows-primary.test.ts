import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { waitFor } from '@insitu/core';
import {
  makeTempDir,
  removeDir,
  startEtcd,
  startMariaDbCluster,
  type EtcdMember,
  type MariaDbCluster,
} from '@insitu/test-helpers';
import { stringify } from 'yaml';
import { initPlatform, InsituProcess, ok, rest, signInAs, startServer } from './support.js';

/*
 * The platform on a replicated MariaDB: the dbmanager elects itself through etcd and
 * publishes the primary; `insitu server` follows it. Kill the primary while a writer
 * creates organisations through the API: writes resume on the promoted replica without
 * restarting the server, and every acknowledged write is there.
 */
describe('the platform follows its database primary across a failover', () => {
  let cluster: MariaDbCluster;
  let etcd: EtcdMember;
  let dir = '';
  let manager: InsituProcess;
  let server: InsituProcess;
  let url = '';
  let token = '';
  let env: Record<string, string> = {};

  before(async () => {
    [cluster, etcd, dir] = await Promise.all([
      startMariaDbCluster({
        memberOptions: () => ({ extraConfig: { read_only: 'ON', rpl_semi_sync_slave_enabled: 'ON' } }),
      }),
      startEtcd(),
      makeTempDir('insitu-e2e-failover-'),
    ]);
    const [primary] = cluster.members;
    assert.ok(primary);
    env = {
      INSITU_DBMANAGER_PASSWORD: primary.password,
      INSITU_DBMANAGER_REPLICATION_PASSWORD: cluster.replicationPassword,
      INSITU_DBMANAGER_TOKEN: 'e2e-admin-token-0123456789abcdef',
      INSITU_DATABASE_PASSWORD: primary.password,
      INSITU_CLUSTER_SECRET: 'e2e-cluster-secret-0123456789abcdef0123',
    };
    await writeFile(
      join(dir, 'dbmanager.yaml'),
      stringify({
        members: cluster.members.map((m, i) => ({ name: `db${i + 1}`, host: m.host, port: m.port })),
        credentials: { user: 'root' },
        replication: { user: cluster.replicationUser },
        probe: { intervalMs: 200, connectTimeoutMs: 500 },
        detection: { suspectIntervalMs: 100 },
        coord: { kind: 'etcd', endpoints: [etcd.endpoint], leaseTtlMs: 2000 },
        admin: { port: 0 },
      }),
    );
    manager = new InsituProcess('dbmanager', ['dbmanager', '--config', join(dir, 'dbmanager.yaml'), '--json'], env);
    await manager.waitForOutput(/"adminUrl"/);

    const platform = join(dir, 'platform');
    const admin = await initPlatform(platform, {
      args: ['--database-url', `mysql://root@${primary.host}:${primary.port}/${primary.database}`],
      env,
    });
    // The cluster settings an operator adds to config.yaml: etcd, and the primary to follow.
    const config = join(platform, 'config.yaml');
    const text = (await readFile(config, 'utf8')).replace('database:\n', 'database:\n  followPrimary: platform\n');
    await writeFile(config, text + stringify({ cluster: { coordination: 'etcd', etcdEndpoints: [etcd.endpoint] } }));
    ({ server, url } = await startServer(platform, env));
    token = await signInAs(url, admin);
  });

  after(async () => {
    await server?.stop();
    await manager?.stop();
    await Promise.all([cluster?.stop(), etcd?.stop()]);
    if (dir) await removeDir(dir);
  });

  it('keeps writing through the API after the primary dies, and loses no acknowledged write', async () => {
    const acknowledged: string[] = [];
    let n = 0;
    const write = async (): Promise<boolean> => {
      const name = `org-${n++}`;
      const result = await rest(url, 'POST', '/api/v1/orgs', token, { name }).catch(() => ({
        status: 0,
        body: undefined,
      }));
      if (result.status === 201) acknowledged.push(name);
      return result.status === 201;
    };
    for (let i = 0; i < 20; i++) assert.equal(await write(), true);
    const before = acknowledged.length;
    await cluster.members[0]?.kill('SIGKILL');
    const killedAt = Date.now();
    await waitFor(async () => (await write()) && acknowledged.length > before, {
      timeoutMs: 60_000,
      intervalMs: 20,
      what: 'writes to resume on the new primary',
    });
    const resumedAfterMs = Date.now() - killedAt;
    for (let i = 0; i < 10; i++) await write();
    const names = new Set<string>();
    let cursor: string | undefined;
    do {
      const page = await ok(url, 'GET', `/api/v1/orgs?limit=100${cursor ? `&cursor=${cursor}` : ''}`, token, undefined);
      for (const org of page.items as Array<{ name: string }>) names.add(org.name);
      cursor = page.nextCursor;
    } while (cursor);
    assert.deepEqual(
      acknowledged.filter((name) => !names.has(name)),
      [],
      'every acknowledged write survived',
    );
    const view = await ok(url, 'GET', '/api/v1/cluster', token, undefined);
    assert.equal(view.coordination.kind, 'etcd');
    assert.equal(view.database.cluster, 'platform');
    assert.notEqual(view.database.topology?.primary, 'db1', 'the published topology names the new primary');
    assert.ok(
      (view.database.events as Array<{ type: string }>).some((e) => /failover|promot/i.test(e.type)),
      'the failover is in the cluster view',
    );
    assert.equal(server.running, true, 'no restart was needed');
    console.log(`writes resumed ${resumedAfterMs} ms after the primary was killed`);
  });
});
