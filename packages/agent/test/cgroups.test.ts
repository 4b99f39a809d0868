// cgroup v2 (issue 16 item 6) on a directory laid out like cgroupfs: this test bed's v2
// hierarchy has no controllers (hybrid host), so what the agent writes, and in which
// order, is checked on files; v1 runs for real in the sandbox tests.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { makeTempDir, removeDir } from '@insitu/test-helpers';
import { Cgroups } from '../src/apps/cgroups.js';

describe('cgroups: v2 delegated subtree, v1 fallback', () => {
  let dir = '';

  before(async () => {
    dir = await makeTempDir('insitu-agent-cgroups-');
  });

  after(async () => {
    await removeDir(dir);
  });

  function layout(root: string, files: Record<string, string>): void {
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(join(root, path, '..'), { recursive: true });
      writeFileSync(join(root, path), text);
    }
  }

  it("v2: moves the group's processes into a leaf, enables memory, pids and cpu for children, and limits each instance", async () => {
    const root = join(dir, 'v2');
    layout(root, {
      'cgroup.controllers': 'cpuset cpu io memory pids',
      'system.slice/insitu.service/cgroup.controllers': 'cpu io memory pids',
      'system.slice/insitu.service/cgroup.subtree_control': '',
      'system.slice/insitu.service/cgroup.procs': '4242\n',
    });
    const cgroups = await Cgroups.detect(true, { root, self: '0::/system.slice/insitu.service\n', pid: 4242 });
    assert.equal(cgroups.version, 'v2');
    assert.deepEqual([cgroups.memory, cgroups.pids], [true, true]);
    const base = join(root, 'system.slice/insitu.service');
    assert.equal(
      readFileSync(join(base, 'insitu-agent/cgroup.procs'), 'utf8'),
      '4242',
      'the agent left its group for a leaf first',
    );
    assert.equal(readFileSync(join(base, 'cgroup.subtree_control'), 'utf8'), '+memory +pids +cpu');
    const instance = await cgroups.create('insitu-abc-dep-i0', { memoryBytes: 128 * 1024 * 1024, processes: 48 });
    const dirOf = join(base, 'insitu-abc-dep-i0');
    assert.deepEqual(instance.procsFiles, [join(dirOf, 'cgroup.procs')]);
    assert.equal(instance.boundsProcesses, true);
    assert.equal(readFileSync(join(dirOf, 'memory.max'), 'utf8'), String(128 * 1024 * 1024));
    assert.equal(readFileSync(join(dirOf, 'memory.swap.max'), 'utf8'), '0');
    assert.equal(readFileSync(join(dirOf, 'pids.max'), 'utf8'), '48');
    assert.equal(readFileSync(join(dirOf, 'cpu.max'), 'utf8'), '100000 100000');
    assert.equal(await instance.oomKilled(), false);
    writeFileSync(join(dirOf, 'memory.events'), 'low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n');
    assert.equal(await instance.oomKilled(), true);
    assert.equal(await instance.cpuTimeMs(), undefined, 'no cpu.stat yet');
    writeFileSync(join(dirOf, 'cpu.stat'), 'usage_usec 1234567\nuser_usec 1000000\nsystem_usec 234567\n');
    assert.equal(await instance.cpuTimeMs(), 1235, 'jobs are metered with usage_usec');
  });

  it('v2 without the controllers (a hybrid host like this one) falls back to v1; without writable v1 there is none', async () => {
    const root = join(dir, 'hybrid');
    layout(root, {
      'unified/cgroup.controllers': '',
      'memory/agents/cgroup.procs': '',
      'pids/agents/cgroup.procs': '',
      'cpuacct/agents/cgroup.procs': '',
    });
    const self = '9:memory:/agents\n8:pids:/agents\n2:cpuacct:/agents\n0::/\n';
    const cgroups = await Cgroups.detect(true, { root, self });
    assert.equal(cgroups.version, 'v1');
    const instance = await cgroups.create('insitu-abc-dep-i1', { memoryBytes: 1024, processes: 7 });
    assert.equal(readFileSync(join(root, 'memory/agents/insitu-abc-dep-i1/memory.limit_in_bytes'), 'utf8'), '1024');
    assert.equal(readFileSync(join(root, 'pids/agents/insitu-abc-dep-i1/pids.max'), 'utf8'), '7');
    assert.equal(instance.procsFiles.length, 3, 'memory, pids and cpuacct (accounting only)');
    writeFileSync(join(root, 'cpuacct/agents/insitu-abc-dep-i1/cpuacct.usage'), '2500000000\n');
    assert.equal(await instance.cpuTimeMs(), 2500);
    assert.equal(
      existsSync(join(root, 'unified/insitu-agent')),
      false,
      'nothing was moved on the controller-less v2 hierarchy',
    );
    const none = await Cgroups.detect(true, { root: join(dir, 'nothing'), self });
    assert.deepEqual([none.version, none.memory, none.pids], ['none', false, false]);
  });
});
