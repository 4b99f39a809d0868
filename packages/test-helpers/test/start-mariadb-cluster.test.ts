import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { waitFor } from '@insitu/core';
import { startMariaDbCluster, type MariaDbCluster, type MariaDbInstance } from '../src/index.js';

async function rowValue(member: MariaDbInstance, id: number): Promise<string | undefined> {
  try {
    const value = (await member.query(`SELECT v FROM replicated WHERE id = ${id}`)).trim();
    return value === '' ? undefined : value;
  } catch {
    return undefined; // the table has not arrived yet
  }
}

describe('startMariaDbCluster', () => {
  let cluster: MariaDbCluster;

  before(async () => {
    cluster = await startMariaDbCluster({ members: 3 });
  });

  after(async () => {
    await cluster.stop();
  });

  it('starts a writable primary and two read-only replicas with distinct server ids', async () => {
    assert.equal(cluster.members.length, 3);
    const ids = await Promise.all(
      cluster.members.map(async (member) => (await member.query('SELECT @@server_id')).trim()),
    );
    assert.deepEqual(ids, ['1', '2', '3']);
    // @@read_only on its own: inside an aggregate query it has come back wrong.
    const readOnly = await Promise.all(
      cluster.members.map(async (member) => (await member.query('SELECT @@read_only')).trim()),
    );
    assert.deepEqual(readOnly, ['0', '1', '1']);
    assert.equal(new Set(cluster.members.map((member) => member.port)).size, 3);
  });

  it('replicates a row written on the primary to both replicas over GTID', async () => {
    const [primary, ...replicas] = cluster.members;
    assert.ok(primary !== undefined);
    await primary.query(
      "CREATE TABLE replicated (id INT PRIMARY KEY, v VARCHAR(20)); INSERT INTO replicated VALUES (1, 'hello')",
    );
    for (const replica of replicas) {
      assert.equal(await waitFor(() => rowValue(replica, 1), { what: `row on replica ${replica.serverId}` }), 'hello');
      const [status] = await replica.queryRows('SHOW SLAVE STATUS');
      assert.ok(status !== undefined);
      assert.equal(status['Using_Gtid'], 'Slave_Pos');
      assert.equal(status['Master_User'], cluster.replicationUser);
    }
  });

  it('a killed replica catches up after start()', async () => {
    const primary = cluster.members[0];
    const replica = cluster.members[2];
    assert.ok(primary !== undefined && replica !== undefined);
    await waitFor(() => rowValue(replica, 1), { what: 'first row on replica 3' });
    await replica.kill();
    await primary.query("INSERT INTO replicated VALUES (2, 'while down')");
    await replica.start();
    assert.equal(
      await waitFor(() => rowValue(replica, 2), { what: 'row written while replica 3 was down' }),
      'while down',
    );
  });
});
