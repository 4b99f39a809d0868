import { planEtcdMembers, type EtcdMember, type EtcdMemberPlacement } from './start-etcd.js';

/** Options for {@link startEtcdCluster}. */
export interface EtcdClusterOptions {
  /** Number of members; default 3. */
  members?: number;
  /** Loopback address to listen on; default `127.0.0.1`. */
  host?: string;
  /** How long to wait for every member to be healthy; default 30 s. */
  startTimeoutMs?: number;
  /** Per-member placement (index 0 is `etcd1`): a network namespace and its address. */
  memberOptions?: (index: number) => EtcdMemberPlacement;
}

/** A private etcd cluster started by {@link startEtcdCluster}. */
export interface EtcdCluster {
  /** Client URLs of all members, e.g. `http://127.0.0.1:41234`. */
  readonly endpoints: string[];
  readonly members: EtcdMember[];
  /** Stop every member and delete the data. */
  stop(): Promise<void>;
}

async function stopAll(members: readonly EtcdMember[]): Promise<void> {
  const results = await Promise.allSettled(members.map((member) => member.stop()));
  const failure = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failure !== undefined) throw failure.reason;
}

/**
 * Start an etcd cluster of `members` (default 3) on free loopback client and peer ports,
 * each member with its own data dir, heartbeat 100 ms and election timeout 1 s. Resolves
 * when every member answers `/health` with true.
 *
 * @example
 * const etcd = await startEtcdCluster();
 * // new Etcd3({ hosts: etcd.endpoints })
 * await etcd.members[0].kill(); // the other two keep a quorum
 * await etcd.stop();
 */
export async function startEtcdCluster(options: EtcdClusterOptions = {}): Promise<EtcdCluster> {
  const count = options.members ?? 3;
  if (!Number.isInteger(count) || count < 1) throw new Error(`members must be a positive integer, got ${count}`);
  const names = Array.from({ length: count }, (_unused, index) => `etcd${index + 1}`);
  const members = await planEtcdMembers(
    names,
    options.host ?? '127.0.0.1',
    options.startTimeoutMs ?? 30_000,
    options.memberOptions,
  );
  try {
    // All at once: a member only becomes ready when a quorum of its peers is up.
    for (const member of members) member.spawn();
    await Promise.all(members.map((member) => member.waitHealthy()));
  } catch (error) {
    await stopAll(members);
    throw error;
  }
  return {
    endpoints: members.map((member) => member.clientUrl),
    members,
    stop: () => stopAll(members),
  };
}
