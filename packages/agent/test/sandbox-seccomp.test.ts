// The seccomp filter (issue 16 item 7): each denied syscall fails inside the real sandbox,
// while the same script in the same sandbox without the filter shows what the kernel
// would otherwise have allowed. The script runs in python3 with ctypes, each attempt in a
// forked child that exits with the errno (0: the call succeeded).
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '@insitu/core';
import { makeTempDir, removeDir } from '@insitu/test-helpers';
import { buildLaunch, deniedSyscalls, parseAgentConfig, readManifest, seccompFilter } from '../src/index.js';
import { InstanceProcess } from '../src/apps/instance.js';

const logger = createLogger({ name: 'test', level: 'silent' });
const EPERM = 1;

const SCRIPT = String.raw`
import ctypes, json, os, platform, struct
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
X64 = platform.machine() == 'x86_64'
NR = {
  'ptrace': 101 if X64 else 117, 'unshare': 272 if X64 else 97, 'clone': 56 if X64 else 220,
  'mount': 165 if X64 else 40, 'keyctl': 250 if X64 else 219, 'add_key': 248 if X64 else 217,
  'bpf': 321 if X64 else 280, 'perf_event_open': 298 if X64 else 241, 'setns': 308 if X64 else 268,
  'io_uring_setup': 425,
}
L = ctypes.c_long
def sc(name, *args):
    return libc.syscall(L(NR[name]), *args)
def attempt(fn):
    pid = os.fork()
    if pid == 0:
        try:
            r = fn()
            os._exit(0 if r != -1 else min(ctypes.get_errno(), 250))
        except BaseException:
            os._exit(251)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
def mount_in_own_userns():
    sc('unshare', L(0x10000000 | 0x00020000))
    return sc('mount', ctypes.c_char_p(b'none'), ctypes.c_char_p(b'/tmp'), ctypes.c_char_p(b'tmpfs'), L(0), ctypes.c_void_p(0))
attr = bytearray(128)
struct.pack_into('<IIQ', attr, 0, 1, 128, 1)            # PERF_TYPE_SOFTWARE, size, PERF_COUNT_SW_TASK_CLOCK
struct.pack_into('<Q', attr, 40, (1 << 5) | (1 << 6))     # exclude_kernel, exclude_hv
attr_buf = (ctypes.c_char * 128).from_buffer(attr)
bpf_attr = (ctypes.c_char * 128)()
struct.pack_into('<IIII', bpf_attr, 0, 2, 4, 4, 1)        # BPF_MAP_TYPE_ARRAY, key 4, value 4, 1 entry
results = {
  'ptrace': attempt(lambda: sc('ptrace', L(0), L(0), L(0), L(0))),
  'unshare(CLONE_NEWUSER)': attempt(lambda: sc('unshare', L(0x10000000))),
  'clone(CLONE_NEWUSER)': attempt(lambda: sc('clone', L(0x10000000 | 17), L(0), L(0), L(0), L(0))),
  'mount': attempt(mount_in_own_userns),
  'keyctl': attempt(lambda: sc('keyctl', L(0), L(-2), L(1))),
  'add_key': attempt(lambda: sc('add_key', ctypes.c_char_p(b'user'), ctypes.c_char_p(b'k'), ctypes.c_char_p(b'v'), L(1), L(-2))),
  'bpf': attempt(lambda: sc('bpf', L(0), bpf_attr, L(128))),
  'perf_event_open': attempt(lambda: sc('perf_event_open', attr_buf, L(0), L(-1), L(-1), L(0))),
  'io_uring_setup': attempt(lambda: sc('io_uring_setup', L(1), (ctypes.c_char * 120)())),
  'fork (allowed)': attempt(lambda: 0),
  'unshare(0) (allowed)': attempt(lambda: sc('unshare', L(0))),
}
print(json.dumps(results))
`;

describe('the seccomp filter (issue 16 item 7)', () => {
  let dir = '';

  before(async () => {
    dir = await makeTempDir('insitu-agent-seccomp-');
  });

  after(async () => {
    await removeDir(dir);
  });

  async function runScript(withFilter: boolean): Promise<Record<string, number>> {
    const bundle = join(dir, 'bundle');
    mkdirSync(bundle, { recursive: true });
    writeFileSync(join(bundle, 'check.py'), SCRIPT);
    writeFileSync(
      join(bundle, 'insitu.json'),
      JSON.stringify({
        name: 'check',
        version: '1.0.0',
        runtime: 'python',
        entry: 'check.py',
        datasets: [],
        endpoints: [{ method: 'GET', path: '/none' }],
      }),
    );
    const sdkDir = join(dir, 'sdk');
    mkdirSync(join(sdkDir, 'python'), { recursive: true });
    const dataApiSocket = join(dir, 'data.sock');
    writeFileSync(dataApiSocket, '');
    const seccompFile = join(dir, 'seccomp.bpf');
    writeFileSync(seccompFile, seccompFilter());
    const runDir = join(dir, withFilter ? 'run-filtered' : 'run-open');
    mkdirSync(runDir, { recursive: true, mode: 0o700 });
    const sandbox = parseAgentConfig({ sources: [] }, { what: 'test config', baseDir: dir }).sandbox;
    const launch = buildLaunch({
      manifest: await readManifest(bundle),
      bundleDir: bundle,
      listenSocket: join(runDir, 'app.sock'),
      dataApiSocket,
      sdkDir,
      sandbox,
      noSandbox: false,
      ...(withFilter ? { seccompFile } : {}),
    });
    const proc = await InstanceProcess.start(launch, logger);
    const exit = await proc.exited;
    assert.equal(exit.code, 0, proc.output.join('\n'));
    const line = proc.output.find((l) => l.startsWith('{'));
    assert.ok(line, proc.output.join('\n'));
    return JSON.parse(line) as Record<string, number>;
  }

  it('refuses ptrace, nested user namespaces, mount, keyctl, bpf and perf_event_open with EPERM; ordinary calls still work', async () => {
    const filtered = await runScript(true);
    const open = await runScript(false);
    for (const name of [
      'ptrace',
      'unshare(CLONE_NEWUSER)',
      'clone(CLONE_NEWUSER)',
      'mount',
      'keyctl',
      'add_key',
      'bpf',
      'perf_event_open',
    ]) {
      assert.equal(filtered[name], EPERM, `${name} under the filter (without: ${String(open[name])})`);
    }
    assert.equal(
      filtered.io_uring_setup,
      38,
      `io_uring_setup is ENOSYS under the filter (without: ${String(open.io_uring_setup)})`,
    );
    assert.equal(filtered['fork (allowed)'], 0);
    assert.equal(filtered['unshare(0) (allowed)'], 0);
    // Without the filter the same sandbox allows these: the filter, not the uid, refuses them.
    for (const name of ['ptrace', 'unshare(CLONE_NEWUSER)', 'clone(CLONE_NEWUSER)', 'mount', 'keyctl', 'add_key']) {
      assert.equal(open[name], 0, `${name} without the filter`);
    }
    assert.notEqual(open.perf_event_open, EPERM, 'perf_event_open without the filter fails differently (if at all)');
  });

  it('is generated for both architectures, checks the architecture first and lists what it denies', () => {
    for (const arch of ['x64', 'arm64'] as const) {
      const program = seccompFilter(arch);
      assert.equal(program.length % 8, 0);
      // ld [4] (arch), then jeq AUDIT_ARCH_… over a kill.
      assert.deepEqual([program.readUInt16LE(0), program.readUInt32LE(4)], [0x20, 4]);
      assert.equal(program.readUInt32LE(12), arch === 'x64' ? 0xc000003e : 0xc00000b7);
      assert.equal(program.readUInt32LE(20), 0x80000000);
      for (const name of ['ptrace', 'mount', 'keyctl', 'bpf', 'perf_event_open', 'io_uring_setup (ENOSYS)'])
        assert.ok(deniedSyscalls(arch).includes(name));
    }
    assert.notDeepEqual(seccompFilter('x64'), seccompFilter('arm64'));
  });
});
