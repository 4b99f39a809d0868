import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { waitFor } from '@insitu/core';
import { startEtcd, startEtcdCluster, type EtcdCluster, type EtcdMember } from '../src/index.js';
import { httpRequest } from '../src/http-request.js';
import { isGone } from '../src/process-tree.js';

const base64 = (text: string): string => Buffer.from(text).toString('base64');

/** PUT through etcd's v3 HTTP gateway. */
async function put(endpoint: string, key: string, value: string): Promise<void> {
  const response = await httpRequest(`${endpoint}/v3/kv/put`, {
    method: 'POST',
    body: JSON.stringify({ key: base64(key), value: base64(value) }),
  });
  if (response.status !== 200) throw new Error(`put ${key} on ${endpoint}: ${response.status} ${response.body}`);
}

/** Linearizable GET through etcd's v3 HTTP gateway; undefined when the key is absent. */
async function get(endpoint: string, key: string): Promise<string | undefined> {
  const response = await httpRequest(`${endpoint}/v3/kv/range`, {
    method: 'POST',
    body: JSON.stringify({ key: base64(key) }),
  });
  if (response.status !== 200) throw new Error(`get ${key} on ${endpoint}: ${response.status} ${response.body}`);
  const body = JSON.parse(response.body) as { kvs?: Array<{ value?: string }> };
  const value = body.kvs?.[0]?.value;
  return value === undefined ? undefined : Buffer.from(value, 'base64').toString('utf8');
}

describe('startEtcdCluster', () => {
  let cluster: EtcdCluster;

  before(async () => {
    cluster = await startEtcdCluster({ members: 3 });
  });

  after(async () => {
    await cluster.stop();
  });

  it('starts three healthy members on distinct loopback ports that agree on data', async () => {
    assert.equal(cluster.members.length, 3);
    assert.equal(new Set(cluster.endpoints).size, 3);
    for (const endpoint of cluster.endpoints) assert.match(endpoint, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.ok(!cluster.endpoints.some((endpoint) => endpoint.endsWith(':2379')));
    for (const member of cluster.members) assert.equal(await member.health(), true, `${member.name} healthy`);
    const [first, , third] = cluster.endpoints;
    assert.ok(first !== undefined && third !== undefined);
    await put(first, 'greeting', 'hello');
    assert.equal(await get(third, 'greeting'), 'hello');
  });

  it('keeps serving with one member killed, and the member rejoins after start()', async () => {
    const [victim, second, third] = cluster.members;
    assert.ok(victim !== undefined && second !== undefined && third !== undefined);
    const pid = victim.pid;
    assert.ok(pid !== undefined);
    await victim.kill();
    assert.equal(victim.running, false);
    assert.ok(isGone(pid));
    assert.equal(await victim.health(), false);
    // If the victim led, the other two need an election (about a second) first.
    await waitFor(async () => (await second.health()) && (await third.health()), { what: 'two members healthy' });
    await waitFor(
      async () => {
        await put(second.endpoint, 'during-outage', 'still writable');
        return true;
      },
      { what: 'a write with one member down' },
    );
    assert.equal(await get(third.endpoint, 'during-outage'), 'still writable');

    await victim.start();
    assert.equal(await victim.health(), true);
    assert.equal(await get(victim.endpoint, 'during-outage'), 'still writable');
  });
});

describe('startEtcd', () => {
  let etcd: EtcdMember;

  before(async () => {
    etcd = await startEtcd();
  });

  after(async () => {
    await etcd.stop();
  });

  it('starts one healthy member that stores data and is deleted by stop()', async () => {
    assert.equal(await etcd.health(), true);
    await put(etcd.endpoint, 'k', 'v');
    assert.equal(await get(etcd.endpoint, 'k'), 'v');
    const pid = etcd.pid;
    assert.ok(pid !== undefined);
    await etcd.stop();
    assert.ok(isGone(pid));
    await assert.rejects(stat(dirname(etcd.dataDir)), { code: 'ENOENT' });
  });
});
