import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { INSITU, runInsitu } from '../test/support.js';
import type { FaultName } from './args.js';
import { DBM_PORT, DBM_TOKEN, type Bed } from './bed.js';
import { commandLine, netnsOf, pidsIn, setLink, setNetem, MGMT, type Machine, type Mgmt } from './network.js';
import { primaries } from './invariants.js';

/** One fault: what it breaks, and how the bed heals it (some heal themselves). */
export interface Fault {
  name: FaultName;
  describe: string;
  inject(bed: Bed): Promise<string>;
  heal(bed: Bed): Promise<void>;
  /** Seconds to hold the fault before healing. */
  holdMs: number;
}

/**
 * When a fault kill -9'd an `insitu server` (alone or with its node). A server writes its
 * metering and audit records in batches (`audit.flushIntervalMs`, 250 ms): the calls it
 * answered in the last interval before such a cut are answered but never recorded, which
 * the metering check tolerates and states.
 */
export const serverCuts: number[] = [];

function killServerOn(node: Mgmt): number | undefined {
  // The node's `insitu server` child: its command line carries `insitu.js server`.
  const pid = pidsIn(node).find((p) => / server --data-dir /.test(commandLine(p)));
  if (pid !== undefined) {
    serverCuts.push(Date.now());
    process.kill(pid, 'SIGKILL');
  }
  return pid;
}

export function makeFault(name: FaultName, pick: () => number): Fault {
  const more = moreFault(name, pick);
  if (more) return more;
  switch (name) {
    case 'server-kill': {
      const node = MGMT[Math.floor(pick() * MGMT.length)] ?? 'mgmt2';
      return {
        name,
        holdMs: 10_000,
        describe: `kill -9 insitu server on ${node} (the operator restarts it)`,
        inject: async () => `killed server pid ${killServerOn(node) ?? 'none found'} on ${node}`,
        heal: async () => undefined,
      };
    }
    case 'agent-kill': {
      return {
        name,
        holdMs: 10_000,
        describe: 'kill -9 of agent hospital-a (prov1); hospital-b keeps serving; restarted at heal',
        inject: async (bed) => {
          const agent = bed.agents.find((a) => a.name === 'hospital-a');
          const pid = agent?.proc.pid;
          await agent?.proc.kill('SIGKILL');
          return `killed agent hospital-a pid ${pid ?? 'none'}`;
        },
        heal: async (bed) => {
          const agent = bed.agents.find((a) => a.name === 'hospital-a');
          if (agent === undefined) return;
          agent.proc = bed.spawn(
            `agent-${agent.name}`,
            agent.machine,
            process.execPath,
            agent.args,
            Object.fromEntries(
              Object.entries(agent.env).filter((e): e is [string, string] => typeof e[1] === 'string'),
            ),
          );
          await agent.proc.waitForOutput(/agent running/);
        },
      };
    }
    case 'primary-kill': {
      let victim = '';
      return {
        name,
        holdMs: 15_000,
        describe: 'kill -9 of the MariaDB primary (the dbmanager fails over); restarted at heal, rejoins as a replica',
        inject: async (bed) => {
          const writable = await primaries(bed);
          victim = writable[0] ?? '';
          await bed.members.get(victim)?.kill('SIGKILL');
          return `killed MariaDB primary ${victim || '(none writable!)'}`;
        },
        heal: async (bed) => {
          if (victim) await bed.members.get(victim)?.start();
        },
      };
    }
    case 'etcd-kill': {
      const index = Math.floor(pick() * 3);
      return {
        name,
        holdMs: 10_000,
        describe: `kill -9 of etcd member ${index + 1}; restarted at heal`,
        inject: async (bed) => {
          await bed.etcd.members[index]?.kill('SIGKILL');
          return `killed etcd${index + 1}`;
        },
        heal: async (bed) => {
          await bed.etcd.members[index]?.start();
        },
      };
    }
    case 'partition-mgmt': {
      const node = MGMT[Math.floor(pick() * MGMT.length)] ?? 'mgmt3';
      return {
        name,
        holdMs: 15_000,
        describe: `${node} partitioned (its link down), every process on it still running`,
        inject: async () => {
          await setLink(node, false);
          return `link down on ${node}`;
        },
        heal: async () => setLink(node, true),
      };
    }
    case 'netem-prov1':
      return {
        name,
        holdMs: 15_000,
        describe: 'tc netem 100 ms delay, 2 % loss on prov1',
        inject: async () => {
          try {
            await setNetem('prov1', ['delay', '100ms', 'loss', '2%']);
          } catch (error) {
            // This kernel has no sch_netem (Debian's cloud kernels leave it out): a skipped row, said why.
            if (/unknown|No such file/i.test((error as Error).message))
              throw Object.assign(
                new Error(
                  `skipped: tc netem unavailable in this kernel (${(error as Error).message.trim().slice(0, 160)})`,
                ),
                {
                  skipped: true,
                },
              );
            throw error;
          }
          return 'netem on prov1';
        },
        heal: async () => setNetem('prov1', undefined),
      };
    default:
      throw new Error(`fault ${name} has no implementation`);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Run a command inside a machine of the bed; its stdout. */
function inMachine(machine: Machine, command: string, args: string[]): string {
  const result = spawnSync('ip', ['netns', 'exec', netnsOf(machine), command, ...args], {
    encoding: 'utf8',
    timeout: 20_000,
  });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} in ${machine}: ${result.stderr}`);
  return result.stdout;
}

/** The elected dbmanager: its node and its process id (its id is `hostname-pid`). */
export function dbmanagerLeader(): { node: Mgmt; pid: number } | undefined {
  for (const node of MGMT) {
    try {
      const out = inMachine(node, process.execPath, [
        INSITU,
        'db',
        'status',
        '--url',
        `http://127.0.0.1:${DBM_PORT}`,
        '--token',
        DBM_TOKEN,
        '--json',
      ]);
      const status = JSON.parse(out) as { manager: { id: string; leader: boolean; leaderId?: string } };
      const id = status.manager.leader ? status.manager.id : status.manager.leaderId;
      const pid = Number(/-(\d+)$/.exec(id ?? '')?.[1]);
      if (!Number.isInteger(pid)) continue;
      const owner = MGMT.find((m) => pidsIn(m).includes(pid));
      if (owner) return { node: owner, pid };
    } catch {
      // this node's manager does not answer; ask the next
    }
  }
  return undefined;
}

/** The node whose operator leads now (`insitu operator status --json`). */
export async function operatorLeader(bed: Bed): Promise<Mgmt | undefined> {
  const result = await runInsitu(['operator', 'status', '--json', '--config', bed.nodeConfigs.get('mgmt1') ?? '']);
  if (result.code !== 0) return undefined;
  const leader = (JSON.parse(result.stdout) as { leader?: string }).leader;
  return MGMT.find((m) => m === leader);
}

/** Parent of every process now, from /proc. */
function parents(): Map<number, number> {
  const map = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      map.set(Number(entry), ppid);
    } catch {
      // gone meanwhile
    }
  }
  return map;
}

/** The application processes (`RUNTIME /app/index.js` inside bwrap) the named agent runs now. */
export function appInstancePids(agentPid: number): number[] {
  const ppid = parents();
  const descends = (pid: number): boolean => {
    for (let p = ppid.get(pid); p !== undefined && p > 1; p = ppid.get(p)) if (p === agentPid) return true;
    return false;
  };
  return [...ppid.keys()]
    .filter((pid) => / \/app\/index\.js$/.test(commandLine(pid).trim()) && !/bwrap/.test(commandLine(pid)))
    .filter(descends)
    .sort((a, b) => a - b);
}

/** Every process of one management node killed at once: etcd, MariaDB, `insitu node` and its children. */
async function killNode(bed: Bed, node: Mgmt): Promise<string> {
  const index = MGMT.indexOf(node);
  const before = pidsIn(node);
  serverCuts.push(Date.now());
  for (const pid of before) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  // Let the helpers see their processes are gone (their kill waits for the exit).
  await Promise.all([
    bed.members.get(`db${index + 1}`)?.kill('SIGKILL'),
    bed.etcd.members[index]?.kill('SIGKILL'),
    bed.nodes.get(node)?.kill('SIGKILL'),
  ]);
  return `node loss: killed ${before.length} process(es) on ${node} (etcd${index + 1}, db${index + 1}, insitu node + server + dbmanager)`;
}

/** Bring a lost node back: its etcd member, its MariaDB member, then `insitu node`. */
async function restartNode(bed: Bed, node: Mgmt): Promise<void> {
  const index = MGMT.indexOf(node);
  await bed.etcd.members[index]?.start();
  await bed.members.get(`db${index + 1}`)?.start();
  const proc = bed.spawn(`node-${node}-again`, node, process.execPath, [
    INSITU,
    'node',
    '--config',
    bed.nodeConfigs.get(node) ?? '',
  ]);
  bed.nodes.set(node, proc);
  await proc.waitForOutput(/joined/, 60_000);
}

/** Faults the seeded random sequence draws from: single-process faults that heal fast. */
const SEQUENCE_POOL: readonly FaultName[] = [
  'server-kill',
  'agent-kill',
  'etcd-kill',
  'app-instance-kill',
  'dbmanager-stop',
  'primary-kill',
];

function moreFault(name: FaultName, pick: () => number): Fault | undefined {
  switch (name) {
    case 'node-loss-primary':
    case 'node-loss-leader': {
      let node: Mgmt | undefined;
      return {
        name,
        holdMs: 15_000,
        describe:
          name === 'node-loss-primary'
            ? "node loss of the MariaDB primary's node (every process on it kill -9); restarted at heal"
            : "node loss of the operator leader's node (every process on it kill -9); restarted at heal",
        inject: async (bed) => {
          if (name === 'node-loss-primary') {
            const [primary] = await primaries(bed);
            node = MGMT[Number(primary?.replace('db', '') ?? '0') - 1];
          } else node = await operatorLeader(bed);
          if (node === undefined) throw new Error(`no ${name === 'node-loss-primary' ? 'primary' : 'operator leader'}`);
          return killNode(bed, node);
        },
        heal: async (bed) => {
          if (node) await restartNode(bed, node);
        },
      };
    }
    case 'dbmanager-stop': {
      let pid: number | undefined;
      return {
        name,
        holdMs: 30_000,
        describe:
          "SIGSTOP of the elected dbmanager for 30 s (another is elected; its node's supervisor kills the hung one and starts a new one)",
        inject: async () => {
          // The leader's id can name a manager that just exited (a restart): look again.
          for (let attempt = 1; ; attempt++) {
            const leader = dbmanagerLeader();
            try {
              if (leader === undefined) throw new Error('no elected dbmanager found');
              process.kill(leader.pid, 'SIGSTOP');
              pid = leader.pid;
              return `SIGSTOP dbmanager pid ${pid} on ${leader.node}`;
            } catch (error) {
              if (attempt >= 5) throw error;
              await sleep(1000);
            }
          }
        },
        heal: async () => {
          if (pid === undefined) return;
          try {
            process.kill(pid, 'SIGCONT');
          } catch (error) {
            // Its node's supervisor saw the liveness probe fail while the process lived (hung: 3 s in
            // this bed) and killed it; a new manager runs. That is the platform working, not a failed heal.
            if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
            process.stdout.write(
              `testbed:   dbmanager pid ${pid} is gone: its supervisor killed it as hung during the stop\n`,
            );
          }
        },
      };
    }
    case 'app-instance-kill':
      return {
        name,
        holdMs: 10_000,
        describe: 'kill -9 of one instance of "wards" at hospital-a (the agent restarts it)',
        inject: async (bed) => {
          const agent = bed.agents.find((a) => a.name === 'hospital-a');
          const instances = agent?.proc.pid === undefined ? [] : appInstancePids(agent.proc.pid);
          const victim = instances[Math.floor(pick() * instances.length)];
          if (victim === undefined) throw new Error('no application instance of hospital-a found');
          process.kill(victim, 'SIGKILL');
          return `killed application instance pid ${victim} (of ${instances.length} at hospital-a)`;
        },
        heal: async () => undefined,
      };
    case 'random-sequence': {
      const steps = [0, 1, 2].map(() => SEQUENCE_POOL[Math.floor(pick() * SEQUENCE_POOL.length)] ?? 'server-kill');
      const faults = steps.map((step) => makeFault(step, pick));
      return {
        name,
        holdMs: 0,
        describe: `seeded random sequence: ${steps.join(' → ')} (each held 8 s, healed, 8 s apart)`,
        inject: async (bed) => {
          const done: string[] = [];
          for (const fault of faults) {
            done.push(await fault.inject(bed));
            await sleep(8000);
            await fault.heal(bed);
            await sleep(8000);
          }
          return done.join('; ');
        },
        heal: async () => undefined,
      };
    }
    default:
      return undefined;
  }
}
