import type { FaultName } from './args.js';
import type { Bed } from './bed.js';
import { commandLine, pidsIn, setLink, setNetem, MGMT, type Mgmt } from './network.js';
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

function killServerOn(node: Mgmt): number | undefined {
  // The node's `insitu server` child: its command line carries `insitu.js server`.
  const pid = pidsIn(node).find((p) => / server --data-dir /.test(commandLine(p)));
  if (pid !== undefined) process.kill(pid, 'SIGKILL');
  return pid;
}

export function makeFault(name: FaultName, pick: () => number): Fault {
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
          await setNetem('prov1', ['delay', '100ms', 'loss', '2%']);
          return 'netem on prov1';
        },
        heal: async () => setNetem('prov1', undefined),
      };
  }
}
