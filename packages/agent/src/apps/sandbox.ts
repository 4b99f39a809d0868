import { execFile } from 'node:child_process';
import { existsSync, lstatSync, realpathSync } from 'node:fs';
import { InsituError } from '@insitu/core';
import { dirname, join } from 'node:path';
import type { AppManifest } from '@insitu/core';
import type { SandboxConfig } from '../config/agent-config.js';
import type { InstanceCgroups } from './cgroups.js';

/** Fixed paths inside every sandbox. */
export const SANDBOX_PATHS = {
  bundle: '/app',
  /** The instance's socket directory (read-write); the app listens on `app.sock` in it. */
  runDir: '/run/insitu/app',
  listen: '/run/insitu/app/app.sock',
  dataApi: '/run/insitu/data.sock',
  /** The SDK for the node runtime: `import '@insitu/sdk'` resolves here from /app. */
  nodeSdk: '/node_modules/@insitu/sdk',
  /** The SDK for the python runtime: `import insitu`. */
  pythonSdk: '/opt/insitu/python',
} as const;

/** What one instance needs to start. */
export interface LaunchSpec {
  manifest: AppManifest;
  bundleDir: string;
  /** Host directory mounted read-write at {@link SANDBOX_PATHS.runDir}. */
  runDir: string;
  /** Host path of the data API socket for this deployment. */
  dataApiSocket: string;
  /** Root of the `@insitu/sdk` package (its `python/` holds the Python module). */
  sdkDir: string;
  sandbox: Readonly<SandboxConfig>;
  /** Run without bubblewrap (development; only where the config allows it). */
  noSandbox: boolean;
  cgroups?: InstanceCgroups;
  /** Interpreter for the python runtime. */
  python?: string;
}

/** The command line that starts an instance, and its environment. */
export interface Launch {
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  /** Host path of the socket the app serves on. */
  listenSocket: string;
}

function appCommand(manifest: AppManifest, bundle: string, python: string): string[] {
  const entry = join(bundle, manifest.entry);
  const args = manifest.args ?? [];
  switch (manifest.runtime) {
    case 'node':
      // V8 stops at its heap limit with a clear message, before the memory limit kills it.
      return [process.execPath, `--max-old-space-size=${Math.max(16, Math.floor(manifest.limits.memoryMb * 0.75))}`, entry, ...args];
    case 'python':
      return [python, '-u', entry, ...args];
    case 'command':
      return [entry, ...args];
  }
}

/** System directories, bound read-only (merged-/usr symlinks kept as symlinks). */
function systemBinds(): string[] {
  const args = ['--ro-bind', '/usr', '/usr'];
  for (const dir of ['/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32']) {
    if (!existsSync(dir)) continue;
    const info = lstatSync(dir);
    if (info.isSymbolicLink()) args.push('--symlink', realpathSync(dir).replace(/^\//, ''), dir);
    else args.push('--ro-bind', dir, dir);
  }
  for (const file of ['/etc/ld.so.cache', '/etc/ld.so.conf', '/etc/localtime', '/etc/ssl', '/etc/ca-certificates', '/etc/alternatives', '/etc/nsswitch.conf']) {
    if (existsSync(file)) args.push('--ro-bind', file, file);
  }
  // The node binary, when it is not under /usr (e.g. /opt/node/bin/node).
  const prefix = dirname(dirname(realpathSync(process.execPath)));
  if (!prefix.startsWith('/usr')) args.push('--ro-bind', prefix, prefix);
  return args;
}

/**
 * The sandbox of one instance, as argument arrays (no shell string is ever built):
 *
 *     sh -c '<join cgroups>; exec "$@"' sh MEMCG PIDSCG \
 *       prlimit --as --nproc --cpu --nofile -- \
 *       bwrap --unshare-all --unshare-user --uid N --die-with-parent --new-session --cap-drop ALL \
 *             --ro-bind /usr … --ro-bind BUNDLE /app --tmpfs /tmp --proc /proc --dev /dev \
 *             --bind RUNDIR /run/insitu/app --ro-bind DATASOCK /run/insitu/data.sock \
 *             --ro-bind SDK /node_modules/@insitu/sdk --ro-bind SDK/python /opt/insitu/python \
 *             --clearenv --setenv … --chdir /app -- node /app/ENTRY
 *
 * The small fixed `sh` script puts the process into the instance's cgroups before it
 * execs, so nothing the app starts escapes them; its arguments are passed as `$1`, `$2`.
 */
export function buildLaunch(spec: LaunchSpec): Launch {
  const { manifest, sandbox } = spec;
  const limits = manifest.limits;
  const python = spec.python ?? '/usr/bin/python3';
  const listenSocket = join(spec.runDir, 'app.sock');
  if (spec.noSandbox) {
    return {
      command: appCommand(manifest, spec.bundleDir, python)[0] as string,
      args: appCommand(manifest, spec.bundleDir, python).slice(1),
      env: {
        PATH: '/usr/local/bin:/usr/bin:/bin',
        HOME: spec.runDir,
        LANG: 'C.UTF-8',
        INSITU_LISTEN: listenSocket,
        INSITU_DATA_API: spec.dataApiSocket,
        NODE_PATH: dirname(dirname(spec.sdkDir)),
        PYTHONPATH: join(spec.sdkDir, 'python'),
      },
      listenSocket,
    };
  }
  const env: Record<string, string> = {
    PATH: '/usr/local/bin:/usr/bin:/bin',
    HOME: '/tmp',
    TMPDIR: '/tmp',
    LANG: 'C.UTF-8',
    INSITU_LISTEN: SANDBOX_PATHS.listen,
    INSITU_DATA_API: SANDBOX_PATHS.dataApi,
    NODE_PATH: '/node_modules',
    PYTHONPATH: SANDBOX_PATHS.pythonSdk,
    PYTHONDONTWRITEBYTECODE: '1',
  };
  const memoryBytes = limits.memoryMb * 1024 * 1024;
  const addressSpace = memoryBytes + sandbox.addressSpaceExtraMb * 1024 * 1024;
  const bwrap = [
    sandbox.bwrap,
    '--unshare-all',
    '--unshare-user',
    '--uid', String(sandbox.uid),
    '--gid', String(sandbox.uid),
    '--die-with-parent',
    '--new-session',
    '--cap-drop', 'ALL',
    ...systemBinds(),
    '--ro-bind', spec.bundleDir, SANDBOX_PATHS.bundle,
    '--size', String(Math.max(16, Math.floor(limits.memoryMb / 2)) * 1024 * 1024), '--tmpfs', '/tmp',
    '--proc', '/proc',
    '--dev', '/dev',
    '--bind', spec.runDir, SANDBOX_PATHS.runDir,
    '--ro-bind', spec.dataApiSocket, SANDBOX_PATHS.dataApi,
    '--ro-bind', spec.sdkDir, SANDBOX_PATHS.nodeSdk,
    '--ro-bind', join(spec.sdkDir, 'python'), SANDBOX_PATHS.pythonSdk,
    '--remount-ro', '/',
    '--clearenv',
    ...Object.entries(env).flatMap(([k, v]) => ['--setenv', k, v]),
    '--chdir', SANDBOX_PATHS.bundle,
    '--',
    ...appCommand(manifest, SANDBOX_PATHS.bundle, python),
  ];
  const prlimit = [
    'prlimit',
    `--as=${addressSpace}`,
    `--nproc=${limits.processes}`,
    `--cpu=${limits.cpuSeconds}`,
    `--nofile=${limits.openFiles}`,
    '--core=0',
    '--',
  ];
  const script = 'set -e; if [ -n "$1" ]; then echo $$ > "$1/cgroup.procs"; fi; if [ -n "$2" ]; then echo $$ > "$2/cgroup.procs"; fi; shift 2; exec "$@"';
  return {
    command: '/bin/sh',
    args: ['-c', script, 'sh', spec.cgroups?.memory ?? '', spec.cgroups?.pids ?? '', ...prlimit, ...bwrap],
    env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' },
    listenSocket,
  };
}

/**
 * Check once, at start, that bubblewrap runs here with the namespaces the sandbox needs
 * (a missing binary, or a kernel that forbids user namespaces, fails now with a clear
 * message instead of as a crash loop of every application).
 */
export function checkSandbox(sandbox: Readonly<SandboxConfig>): Promise<void> {
  const args = ['--unshare-all', '--unshare-user', '--uid', String(sandbox.uid), '--gid', String(sandbox.uid), '--die-with-parent', '--cap-drop', 'ALL', ...systemBinds(), '--proc', '/proc', '--dev', '/dev', '--', 'true'];
  return new Promise((resolve, reject) => {
    execFile(sandbox.bwrap, args, { timeout: 15_000 }, (error, _stdout, stderr) => {
      if (!error) return resolve();
      const why = (error as NodeJS.ErrnoException).code === 'ENOENT' ? `${sandbox.bwrap} is not installed (Debian package bubblewrap)` : stderr.trim() || error.message;
      reject(new InsituError('INSITU_SANDBOX_UNAVAILABLE', `the sandbox cannot run here: ${why}`));
    });
  });
}
