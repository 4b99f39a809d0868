import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { waitFor } from '@insitu/core';
import { createEtcdCoordinator, type Coordinator } from '@insitu/coord';
import {
  makeTempDir,
  removeDir,
  startEtcd,
  startMariaDbCluster,
  type EtcdMember,
  type MariaDbCluster,
} from '@insitu/test-helpers';
import { stringify } from 'yaml';
import { main } from '../src/index.js';

const BIN = fileURLToPath(new URL('../../bin/insitu.js', import.meta.url));
const TOKEN = 'ha-test-admin-token-0123456789';

/** Run the CLI in-process; resolves with the exit code and what it printed. */
async function cli(argv: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const sink = (append: (text: string) => void) =>
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        append(chunk.toString('utf8'));
        callback();
      },
    });
  const code = await main(argv, { stdout: sink((t) => (stdout += t)), stderr: sink((t) => (stderr += t)), env });
  return { code, stdout, stderr };
}

interface ManagerProcess {
  id: string;
  child: ChildProcess;
  adminUrl: string;
  output: () => string;
}

/** `insitu dbmanager --config FILE --json` as a real process; resolves once it printed its ready line. */
async function spawnManager(id: string, dir: string, env: NodeJS.ProcessEnv): Promise<ManagerProcess> {
  const config = join(dir, `${id}.yaml`);
  const child = spawn(process.execPath, [BIN, 'dbmanager', '--config', config, '--json'], {
    env: { PATH: process.env.PATH, ...env, INSITU_DBMANAGER_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const ready = await waitFor(
    () => {
      if (child.exitCode !== null) throw new Error(`dbmanager ${id} exited: ${output}`);
      const line = output.split('\n').find((l) => l.includes('"adminUrl"'));
      return line === undefined ? undefined : (JSON.parse(line) as { manager: string; adminUrl: string });
    },
    { timeoutMs: 30_000, what: `dbmanager ${id} to start` },
  );
  assert.equal(ready.manager, id);
  return { id, child, adminUrl: ready.adminUrl, output: () => output };
}

function killed(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve();
      return;
    }
    child.once('exit', () => resolve());
    child.kill(signal);
  });
}

describe('insitu dbmanager on two nodes: one acts, the other takes over', () => {
  let cluster: MariaDbCluster;
  let etcd: EtcdMember;
  let dir: string;
  let configFile: string;
  let env: NodeJS.ProcessEnv;
  let coordinator: Coordinator;
  const managers: ManagerProcess[] = [];

  before(async () => {
    [cluster, etcd, dir] = await Promise.all([
      startMariaDbCluster({
        memberOptions: () => ({ extraConfig: { read_only: 'ON', rpl_semi_sync_slave_enabled: 'ON' } }),
      }),
      startEtcd(),
      makeTempDir('insitu-dbm-ha-'),
    ]);
    const config = {
      members: cluster.members.map((member, index) => ({
        name: `db${index + 1}`,
        host: member.host,
        port: member.port,
      })),
      credentials: { user: 'root' },
      replication: { user: cluster.replicationUser },
      probe: { intervalMs: 200, connectTimeoutMs: 500 },
      detection: { suspectIntervalMs: 100 },
      coord: { kind: 'etcd', endpoints: [etcd.endpoint], leaseTtlMs: 2000 },
      admin: { port: 0 },
    };
    configFile = join(dir, 'dbmanager.yaml');
    await writeFile(configFile, stringify(config));
    for (const id of ['mgr-a', 'mgr-b'])
      await writeFile(join(dir, `${id}.yaml`), stringify({ ...config, managerId: id }));
    env = {
      INSITU_DBMANAGER_PASSWORD: cluster.members[0]?.password,
      INSITU_DBMANAGER_REPLICATION_PASSWORD: cluster.replicationPassword,
      INSITU_DBMANAGER_TOKEN: TOKEN,
    };
    coordinator = createEtcdCoordinator({ endpoints: [etcd.endpoint] });
  });

  after(async () => {
    for (const manager of managers) {
      if (manager.child.signalCode === null) manager.child.kill('SIGCONT');
      await killed(manager.child, 'SIGKILL');
    }
    await coordinator?.close();
    await Promise.all([cluster?.stop(), etcd?.stop()]);
    if (dir) await removeDir(dir);
  });

  async function leader(): Promise<string | undefined> {
    const observer = await coordinator.observe('dbmanager.platform');
    try {
      return await waitFor(() => observer.leader(), { timeoutMs: 10_000, what: 'an elected manager' });
    } finally {
      await observer.close();
    }
  }

  async function events(
    type: string,
  ): Promise<Array<{ type: string; manager: string; details: Record<string, unknown> }>> {
    const all = [...(await coordinator.list('dbmanager/platform/events/')).values()].map(
      (v) => JSON.parse(v) as { type: string; manager: string; details: Record<string, unknown> },
    );
    return all.filter((e) => e.type === type);
  }

  it('`insitu db status` finds the elected manager through etcd; killing it hands over within its lease', async () => {
    managers.push(await spawnManager('mgr-a', dir, env));
    managers.push(await spawnManager('mgr-b', dir, env));
    const first = await leader();
    assert.ok(first === 'mgr-a' || first === 'mgr-b');
    const status = await waitFor(
      async () => {
        const result = await cli(['db', 'status', '--config', configFile, '--json'], env);
        if (result.code !== 0) throw new Error(result.stderr);
        const parsed = JSON.parse(result.stdout) as {
          primary: string | null;
          manager: { id: string; leader: boolean };
        };
        return parsed.primary === 'db1' ? parsed : undefined;
      },
      { timeoutMs: 30_000, what: 'db status through the elected manager' },
    );
    assert.equal(status.manager.id, first);
    assert.equal(status.manager.leader, true);
    const text = await cli(['db', 'status', '--config', configFile], env);
    assert.match(text.stdout, /cluster platform: primary db1, epoch 1; manager mgr-. \(leader\)/);

    const victim = managers.find((m) => m.id === first);
    assert.ok(victim);
    await killed(victim.child, 'SIGKILL');
    const next = await waitFor(
      async () => {
        const current = await leader();
        return current !== undefined && current !== first ? current : undefined;
      },
      { timeoutMs: 20_000, what: 'the other manager to take over' },
    );
    const survivor = managers.find((m) => m.id === next);
    assert.ok(survivor);
    const after = await cli(['db', 'status', '--url', survivor.adminUrl, '--json'], env);
    assert.equal((JSON.parse(after.stdout) as { manager: { leader: boolean } }).manager.leader, true);
    managers.splice(managers.indexOf(victim), 1);
    managers.push(await spawnManager(first ?? '', dir, env));
  });

  it('a leader frozen (SIGSTOP) during a failure is replaced, and when it wakes it does not act again: exactly one failover', async () => {
    const current = await leader();
    const frozen = managers.find((m) => m.id === current);
    assert.ok(frozen);
    frozen.child.kill('SIGSTOP');
    const other = await waitFor(
      async () => {
        const now = await leader();
        return now !== undefined && now !== current ? now : undefined;
      },
      { timeoutMs: 20_000, what: 'a new leader while the old one is frozen' },
    );
    await cluster.members[0]?.kill();
    await waitFor(async () => (await events('failover')).length >= 1, { timeoutMs: 30_000, what: 'the failover' });
    frozen.child.kill('SIGCONT');
    // Let the woken manager run many probe cycles with its stale view of a dead primary.
    const woken = await waitFor(
      async () => {
        const result = await cli(['db', 'status', '--url', frozen.adminUrl, '--json'], env);
        if (result.code !== 0) return undefined;
        const parsed = JSON.parse(result.stdout) as {
          manager: { leader: boolean };
          members: Array<{ history: { probes: number } }>;
        };
        return parsed.members[0] !== undefined && parsed.members[0].history.probes >= 20 ? parsed : undefined;
      },
      { timeoutMs: 30_000, what: 'the woken manager to probe again' },
    );
    assert.equal(woken.manager.leader, false);
    const failovers = await events('failover');
    assert.equal(failovers.length, 1, 'one failover, by the new leader only');
    assert.equal(failovers[0]?.manager, other);
    const topology = JSON.parse((await coordinator.get('dbmanager/platform/topology')) ?? '{}') as {
      epoch: number;
      updatedBy: string;
    };
    assert.equal(topology.epoch, 2);

    // The other commands reach the leader through etcd too.
    const refused = await cli(['db', 'switchover', '--to', 'db1', '--config', configFile], env);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /switchover to db1 refused: .*unreachable.*\[INSITU_DBMANAGER_SWITCHOVER_REFUSED\]/);
    const ack = await cli(['db', 'ack', '--config', configFile, '--by', 'ha-test'], env);
    assert.equal(ack.code, 0, ack.stderr);
    assert.match(ack.stdout, /acknowledged: automatic failover is allowed again/);
    assert.equal(
      (
        await cli(['db', 'status', '--config', configFile], {
          ...env,
          INSITU_DBMANAGER_TOKEN: 'wrong-token-wrong-token-00',
        })
      ).code,
      1,
    );
    const usage = await cli(['db', 'status'], {});
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /no admin token/);
  });
});
