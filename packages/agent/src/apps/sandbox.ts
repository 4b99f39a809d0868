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
  /** A private, size-bounded tmpfs the app may write (besides /tmp); nothing of it is on the host. */
  runDir: '/run/insitu/app',
  dataApi: '/run/insitu/data.sock',
  /** The SDK for the node runtime: `import '@insitu/sdk'` resolves here from /app. */
  nodeSdk: '/node_modules/@insitu/sdk',
  /** The SDK for the python runtime: `import insitu`. */
  pythonSdk: '/opt/insitu/python',
  /** A job's result directory (read-write, on the host: the agent checks it after the job ends). */
  output: '/run/insitu/output',
} as const;

/** The descriptor on which every instance receives its listening socket (`INSITU_LISTEN_FD`). */
export const LISTEN_FD = 3;
/** The descriptor bubblewrap reads the seccomp program from. */
export const SECCOMP_FD = 4;

/** What one instance needs to start. */
export interface LaunchSpec {
  manifest: AppManifest;
  bundleDir: string;
  /**
   * Host path where the agent binds the instance's listening socket, in a directory only
   * the agent can reach; the app receives the socket as descriptor {@link LISTEN_FD}.
   */
  listenSocket: string;
  /** Host path of the data API socket for this deployment. */
  dataApiSocket: string;
  /** Root of the `@insitu/sdk` package (its `python/` holds the Python module). */
  sdkDir: string;
  sandbox: Readonly<SandboxConfig>;
  /** Run without bubblewrap (development; only where the config allows it). */
  noSandbox: boolean;
  cgroups?: InstanceCgroups;
  /** Host path of the seccomp program ({@link seccompFilter}); none: no filter. */
  seccompFile?: string;
  /**
   * The agent runs as root: the app then runs as host uid/gid `sandbox.uid` (no user
   * namespace, so that uid is what the kernel counts and checks). Otherwise bubblewrap
   * maps the agent's own (unprivileged) uid to `sandbox.uid` in a user namespace.
   * Default: whether this process runs as root.
   */
  asRoot?: boolean;
  /** Interpreter for the python runtime. */
  python?: string;
  /**
   * A job run: the host directory the job writes its results to (bound read-write at
   * {@link SANDBOX_PATHS.output}, `INSITU_OUTPUT_DIR`), its arguments as JSON
   * (`INSITU_JOB_ARGS`) and the largest file it may write (RLIMIT_FSIZE).
   */
  job?: { outputDir: string; argsJson: string; maxFileBytes: number };
}

/** The command line that starts an instance, and its environment. */
export interface Launch {
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  /** Host path of the socket the agent binds and hands to the app (never a path the app can write). */
  listenSocket: string;
  /** Host path of the seccomp program to open as descriptor {@link SECCOMP_FD}. */
  seccompFile?: string;
}

function appCommand(manifest: AppManifest, bundle: string, python: string): string[] {
  const entry = join(bundle, manifest.entry);
  const args = manifest.args ?? [];
  switch (manifest.runtime) {
    case 'node':
      // V8 stops at its heap limit with a clear message, before the memory limit kills it.
      return [
        process.execPath,
        `--max-old-space-size=${Math.max(16, Math.floor(manifest.limits.memoryMb * 0.75))}`,
        entry,
        ...args,
      ];
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
  for (const file of [
    '/etc/ld.so.cache',
    '/etc/ld.so.conf',
    '/etc/localtime',
    '/etc/ssl',
    '/etc/ca-certificates',
    '/etc/alternatives',
    '/etc/nsswitch.conf',
  ]) {
    if (existsSync(file)) args.push('--ro-bind', file, file);
  }
  // The node binary, when it is not under /usr (e.g. /opt/node/bin/node).
  const prefix = dirname(dirname(realpathSync(process.execPath)));
  if (!prefix.startsWith('/usr')) args.push('--ro-bind', prefix, prefix);
  return args;
}

/** Size of the private tmpfs mounts: half the memory limit for /tmp, 16 MiB for the run dir. */
export function tmpfsSizes(limits: AppManifest['limits']): { tmp: number; run: number } {
  return { tmp: Math.max(16, Math.floor(limits.memoryMb / 2)) * 1024 * 1024, run: 16 * 1024 * 1024 };
}

/**
 * The launcher in front of every instance (the leader of the instance's process group).
 * It first forks a watchdog that blocks reading descriptor {@link AGENT_ALIVE_FD}, one end
 * of a socket pair whose other end only the agent holds: when the agent dies, however
 * (SIGKILL included, and even before this line ran), the read ends and the watchdog kills
 * the whole group — the sandbox's init with it, and with that every process of the
 * instance's PID namespace. Unlike `--die-with-parent` (a parent-death signal armed in
 * bubblewrap after it started, and lost when the agent dies first), an end-of-file cannot
 * be missed. Then it joins the instance's cgroups (the `cgroup.procs` files up to `--`),
 * closes the watchdog's descriptor and execs the rest. Fixed text; every argument arrives
 * as `$1`, `$@`.
 */
const LAUNCHER =
  '( read -r _ <&5; kill -KILL 0 ) & while [ "$1" != "--" ]; do echo $$ > "$1" || exit 126; shift; done; shift; exec 5<&-; exec "$@"';

/** The descriptor of the agent's liveness socket in the launcher. */
export const AGENT_ALIVE_FD = 5;

/**
 * The sandbox of one instance, as argument arrays (no shell string is ever built):
 *
 *     sh -c LAUNCHER sh CGROUP.PROCS… -- \
 *       prlimit --as --nproc --cpu --nofile --core -- \
 *       bwrap --unshare-{ipc,pid,net,uts,cgroup} --die-with-parent \
 *             --ro-bind /usr … --ro-bind BUNDLE /app --size --tmpfs /tmp --size --tmpfs /run/insitu/app \
 *             --proc /proc --dev /dev --ro-bind DATASOCK /run/insitu/data.sock --ro-bind SDK … \
 *             --remount-ro / --seccomp 4 --clearenv --setenv … --chdir /app -- \
 *       setpriv --reuid N --regid N --clear-groups --inh-caps -all --bounding-set -all --no-new-privs -- \
 *       RUNTIME /app/ENTRY
 *
 * (as root; an unprivileged agent uses `--unshare-all --unshare-user --uid N --cap-drop ALL`
 * instead of the inner setpriv). The listening socket arrives on descriptor 3, the seccomp
 * program on 4, the agent's liveness socket (for the launcher) on 5. No `--new-session`:
 * the launcher already leads a new session without a controlling terminal (so there is no
 * terminal to inject input into), and bwrap's own `setsid` would take the sandbox's init
 * out of the process group that the watchdog and every stop path kill.
 */
export function buildLaunch(spec: LaunchSpec): Launch {
  const { manifest, sandbox } = spec;
  const limits = manifest.limits;
  const python = spec.python ?? '/usr/bin/python3';
  const listenSocket = spec.listenSocket;
  if (spec.noSandbox) {
    return {
      command: '/bin/sh',
      args: [
        '-c',
        LAUNCHER,
        'sh',
        ...(spec.cgroups?.procsFiles ?? []),
        '--',
        ...appCommand(manifest, spec.bundleDir, python),
      ],
      env: {
        PATH: '/usr/local/bin:/usr/bin:/bin',
        HOME: dirname(listenSocket),
        LANG: 'C.UTF-8',
        INSITU_LISTEN_FD: String(LISTEN_FD),
        INSITU_DATA_API: spec.dataApiSocket,
        NODE_PATH: dirname(dirname(spec.sdkDir)),
        PYTHONPATH: join(spec.sdkDir, 'python'),
        ...(spec.job ? { INSITU_OUTPUT_DIR: spec.job.outputDir, INSITU_JOB_ARGS: spec.job.argsJson } : {}),
      },
      listenSocket,
    };
  }
  const asRoot = spec.asRoot ?? process.getuid?.() === 0;
  const env: Record<string, string> = {
    PATH: '/usr/local/bin:/usr/bin:/bin',
    HOME: '/tmp',
    TMPDIR: '/tmp',
    LANG: 'C.UTF-8',
    INSITU_LISTEN_FD: String(LISTEN_FD),
    INSITU_DATA_API: SANDBOX_PATHS.dataApi,
    NODE_PATH: '/node_modules',
    PYTHONPATH: SANDBOX_PATHS.pythonSdk,
    PYTHONDONTWRITEBYTECODE: '1',
    ...(spec.job ? { INSITU_OUTPUT_DIR: SANDBOX_PATHS.output, INSITU_JOB_ARGS: spec.job.argsJson } : {}),
  };
  const memoryBytes = limits.memoryMb * 1024 * 1024;
  const addressSpace = memoryBytes + sandbox.addressSpaceExtraMb * 1024 * 1024;
  const sizes = tmpfsSizes(limits);
  const id = String(sandbox.uid);
  const namespaces = asRoot
    ? ['--unshare-ipc', '--unshare-pid', '--unshare-net', '--unshare-uts', '--unshare-cgroup-try']
    : ['--unshare-all', '--unshare-user', '--uid', id, '--gid', id, '--cap-drop', 'ALL'];
  // As root there is no user namespace: the app is dropped to the unprivileged host uid
  // here, with no capabilities left and none to gain (empty bounding set, no_new_privs).
  const dropToUser = asRoot
    ? [
        '/usr/bin/setpriv',
        '--reuid',
        id,
        '--regid',
        id,
        '--clear-groups',
        '--inh-caps',
        '-all',
        '--bounding-set',
        '-all',
        '--no-new-privs',
        '--',
      ]
    : [];
  const bwrap = [
    sandbox.bwrap,
    ...namespaces,
    '--die-with-parent',
    // Directories bwrap would create for the mounts below are 0700 root: the unprivileged app must traverse them.
    ...['/etc', '/run', '/run/insitu', '/node_modules', '/node_modules/@insitu', '/opt', '/opt/insitu'].flatMap((d) => [
      '--perms',
      '0755',
      '--dir',
      d,
    ]),
    ...systemBinds(),
    '--ro-bind',
    spec.bundleDir,
    SANDBOX_PATHS.bundle,
    '--perms',
    '1777',
    '--size',
    String(sizes.tmp),
    '--tmpfs',
    '/tmp',
    '--perms',
    '1777',
    '--size',
    String(sizes.run),
    '--tmpfs',
    SANDBOX_PATHS.runDir,
    '--proc',
    '/proc',
    '--dev',
    '/dev',
    '--ro-bind',
    spec.dataApiSocket,
    SANDBOX_PATHS.dataApi,
    '--ro-bind',
    spec.sdkDir,
    SANDBOX_PATHS.nodeSdk,
    '--ro-bind',
    join(spec.sdkDir, 'python'),
    SANDBOX_PATHS.pythonSdk,
    ...(spec.job ? ['--bind', spec.job.outputDir, SANDBOX_PATHS.output] : []),
    '--remount-ro',
    '/',
    ...(spec.seccompFile ? ['--seccomp', String(SECCOMP_FD)] : []),
    '--clearenv',
    ...Object.entries(env).flatMap(([k, v]) => ['--setenv', k, v]),
    '--chdir',
    SANDBOX_PATHS.bundle,
    '--',
    ...dropToUser,
    ...appCommand(manifest, SANDBOX_PATHS.bundle, python),
  ];
  const prlimit = [
    'prlimit',
    `--as=${addressSpace}`,
    // RLIMIT_NPROC counts every process of the uid, which all instances share: it would let
    // one instance starve the others. Only a fallback when no pids controller bounds each one.
    ...(spec.cgroups?.boundsProcesses ? [] : [`--nproc=${limits.processes}`]),
    `--cpu=${limits.cpuSeconds}`,
    `--nofile=${limits.openFiles}`,
    ...(spec.job ? [`--fsize=${spec.job.maxFileBytes + 1}`] : []),
    '--core=0',
    '--',
  ];
  return {
    command: '/bin/sh',
    args: ['-c', LAUNCHER, 'sh', ...(spec.cgroups?.procsFiles ?? []), '--', ...prlimit, ...bwrap],
    env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' },
    listenSocket,
    ...(spec.seccompFile ? { seccompFile: spec.seccompFile } : {}),
  };
}

/**
 * Check once, at start, that bubblewrap runs here with the namespaces the sandbox needs
 * (a missing binary, or a kernel that forbids user namespaces, fails now with a clear
 * message instead of as a crash loop of every application).
 */
export function checkSandbox(sandbox: Readonly<SandboxConfig>): Promise<void> {
  const id = String(sandbox.uid);
  const asRoot = process.getuid?.() === 0;
  const namespaces = asRoot
    ? ['--unshare-ipc', '--unshare-pid', '--unshare-net', '--unshare-uts']
    : ['--unshare-all', '--unshare-user', '--uid', id, '--gid', id, '--cap-drop', 'ALL'];
  const drop = asRoot
    ? ['/usr/bin/setpriv', '--reuid', id, '--regid', id, '--clear-groups', '--no-new-privs', '--']
    : [];
  const args = [
    ...namespaces,
    '--die-with-parent',
    ...systemBinds(),
    '--proc',
    '/proc',
    '--dev',
    '/dev',
    '--',
    ...drop,
    'true',
  ];
  return new Promise((resolve, reject) => {
    execFile(sandbox.bwrap, args, { timeout: 15_000 }, (error, _stdout, stderr) => {
      if (!error) return resolve();
      const why =
        (error as NodeJS.ErrnoException).code === 'ENOENT'
          ? `${sandbox.bwrap} is not installed (Debian package bubblewrap)`
          : stderr.trim() || error.message;
      reject(new InsituError('INSITU_SANDBOX_UNAVAILABLE', `the sandbox cannot run here: ${why}`));
    });
  });
}
