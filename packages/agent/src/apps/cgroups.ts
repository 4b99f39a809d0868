import { access, mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { constants } from 'node:fs';
import { join } from 'node:path';

const ROOT = '/sys/fs/cgroup';

/** One instance's cgroups (v1 memory and pids controllers), created below the agent's own. */
export interface InstanceCgroups {
  memory?: string;
  pids?: string;
  /** True when the kernel's OOM killer killed a process of this instance. */
  oomKilled(): Promise<boolean>;
  remove(): Promise<void>;
}

async function ownPath(controller: string): Promise<string | undefined> {
  try {
    const text = await readFile('/proc/self/cgroup', 'utf8');
    for (const line of text.split('\n')) {
      const [, controllers, path] = line.split(':');
      if (controllers?.split(',').includes(controller) && path !== undefined) return path;
    }
  } catch {
    // no /proc: no cgroups
  }
  return undefined;
}

async function writable(dir: string): Promise<boolean> {
  try {
    await access(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * cgroup v1 memory and pids limits, where this process may create child cgroups (an agent
 * running as root, or with a delegated subtree). Each instance gets a child cgroup of the
 * agent's own, so the agent's own limits still bound it.
 */
export class Cgroups {
  private constructor(
    private readonly memoryBase: string | undefined,
    private readonly pidsBase: string | undefined,
  ) {}

  static async detect(enabled: boolean): Promise<Cgroups> {
    if (!enabled) return new Cgroups(undefined, undefined);
    const found: Array<string | undefined> = [];
    for (const controller of ['memory', 'pids']) {
      const path = await ownPath(controller);
      const dir = path === undefined ? undefined : join(ROOT, controller, path);
      found.push(dir && (await writable(dir)) && (await writable(join(dir, 'cgroup.procs'))) ? dir : undefined);
    }
    return new Cgroups(found[0], found[1]);
  }

  get memory(): boolean {
    return this.memoryBase !== undefined;
  }

  get pids(): boolean {
    return this.pidsBase !== undefined;
  }

  /** Create the cgroups of one instance with its limits. */
  async create(name: string, limits: { memoryBytes: number; processes: number }): Promise<InstanceCgroups> {
    const made: { memory?: string; pids?: string } = {};
    if (this.memoryBase) {
      const dir = join(this.memoryBase, name);
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, 'memory.limit_in_bytes'), String(limits.memoryBytes));
      // Without swap accounting this file does not exist; with it, swap counts against the limit too.
      await writeFile(join(dir, 'memory.memsw.limit_in_bytes'), String(limits.memoryBytes)).catch(() => undefined);
      made.memory = dir;
    }
    if (this.pidsBase) {
      const dir = join(this.pidsBase, name);
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, 'pids.max'), String(limits.processes));
      made.pids = dir;
    }
    return {
      ...made,
      async oomKilled() {
        if (!made.memory) return false;
        const text = await readFile(join(made.memory, 'memory.oom_control'), 'utf8').catch(() => '');
        return /oom_kill [1-9]/.test(text);
      },
      async remove() {
        for (const dir of [made.memory, made.pids]) {
          if (!dir) continue;
          // The last processes may still be exiting; rmdir fails with EBUSY until they are gone.
          for (let attempt = 0; attempt < 50; attempt++) {
            try {
              await rmdir(dir);
              break;
            } catch (error) {
              const code = (error as NodeJS.ErrnoException).code;
              if (code === 'ENOENT') break;
              await new Promise((resolve) => setTimeout(resolve, 20));
            }
          }
        }
      },
    };
  }
}
