import { spawnSync } from 'node:child_process';
import { requireCommand } from './require-command.js';
import { runChecked } from './run-command.js';

/** One node of a {@link TestNetwork}: a network namespace with one interface on the bridge. */
export interface NetworkNode {
  /** The namespace name, for `startMariaDb({ netns })` or `ip netns exec`. */
  readonly netns: string;
  /** Its address on the bridge. */
  readonly address: string;
  /** Its interface inside the namespace. */
  readonly iface: string;
}

/** Namespaces on a private bridge that the test process (root namespace) reaches too. */
export interface TestNetwork {
  readonly nodes: readonly NetworkNode[];
  /** The root namespace's address on the bridge. */
  readonly hostAddress: string;
  /** Take a node off the network (its interface down), as a cut cable would. */
  linkDown(index: number): Promise<void>;
  linkUp(index: number): Promise<void>;
  /** Delete the namespaces and the bridge. Processes inside must be stopped first. */
  destroy(): Promise<void>;
}

/*
 * Process-wide on purpose, like the cleanup registry: namespaces and bridges outlive the
 * process unless deleted, so an exiting test deletes what it created.
 */
let networksMade = 0;
const created = new Set<{ namespaces: string[]; bridge: string }>();
let exitHandler = false;

function deleteSync(entry: { namespaces: string[]; bridge: string }): void {
  for (const name of entry.namespaces) spawnSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
  spawnSync('ip', ['link', 'del', entry.bridge], { stdio: 'ignore' });
}

/**
 * Create `nodes` network namespaces joined by a bridge in the root namespace, on a private
 * /24 inside 10.213.0.0/16 that only exists here, with the root namespace at `.254`. Needs
 * root and `ip` (iproute2). Delete with {@link TestNetwork.destroy} (also done on exit).
 *
 * @example
 * const net = await createTestNetwork({ nodes: 3 });
 * const db = await startMariaDb({ netns: net.nodes[0].netns, bindAddress: net.nodes[0].address });
 * await net.linkDown(0);
 */
export async function createTestNetwork(options: { nodes?: number } = {}): Promise<TestNetwork> {
  const ip = await requireCommand('ip', 'iproute2');
  if (process.getuid?.() !== 0) throw new Error('createTestNetwork needs root (network namespaces)');
  const count = options.nodes ?? 3;
  // A second network in the same process gets other names and another /24: the kernel deletes a
  // namespace's veth asynchronously, so reusing the first one's names can meet "File exists".
  const sequence = networksMade++;
  const tag = `${process.pid % 100_000}${sequence === 0 ? '' : String.fromCharCode(96 + (sequence % 26 || 26))}`;
  const subnet = `10.213.${(process.pid + sequence * 37) % 250}`;
  const bridge = `itb${tag}`;
  const entry = { namespaces: [] as string[], bridge };
  created.add(entry);
  if (!exitHandler) {
    exitHandler = true;
    process.on('exit', () => {
      for (const e of created) deleteSync(e);
    });
  }
  const run = (args: string[]) => runChecked(ip, args);
  const nodes: NetworkNode[] = [];
  try {
    await run(['link', 'add', bridge, 'type', 'bridge']);
    await run(['addr', 'add', `${subnet}.254/24`, 'dev', bridge]);
    await run(['link', 'set', bridge, 'up']);
    for (let i = 0; i < count; i++) {
      const netns = `itn${tag}-${i + 1}`;
      const outside = `itv${tag}-${i + 1}`;
      const inside = 'eth0';
      await run(['netns', 'add', netns]);
      entry.namespaces.push(netns);
      await run(['link', 'add', outside, 'type', 'veth', 'peer', 'name', inside, 'netns', netns]);
      await run(['link', 'set', outside, 'master', bridge]);
      await run(['link', 'set', outside, 'up']);
      const address = `${subnet}.${i + 1}`;
      await run(['-n', netns, 'addr', 'add', `${address}/24`, 'dev', inside]);
      await run(['-n', netns, 'link', 'set', inside, 'up']);
      await run(['-n', netns, 'link', 'set', 'lo', 'up']);
      nodes.push({ netns, address, iface: inside });
    }
  } catch (error) {
    deleteSync(entry);
    created.delete(entry);
    throw error;
  }
  const node = (index: number) => {
    const found = nodes[index];
    if (found === undefined) throw new Error(`no node ${index}`);
    return found;
  };
  return {
    nodes,
    hostAddress: `${subnet}.254`,
    linkDown: async (index) => {
      const n = node(index);
      await run(['-n', n.netns, 'link', 'set', n.iface, 'down']);
    },
    linkUp: async (index) => {
      const n = node(index);
      await run(['-n', n.netns, 'link', 'set', n.iface, 'up']);
    },
    destroy: async () => {
      if (!created.has(entry)) return;
      created.delete(entry);
      deleteSync(entry);
    },
  };
}
