import { access, mkdir, readFile, readdir, rmdir, writeFile } from 'node:fs/promises';
import { constants, existsSync } from 'node:fs';
import { join } from 'node:path';

/** One instance's cgroups, created below the agent's own (v1 memory + pids, or one v2 group). */
export interface InstanceCgroups {
  /** The `cgroup.procs` files the launcher writes its own pid to before it execs the sandbox. */
  procsFiles: string[];
  /** True when a pids controller bounds this instance's processes. */
  boundsProcesses: boolean;
  /** True when the kernel's OOM killer killed a process of this instance. */
  oomKilled(): Promise<boolean>;
  /** CPU time (user + system, ms) its processes used so far; undefined without a CPU accounting group. */
  cpuTimeMs(): Promise<number | undefined>;
  /** SIGKILL every process still in the instance's cgroups (v2: `cgroup.kill`), and wait until they are empty. */
  kill(): Promise<void>;
  remove(): Promise<void>;
}

/** Where the cgroup file systems are, and what this process's cgroups are (replaceable for tests). */
export interface CgroupsEnvironment {
  /** Mount point of the cgroup file systems (default `/sys/fs/cgroup`). */
  root?: string;
  /** Contents of `/proc/self/cgroup`. */
  self?: string;
  /** This process's pid (moved into a leaf when a v2 subtree must be enabled). */
  pid?: number;
}

async function writable(path: string): Promise<boolean> {
  try {
    await access(path, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

async function readText(path: string): Promise<string> {
  return readFile(path, 'utf8').catch(() => '');
}

function pathsFrom(selfCgroup: string): { v1: Map<string, string>; v2?: string } {
  const v1 = new Map<string, string>();
  let v2: string | undefined;
  for (const line of selfCgroup.split('\n')) {
    const match = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (!match) continue;
    const [, id, controllers, path] = match as unknown as [string, string, string, string];
    if (id === '0' && controllers === '') v2 = path;
    else for (const c of controllers.split(',')) v1.set(c, path);
  }
  return v2 === undefined ? { v1 } : { v1, v2 };
}

async function killAll(procsFile: string, deadlineMs = 5000): Promise<void> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const pids = (await readText(procsFile)).split('\n').filter(Boolean).map(Number);
    if (pids.length === 0) return;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    if (Date.now() > end) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function removeDir(dir: string): Promise<void> {
  // The last processes may still be exiting; rmdir fails with EBUSY until they are gone.
  for (let attempt = 0; attempt < 100; attempt++) {
    try {
      await rmdir(dir);
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

/** The limits one instance gets. */
export interface CgroupLimits {
  memoryBytes: number;
  processes: number;
  /** cgroup v2 `cpu.max` quota in CPUs (default 1); v1 leaves CPU time to RLIMIT_CPU. */
  cpus?: number;
}

/**
 * Memory, process (and on v2 CPU) limits per instance, where this process may create
 * child cgroups: an agent running as root, or with a delegated subtree. Each instance gets
 * a child cgroup of the agent's own, so the agent's own limits still bound it.
 *
 * - **cgroup v2** (unified): used when the agent's own group offers the `memory` and
 *   `pids` controllers. If its `cgroup.subtree_control` does not enable them yet, the
 *   agent moves the processes of its group into a leaf `insitu-agent` ("no internal
 *   processes" rule) and enables `+memory +pids` (and `+cpu` where available). Instances
 *   get `memory.max`, `memory.swap.max 0`, `pids.max` and `cpu.max`; they are killed
 *   with `cgroup.kill` (or pid by pid on kernels before 5.14).
 * - **cgroup v1**: the `memory` (memory+swap) and `pids` hierarchies, and `cpuacct` (accounting
 *   only: the CPU time jobs are metered with).
 */
export class Cgroups {
  private constructor(
    readonly version: 'v2' | 'v1' | 'none',
    private readonly bases: { memory?: string; pids?: string; cpuacct?: string; unified?: string; cpu?: boolean },
  ) {}

  static async detect(enabled: boolean, env: CgroupsEnvironment = {}): Promise<Cgroups> {
    if (!enabled) return new Cgroups('none', {});
    const root = env.root ?? '/sys/fs/cgroup';
    const self = env.self ?? (await readText('/proc/self/cgroup'));
    const paths = pathsFrom(self);
    if (paths.v2 !== undefined) {
      const mount = existsSync(join(root, 'cgroup.controllers')) ? root : join(root, 'unified');
      const base = join(mount, paths.v2);
      const unified = await Cgroups.enableV2(base, env.pid ?? process.pid);
      if (unified) return new Cgroups('v2', { unified: unified.base, cpu: unified.cpu });
    }
    const found: { memory?: string; pids?: string; cpuacct?: string } = {};
    for (const controller of ['memory', 'pids', 'cpuacct'] as const) {
      const path = paths.v1.get(controller);
      const dir = path === undefined ? undefined : join(root, controller, path);
      if (dir && (await writable(dir)) && (await writable(join(dir, 'cgroup.procs')))) found[controller] = dir;
    }
    return new Cgroups(found.memory || found.pids ? 'v1' : 'none', found);
  }

  /** Make `base` a group whose children get memory and pids limits; undefined when this process may not. */
  private static async enableV2(base: string, pid: number): Promise<{ base: string; cpu: boolean } | undefined> {
    const available = (await readText(join(base, 'cgroup.controllers'))).trim().split(/\s+/);
    if (!available.includes('memory') || !available.includes('pids')) return undefined;
    if (!(await writable(base)) || !(await writable(join(base, 'cgroup.subtree_control')))) return undefined;
    const wanted = ['memory', 'pids', ...(available.includes('cpu') ? ['cpu'] : [])];
    const enabled = (await readText(join(base, 'cgroup.subtree_control'))).trim().split(/\s+/);
    const missing = wanted.filter((c) => !enabled.includes(c));
    try {
      if (missing.length > 0) {
        // A v2 group with processes cannot hand controllers to children: move them to a leaf first.
        const procs = (await readText(join(base, 'cgroup.procs'))).split('\n').filter(Boolean);
        if (procs.length > 0) {
          const leaf = join(base, 'insitu-agent');
          await mkdir(leaf, { recursive: true });
          for (const p of procs.includes(String(pid))
            ? [String(pid), ...procs.filter((x) => x !== String(pid))]
            : procs) {
            await writeFile(join(leaf, 'cgroup.procs'), p).catch(() => undefined);
          }
        }
        await writeFile(join(base, 'cgroup.subtree_control'), missing.map((c) => `+${c}`).join(' '));
      }
    } catch {
      return undefined;
    }
    return { base, cpu: wanted.includes('cpu') };
  }

  get memory(): boolean {
    return this.bases.memory !== undefined || this.bases.unified !== undefined;
  }

  get pids(): boolean {
    return this.bases.pids !== undefined || this.bases.unified !== undefined;
  }

  /** Create the cgroups of one instance with its limits. */
  async create(name: string, limits: CgroupLimits): Promise<InstanceCgroups> {
    const dirs: string[] = [];
    let oomFile: { path: string; pattern: RegExp } | undefined;
    let killFile: string | undefined;
    let cpuFile: { path: string; read: (text: string) => number | undefined } | undefined;
    if (this.bases.unified) {
      const dir = join(this.bases.unified, name);
      await mkdir(dir, { recursive: true });
      dirs.push(dir);
      await writeFile(join(dir, 'memory.max'), String(limits.memoryBytes));
      await writeFile(join(dir, 'memory.swap.max'), '0').catch(() => undefined);
      await writeFile(join(dir, 'pids.max'), String(limits.processes));
      if (this.bases.cpu)
        await writeFile(join(dir, 'cpu.max'), `${Math.round((limits.cpus ?? 1) * 100_000)} 100000`).catch(
          () => undefined,
        );
      oomFile = { path: join(dir, 'memory.events'), pattern: /^oom_kill [1-9]/m };
      if (existsSync(join(dir, 'cgroup.kill'))) killFile = join(dir, 'cgroup.kill');
      // cpu.stat exists in every v2 group, with or without the cpu controller.
      cpuFile = {
        path: join(dir, 'cpu.stat'),
        read: (text) => {
          const usec = /^usage_usec (\d+)/m.exec(text)?.[1];
          return usec === undefined ? undefined : Math.round(Number(usec) / 1000);
        },
      };
    }
    if (this.bases.memory) {
      const dir = join(this.bases.memory, name);
      await mkdir(dir, { recursive: true });
      dirs.push(dir);
      await writeFile(join(dir, 'memory.limit_in_bytes'), String(limits.memoryBytes));
      // Without swap accounting this file does not exist; with it, swap counts against the limit too.
      await writeFile(join(dir, 'memory.memsw.limit_in_bytes'), String(limits.memoryBytes)).catch(() => undefined);
      oomFile = { path: join(dir, 'memory.oom_control'), pattern: /oom_kill [1-9]/ };
    }
    if (this.bases.pids) {
      const dir = join(this.bases.pids, name);
      await mkdir(dir, { recursive: true });
      dirs.push(dir);
      await writeFile(join(dir, 'pids.max'), String(limits.processes));
    }
    if (this.bases.cpuacct && !this.bases.unified) {
      // Accounting only (no limit): the job's CPU time for metering; RLIMIT_CPU still bounds it.
      const dir = join(this.bases.cpuacct, name);
      await mkdir(dir, { recursive: true });
      dirs.push(dir);
      cpuFile = {
        path: join(dir, 'cpuacct.usage'),
        read: (text) => (/^\d+/.test(text.trim()) ? Math.round(Number(text.trim()) / 1e6) : undefined),
      };
    }
    return {
      procsFiles: dirs.map((dir) => join(dir, 'cgroup.procs')),
      boundsProcesses: this.pids,
      async oomKilled() {
        return oomFile ? oomFile.pattern.test(await readText(oomFile.path)) : false;
      },
      async cpuTimeMs() {
        if (!cpuFile) return undefined;
        const text = await readText(cpuFile.path);
        return cpuFile.read(text);
      },
      async kill() {
        if (killFile) await writeFile(killFile, '1').catch(() => undefined);
        for (const dir of dirs) await killAll(join(dir, 'cgroup.procs'));
      },
      async remove() {
        for (const dir of dirs) await removeDir(dir);
      },
    };
  }

  /**
   * Kill what a previous agent with the same data directory left behind (it was killed
   * before it could stop its instances): every process in a child group whose name starts
   * with `prefix`, and remove the group. Other agents' groups have other prefixes.
   */
  async sweep(prefix: string): Promise<number> {
    let swept = 0;
    for (const base of [this.bases.unified, this.bases.memory, this.bases.pids, this.bases.cpuacct]) {
      if (!base) continue;
      const names = await readdir(base).catch(() => [] as string[]);
      for (const name of names) {
        if (!name.startsWith(prefix)) continue;
        const dir = join(base, name);
        if (existsSync(join(dir, 'cgroup.kill'))) await writeFile(join(dir, 'cgroup.kill'), '1').catch(() => undefined);
        await killAll(join(dir, 'cgroup.procs'));
        await removeDir(dir);
        swept++;
      }
    }
    return swept;
  }
}
