import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** Run a command to completion; reject with its stderr when it fails. */
export async function runChecked(command: string, args: readonly string[]): Promise<string> {
  try {
    const { stdout } = await execFileAsync(command, [...args], { encoding: 'utf8' });
    return stdout;
  } catch (error) {
    const e = error as { stderr?: string; message: string };
    throw new Error(`${command} ${args.join(' ')}: ${e.stderr?.trim() || e.message}`);
  }
}

/** Everything the bed creates carries this prefix: namespaces, the bridge, veths, data dirs. */
export const MARKER = 'itb-';
export const BRIDGE = `${MARKER}br0`;
const SUBNET = '10.214.77';
export const HOST_ADDRESS = `${SUBNET}.254`;

export const MACHINES = {
  mgmt1: `${SUBNET}.1`,
  mgmt2: `${SUBNET}.2`,
  mgmt3: `${SUBNET}.3`,
  prov1: `${SUBNET}.11`,
  prov2: `${SUBNET}.12`,
  client: `${SUBNET}.20`,
} as const;
export type Machine = keyof typeof MACHINES;
export const MGMT = ['mgmt1', 'mgmt2', 'mgmt3'] as const;
export type Mgmt = (typeof MGMT)[number];

export const netnsOf = (machine: Machine): string => `${MARKER}${machine}`;

/** Create the six namespaces on the private bridge (the root namespace is `.254` on it). */
export async function createBedNetwork(): Promise<void> {
  const run = (args: string[]) => runChecked('ip', args);
  await run(['link', 'add', BRIDGE, 'type', 'bridge']);
  await run(['addr', 'add', `${HOST_ADDRESS}/24`, 'dev', BRIDGE]);
  await run(['link', 'set', BRIDGE, 'up']);
  for (const [machine, address] of Object.entries(MACHINES) as Array<[Machine, string]>) {
    const ns = netnsOf(machine);
    const outside = `${MARKER}v-${machine}`;
    await run(['netns', 'add', ns]);
    await run(['link', 'add', outside, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    await run(['link', 'set', outside, 'master', BRIDGE]);
    await run(['link', 'set', outside, 'up']);
    await run(['-n', ns, 'addr', 'add', `${address}/24`, 'dev', 'eth0']);
    await run(['-n', ns, 'link', 'set', 'eth0', 'up']);
    await run(['-n', ns, 'link', 'set', 'lo', 'up']);
  }
}

/** Take a machine off the network (cut cable) or back on. */
export async function setLink(machine: Machine, up: boolean): Promise<void> {
  await runChecked('ip', ['-n', netnsOf(machine), 'link', 'set', 'eth0', up ? 'up' : 'down']);
}

/** `tc netem` on a machine's link; `undefined` removes it. */
export async function setNetem(machine: Machine, spec: string[] | undefined): Promise<void> {
  if (spec === undefined)
    spawnSync('ip', ['netns', 'exec', netnsOf(machine), 'tc', 'qdisc', 'del', 'dev', 'eth0', 'root'], {
      stdio: 'ignore',
    });
  else
    await runChecked('ip', [
      'netns',
      'exec',
      netnsOf(machine),
      'tc',
      'qdisc',
      'add',
      'dev',
      'eth0',
      'root',
      'netem',
      ...spec,
    ]);
}

/** PIDs of every process inside a namespace of the bed. */
export function pidsIn(machine: Machine): number[] {
  const result = spawnSync('ip', ['netns', 'pids', netnsOf(machine)], { encoding: 'utf8' });
  if (result.status !== 0) return [];
  return result.stdout
    .split('\n')
    .filter(Boolean)
    .map(Number)
    .filter((n) => Number.isInteger(n) && n > 1);
}

export function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
}

/** The bed's namespaces that exist now. */
export function bedNamespaces(): string[] {
  const result = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  return (result.stdout ?? '')
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n.startsWith(MARKER));
}

/**
 * Remove whatever a bed left behind: SIGKILL every process inside its namespaces and every
 * process whose command line names a bed directory (`/itb-run-`), then delete the
 * namespaces and the bridge. Touches nothing else. Returns what it removed.
 */
export function cleanBed(runDirMarker = `/${MARKER}run-`): {
  processes: number[];
  namespaces: string[];
  bridge: boolean;
} {
  const namespaces = bedNamespaces();
  const victims = new Set<number>();
  for (const ns of namespaces) {
    const result = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' });
    for (const line of (result.stdout ?? '').split('\n')) if (/^\d+$/.test(line)) victims.add(Number(line));
  }
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid || pid === process.ppid) continue;
    if (commandLine(pid).includes(runDirMarker)) victims.add(pid);
  }
  for (const pid of victims) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const ns of namespaces) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  const bridge = spawnSync('ip', ['link', 'del', BRIDGE], { stdio: 'ignore' }).status === 0;
  return { processes: [...victims].sort((a, b) => a - b), namespaces, bridge };
}
