import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
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
import type { Browser } from 'playwright-core';
import { stringify } from 'yaml';
import { CONSOLE_OUTPUT, checkPage, contextFor, launchChromium, signIn } from './console-browser.js';
import { initPlatform, InsituProcess, ok, rest, signInAs, startServer } from './support.js';

/*
 * Switchover and acknowledge through the public REST API (what the console's Operations
 * page calls): a platform on a replicated MariaDB whose dbmanager elects itself through
 * etcd; `insitu server` holds the dbmanager's admin token and passes the administrator's
 * command to the elected manager. Only platform admins may; bad input and unknown members
 * are coded; every request, refused or done, is in the event log.
 */
describe('database switchover and acknowledge through the REST API', () => {
  let cluster: MariaDbCluster;
  let etcd: EtcdMember;
  let dir = '';
  let manager: InsituProcess;
  let server: InsituProcess;
  let url = '';
  let token = '';
  let outsider = '';
  let admin = { email: '', password: '' };
  let browser: Browser | undefined;

  before(async () => {
    [cluster, etcd, dir] = await Promise.all([
      startMariaDbCluster({
        memberOptions: () => ({ extraConfig: { read_only: 'ON', rpl_semi_sync_slave_enabled: 'ON' } }),
      }),
      startEtcd(),
      makeTempDir('insitu-e2e-db-admin-'),
    ]);
    const [primary] = cluster.members;
    assert.ok(primary);
    const managerToken = 'e2e-admin-token-0123456789abcdef';
    const env = {
      INSITU_DBMANAGER_PASSWORD: primary.password,
      INSITU_DBMANAGER_REPLICATION_PASSWORD: cluster.replicationPassword,
      INSITU_DBMANAGER_TOKEN: managerToken,
      INSITU_DATABASE_PASSWORD: primary.password,
      INSITU_DATABASE_MANAGER_TOKEN: managerToken,
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
    admin = await initPlatform(platform, {
      args: ['--database-url', `mysql://root@${primary.host}:${primary.port}/${primary.database}`],
      env,
    });
    const config = join(platform, 'config.yaml');
    const text = (await readFile(config, 'utf8')).replace('database:\n', 'database:\n  followPrimary: platform\n');
    await writeFile(config, text + stringify({ cluster: { coordination: 'etcd', etcdEndpoints: [etcd.endpoint] } }));
    ({ server, url } = await startServer(platform, env));
    token = await signInAs(url, admin);
    const signup = await ok(
      url,
      'POST',
      '/api/v1/signup',
      undefined,
      { org: { name: 'acme' }, user: { email: 'ann@acme.test', name: 'Ann', password: 'a-long-enough-password' } },
      201,
    );
    await ok(url, 'POST', `/api/v1/orgs/${signup.org.id}/approve`, token, undefined);
    outsider = signup.session.token;
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    await manager?.stop();
    await Promise.all([cluster?.stop(), etcd?.stop()]);
    if (dir) await removeDir(dir);
  });

  const primaryNow = async (): Promise<string | undefined> =>
    (await ok(url, 'GET', '/api/v1/cluster', token, undefined)).database.topology?.primary as string | undefined;

  it('refuses anyone but platform admins, bad input and unknown members, with coded errors', async () => {
    await waitFor(async () => (await primaryNow()) === 'db1', { timeoutMs: 30_000, what: 'db1 published as primary' });
    for (const [who, bearer, status] of [
      ['anonymous', undefined, 401],
      ['an organisation admin', outsider, 403],
    ] as const) {
      const answer = await rest(url, 'POST', '/api/v1/cluster/database/switchover', bearer, { to: 'db2' });
      assert.equal(answer.status, status, who);
      const ack = await rest(url, 'POST', '/api/v1/cluster/database/ack', bearer, {});
      assert.equal(ack.status, status, who);
    }
    for (const body of [{}, { to: '' }, { to: 'db2; DROP' }, { to: 'db2', extra: 1 }]) {
      const answer = await rest(url, 'POST', '/api/v1/cluster/database/switchover', token, body);
      assert.equal(answer.status, 400, JSON.stringify(body));
      assert.equal(answer.body.error.code, 'INSITU_VALIDATION');
    }
    const unknown = await rest(url, 'POST', '/api/v1/cluster/database/switchover', token, { to: 'db9' });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.code, 'INSITU_DBMANAGER_MEMBER_NOT_FOUND');
    const self = await rest(url, 'POST', '/api/v1/cluster/database/switchover', token, { to: 'db1' });
    assert.ok(self.status >= 400 && self.status < 500, `switchover to the primary itself: ${self.status}`);
    assert.equal(await primaryNow(), 'db1', 'nothing changed');
  });

  it('switches over to a replica, acknowledges, and records both under the admin', async () => {
    const result = await ok(url, 'POST', '/api/v1/cluster/database/switchover', token, { to: 'db2' });
    assert.equal(result.from, 'db1');
    assert.equal(result.to, 'db2');
    await waitFor(async () => (await primaryNow()) === 'db2', { timeoutMs: 30_000, what: 'db2 published as primary' });
    // The platform keeps writing on the new primary.
    await waitFor(
      async () => (await rest(url, 'POST', '/api/v1/orgs', token, { name: 'after-switch' })).status === 201,
      {
        timeoutMs: 30_000,
        what: 'a write after the switchover',
      },
    );
    const ack = await ok(url, 'POST', '/api/v1/cluster/database/ack', token, {});
    assert.equal(typeof ack.cooldownWasActive, 'boolean');

    const me = await ok(url, 'GET', '/api/v1/users/me', token, undefined);
    const events = (await ok(url, 'GET', '/api/v1/events?kind=database.&limit=50', token, undefined)).items as {
      kind: string;
      message: string;
    }[];
    const kinds = events.map((e) => e.kind);
    assert.ok(kinds.includes('database.switchover'), kinds.join(', '));
    assert.ok(kinds.includes('database.ack'), kinds.join(', '));
    assert.ok(kinds.includes('database.switchover-refused'), 'the refused requests are recorded too');
    for (const e of events) assert.ok(e.message.includes(me.user.id), e.message);
    const hidden = await ok(url, 'GET', '/api/v1/events?kind=database.', outsider, undefined);
    assert.deepEqual(hidden.items, [], 'platform events are for platform admins');
  });

  it('in the console, an administrator switches over and acknowledges, each after a confirmation', async () => {
    await mkdir(CONSOLE_OUTPUT, { recursive: true });
    browser = await launchChromium();
    const page = await (await contextFor(browser)).newPage();
    await signIn(page, url, admin.email, admin.password);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Operations', exact: true }).click();
    await page.getByRole('heading', { name: 'Database actions' }).waitFor();
    await page
      .getByRole('table', { name: 'Recent manager events, newest first' })
      .getByRole('row')
      .filter({ hasText: 'switchover db1 → db2 done' })
      .waitFor();
    await page.getByLabel('Switch over to member').fill('db3');
    await page.getByRole('button', { name: 'Switch over', exact: true }).click();
    const dialog = page.getByRole('dialog', { name: 'Switch the database over to db3?' });
    await dialog.waitFor();
    await checkPage(page, '21-operations-switchover-confirm');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'hidden' });
    assert.equal(await primaryNow(), 'db2', 'cancel changes nothing');
    await page.getByRole('button', { name: 'Switch over', exact: true }).click();
    await dialog.getByRole('button', { name: 'Switch over now' }).click();
    await page.getByRole('status').filter({ hasText: 'Switched over db2 → db3' }).waitFor({ timeout: 60_000 });
    await waitFor(async () => (await primaryNow()) === 'db3', { timeoutMs: 30_000, what: 'db3 published as primary' });

    await page.getByRole('button', { name: 'Acknowledge the last failover' }).click();
    await page
      .getByRole('dialog', { name: 'Acknowledge the last failover?' })
      .getByRole('button', { name: 'Acknowledge' })
      .click();
    await page
      .getByRole('status')
      .filter({ hasText: /^Acknowledged/ })
      .waitFor();
    await checkPage(page, '22-operations-database-actions');
  });
});
