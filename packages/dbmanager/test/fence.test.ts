import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createConnection, type Connection } from 'mysql2/promise';
import { waitFor } from '@insitu/core';
import type { AlertMessage } from '@insitu/notify';
import {
  startMariaDb,
  startWebhookReceiver,
  type MariaDbCluster,
  type MariaDbInstance,
  type WebhookReceiver,
} from '@insitu/test-helpers';
import { connectMember } from '../src/sql.js';
import {
  DbAdminClient,
  createCoordinator,
  fenceMember,
  startDbManager,
  type Coordinator,
  type RunningDbManager,
} from '../src/index.js';
import {
  ADMIN_TOKEN,
  MANAGER_PASSWORD,
  MANAGER_USER,
  readmeManagerGrants,
  startTestCluster,
  testConfig,
  testLogger,
} from './support.js';

// Regression (chaos runs): fenceMember returned, and the manager recorded a `fence`, while
// read_only=1 had not taken effect. What holds SET GLOBAL read_only=1 up on MariaDB 10.11
// (measured): a `LOCK TABLES … WRITE` or a running write statement (both wait for
// lock_wait_timeout); FLUSH TABLES WITH READ LOCK from another connection does NOT (the
// SET returns at once). The holder here is a session of the manager's own account, which
// the fence's kill passes spare by design.

const LOCK_GRANT = (database: string) => `GRANT SELECT, LOCK TABLES ON \`${database}\`.* TO '${MANAGER_USER}'@'%'`;

async function managerSession(member: MariaDbInstance): Promise<Connection> {
  const connection = await createConnection({
    host: member.host,
    port: member.port,
    user: MANAGER_USER,
    password: MANAGER_PASSWORD,
    database: member.database,
  });
  connection.on('error', () => undefined);
  return connection;
}

async function readOnlyOf(member: MariaDbInstance): Promise<string> {
  return (await member.query('SELECT @@global.read_only')).trim();
}

describe('fenceMember: reports read_only=1 only when the member says so', () => {
  let db: MariaDbInstance;
  const open = () =>
    connectMember(
      { name: 'db', host: db.host, port: db.port, login: { user: MANAGER_USER, password: MANAGER_PASSWORD } },
      { connectTimeoutMs: 1000, queryTimeoutMs: 5000 },
    );

  before(async () => {
    db = await startMariaDb({ readOnly: false });
    await db.query(
      [
        ...readmeManagerGrants(MANAGER_PASSWORD),
        LOCK_GRANT(db.database),
        'CREATE TABLE fence_block (id INT PRIMARY KEY) ENGINE=InnoDB',
      ].join('; '),
    );
  });

  after(async () => {
    await db?.stop();
  });

  it('a lock that outlasts the deadline: fence reported failed, member still writable; lock gone: fence verified', async () => {
    const holder = await managerSession(db);
    try {
      await holder.query('LOCK TABLES fence_block WRITE');
      const failed = await fenceMember(open, [MANAGER_USER], { deadlineMs: 1000 });
      assert.equal(failed.readOnly, false, 'not reported as fenced');
      assert.match(failed.error ?? '', /read_only is still 0.*Lock wait timeout/);
      assert.notEqual(failed.unreachable, true);
      assert.equal(await readOnlyOf(db), '0', 'the member is indeed still writable');
      await holder.query('UNLOCK TABLES');
    } finally {
      await holder.end().catch(() => undefined);
    }
    const done = await fenceMember(open, [MANAGER_USER], { deadlineMs: 1000 });
    assert.equal(done.readOnly, true, done.error);
    assert.equal(done.error, undefined);
    assert.equal(await readOnlyOf(db), '1');
    await db.query('SET GLOBAL read_only = 0');
  });

  it('FLUSH TABLES WITH READ LOCK held elsewhere does not hold read_only=1 up on this MariaDB (why the test uses LOCK TABLES)', async () => {
    const holder = await managerSession(db);
    try {
      await db.query(`GRANT RELOAD ON *.* TO '${MANAGER_USER}'@'%'`);
      await holder.query('FLUSH TABLES WITH READ LOCK');
      const result = await fenceMember(open, [MANAGER_USER], { deadlineMs: 1000 });
      assert.equal(result.readOnly, true);
      assert.equal(await readOnlyOf(db), '1');
    } finally {
      await holder.end().catch(() => undefined);
      await db.query(`REVOKE RELOAD ON *.* FROM '${MANAGER_USER}'@'%'; SET GLOBAL read_only = 0`);
    }
  });

  it('a member that cannot be reached: reported failed and unreachable, never fenced', async () => {
    const result = await fenceMember(
      () =>
        connectMember(
          { name: 'db', host: db.host, port: db.port, login: { user: MANAGER_USER, password: 'wrong-password' } },
          { connectTimeoutMs: 1000, queryTimeoutMs: 1000 },
        ),
      [MANAGER_USER],
      { deadlineMs: 500 },
    );
    assert.equal(result.readOnly, false);
    assert.equal(result.unreachable, true);
    assert.match(result.error ?? '', /Access denied/);
  });
});

describe('dbmanager: a fence that does not take effect is a fence-failed, retried until it does', () => {
  let cluster: MariaDbCluster;
  let coordinator: Coordinator;
  let running: RunningDbManager;
  let client: DbAdminClient;
  let hook: WebhookReceiver;

  const member = (index: number): MariaDbInstance => {
    const found = cluster.members[index];
    if (found === undefined) throw new Error(`no member ${index}`);
    return found;
  };
  const messages = () => hook.accepted.map((h) => h.body as AlertMessage).filter((m) => m.condition === 'fence-failed');

  before(async () => {
    hook = await startWebhookReceiver();
    cluster = await startTestCluster();
    const config = testConfig(cluster, { notify: { webhooks: [{ url: hook.url }] } });
    coordinator = await createCoordinator({ kind: 'memory', endpoints: [] });
    running = await startDbManager(config, { coordinator, logger: testLogger() });
    client = new DbAdminClient({ url: running.adminUrl, token: ADMIN_TOKEN });
    await waitFor(
      async () => {
        const status = await client.status();
        return (
          status.primary === 'db1' &&
          status.members[0]?.readOnly === false &&
          status.members.slice(1).every((m) => m.role === 'replica' && m.replication?.sql === 'Yes')
        );
      },
      { timeoutMs: 30_000, what: 'db1 primary and writable, replicas running' },
    );
  });

  after(async () => {
    await running?.close();
    await coordinator?.close();
    await cluster?.stop();
    await hook?.stop();
  });

  it('db2 made writable while a spared session holds a table lock: fence-failed (event + one alert), no fence event; lock released: fence, resolved', async () => {
    await member(0).query('CREATE TABLE fence_block (id INT PRIMARY KEY) ENGINE=InnoDB');
    await waitFor(async () => (await member(1).query("SHOW TABLES LIKE 'fence_block'")).trim() === 'fence_block', {
      timeoutMs: 20_000,
      what: 'the table on db2',
    });
    await member(1).query(`SET SESSION sql_log_bin = 0; ${LOCK_GRANT(member(1).database)}`);
    const holder = await managerSession(member(1));
    try {
      await member(1).query('SET GLOBAL read_only = 0');
      await holder.query('LOCK TABLES fence_block WRITE');
      const failures = await waitFor(
        async () => {
          const failed = (await client.events(500)).filter((e) => e.type === 'fence-failed' && e.member === 'db2');
          return failed.length >= 2 ? failed : undefined;
        },
        { timeoutMs: 60_000, what: 'two failed fence attempts on db2' },
      );
      assert.deepEqual(
        failures.slice(0, 2).map((e) => e.details?.['retryInMs']),
        [500, 1000],
        'back-off doubles',
      );
      assert.match(String(failures[0]?.details?.['error']), /read_only is still 0/);
      const events = await client.events(500);
      assert.equal(
        events.filter((e) => e.type === 'fence' && e.member === 'db2').length,
        0,
        'no fence recorded while db2 is writable',
      );
      assert.equal(await readOnlyOf(member(1)), '0', 'db2 is indeed still writable');
      await waitFor(() => messages().find((m) => m.status === 'firing'), {
        timeoutMs: 20_000,
        what: 'the fence-failed alert',
      });
      await holder.query('UNLOCK TABLES');
    } finally {
      await holder.end().catch(() => undefined);
    }
    const fence = await waitFor(
      async () => (await client.events(500)).find((e) => e.type === 'fence' && e.member === 'db2'),
      { timeoutMs: 30_000, what: 'the fence of db2 once the lock is gone' },
    );
    assert.ok(fence.details?.['attempts'] !== undefined && Number(fence.details['attempts']) > 2, 'fenced at a retry');
    assert.equal(await readOnlyOf(member(1)), '1');
    await waitFor(() => messages().find((m) => m.status === 'resolved'), {
      timeoutMs: 20_000,
      what: 'fence-failed resolved',
    });
    assert.equal(messages().filter((m) => m.status === 'firing').length, 1, 'one firing message, not one per attempt');
    assert.equal(messages().filter((m) => m.status === 'resolved').length, 1);
  });
});
