import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { waitFor } from '@insitu/core';
import { trackDir } from './cleanup-registry.js';
import { freePort } from './free-port.js';
import { httpRequest } from './http-request.js';
import { ManagedProcess } from './managed-process.js';
import { ManagedServer } from './managed-server.js';
import { findCommand, requireCommand } from './require-command.js';
import { makeTempDir } from './temp-dir.js';

/** Options for {@link startEtcd}. */
export interface EtcdOptions {
  /** Member name; default `etcd1`. */
  name?: string;
  /** Loopback address to listen on; default `127.0.0.1`. */
  host?: string;
  /** How long to wait for `/health`; default 30 s. */
  startTimeoutMs?: number;
}

/** One etcd server, alone ({@link startEtcd}) or in a cluster (`startEtcdCluster`). */
export interface EtcdMember {
  readonly name: string;
  /** `http://127.0.0.1:PORT`, what clients connect to. */
  readonly clientUrl: string;
  /** Same as {@link EtcdMember.clientUrl}: the endpoint to give an etcd client. */
  readonly endpoint: string;
  readonly peerUrl: string;
  readonly dataDir: string;
  /** etcd's own log (zap, JSON lines). */
  readonly logFile: string;
  /** PID of etcd, `undefined` while it is not running. */
  readonly pid: number | undefined;
  readonly running: boolean;
  /** True when `GET /health` answers `{"health":"true"}` (a leader and a quorum read work). */
  health(): Promise<boolean>;
  /**
   * Send `signal` (default SIGKILL); resolves when etcd has exited (for SIGSTOP/SIGCONT,
   * once sent). The data stays: {@link EtcdMember.start} restarts it.
   */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /**
   * Start again on the same data dir and ports. Unless `wait: false`, resolves once the
   * member is healthy, which needs a quorum running: restart several members concurrently.
   */
  start(options?: { wait?: boolean }): Promise<void>;
  /** Stop it (SIGTERM, SIGKILL after a short grace: the data is thrown away) and delete its data. */
  stop(): Promise<void>;
}

/** Everything a member needs to know about its cluster. */
export interface EtcdMemberPlan {
  name: string;
  host: string;
  clientPort: number;
  peerPort: number;
  initialCluster: string;
  token: string;
  startTimeoutMs: number;
  /** Run etcd inside `ip netns exec NAME` (the namespace must exist; needs root). */
  netns?: string;
}

/** Where one member of a cluster runs, when not all on one loopback address. */
export interface EtcdMemberPlacement {
  /** Namespace to run in (`ip netns exec`); its ports default to 2379 and 2380. */
  netns?: string;
  /** Address to listen on inside it. */
  host: string;
  clientPort?: number;
  peerPort?: number;
}

/** etcd may take several seconds to exit on SIGTERM, and the data is thrown away anyway. */
const STOP_GRACE_MS = 500;

function httpUrl(host: string, port: number): string {
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

class EtcdServer extends ManagedServer implements EtcdMember {
  readonly name: string;
  readonly clientUrl: string;
  readonly endpoint: string;
  readonly peerUrl: string;
  readonly dataDir: string;
  readonly logFile: string;
  readonly #startTimeoutMs: number;

  constructor(init: {
    plan: EtcdMemberPlan;
    dir: string;
    etcd: string;
    ip: string | undefined;
    setpriv: string | undefined;
  }) {
    super(init.dir, { signal: 'SIGTERM', graceMs: STOP_GRACE_MS, exitWaitMs: 60_000 });
    const { plan, dir } = init;
    this.name = plan.name;
    this.clientUrl = httpUrl(plan.host, plan.clientPort);
    this.endpoint = this.clientUrl;
    this.peerUrl = httpUrl(plan.host, plan.peerPort);
    this.dataDir = join(dir, 'data');
    this.logFile = join(dir, 'etcd.log');
    this.#startTimeoutMs = plan.startTimeoutMs;
    this.attach(
      new ManagedProcess({
        name: `etcd ${plan.name} (${this.clientUrl})`,
        command: plan.netns === undefined || init.ip === undefined ? init.etcd : init.ip,
        args: [
          ...(plan.netns === undefined || init.ip === undefined ? [] : ['netns', 'exec', plan.netns, init.etcd]),
          '--name',
          plan.name,
          '--data-dir',
          this.dataDir,
          '--listen-client-urls',
          this.clientUrl,
          '--advertise-client-urls',
          this.clientUrl,
          '--listen-peer-urls',
          this.peerUrl,
          '--initial-advertise-peer-urls',
          this.peerUrl,
          '--initial-cluster',
          plan.initialCluster,
          '--initial-cluster-state',
          'new',
          '--initial-cluster-token',
          plan.token,
          '--heartbeat-interval',
          '100',
          '--election-timeout',
          '1000',
          '--logger',
          'zap',
          '--log-outputs',
          'stderr',
        ],
        logFile: this.logFile,
        cwd: dir,
        ...(init.setpriv === undefined ? {} : { setpriv: init.setpriv }),
      }),
    );
  }

  async health(): Promise<boolean> {
    try {
      const response = await httpRequest(`${this.clientUrl}/health`, { timeoutMs: 2000 });
      const body: unknown = JSON.parse(response.body);
      return (
        response.status === 200 &&
        typeof body === 'object' &&
        body !== null &&
        'health' in body &&
        body.health === 'true'
      );
    } catch {
      return false;
    }
  }

  /** Resolve once healthy; fail early if the process exits. */
  async waitHealthy(): Promise<void> {
    await waitFor(() => this.health(), {
      timeoutMs: this.#startTimeoutMs,
      intervalMs: 50,
      what: `etcd ${this.name} at ${this.clientUrl} to report health (log: ${this.logFile})`,
      signal: this.process.exitSignal,
    });
  }

  /** Spawn without waiting; the cluster starts every member first, then waits. */
  spawn(): void {
    if (this.stopped) throw new Error(`etcd ${this.name} was stopped and its data deleted; start a new one`);
    this.process.start();
  }

  async start(options: { wait?: boolean } = {}): Promise<void> {
    this.spawn();
    if (options.wait === false) return;
    try {
      await this.waitHealthy();
    } catch (error) {
      await this.process.kill();
      throw error;
    }
  }
}

/**
 * Create (but do not start) members for a new cluster: free ports, a temp dir each, a
 * shared `--initial-cluster` and a unique cluster token. Internal to the package.
 */
export async function planEtcdMembers(
  names: readonly string[],
  host: string,
  startTimeoutMs: number,
  placements?: (index: number) => EtcdMemberPlacement,
): Promise<Array<EtcdMember & { spawn(): void; waitHealthy(): Promise<void> }>> {
  const etcd = await requireCommand('etcd', 'etcd-server');
  const setpriv = await findCommand('setpriv');
  const ports: Array<{ name: string; host: string; netns?: string; clientPort: number; peerPort: number }> = [];
  for (const [index, name] of names.entries()) {
    const placed = placements?.(index);
    if (placed?.netns !== undefined) {
      // A fresh namespace has every port free; the root namespace cannot probe it anyway.
      ports.push({
        name,
        host: placed.host,
        netns: placed.netns,
        clientPort: placed.clientPort ?? 2379,
        peerPort: placed.peerPort ?? 2380,
      });
    } else {
      const at = placed?.host ?? host;
      ports.push({
        name,
        host: at,
        clientPort: placed?.clientPort ?? (await freePort(at)),
        peerPort: placed?.peerPort ?? (await freePort(at)),
      });
    }
  }
  const ip = ports.some((member) => member.netns !== undefined) ? await requireCommand('ip', 'iproute2') : undefined;
  const initialCluster = ports.map((member) => `${member.name}=${httpUrl(member.host, member.peerPort)}`).join(',');
  const token = `insitu-test-${randomBytes(8).toString('hex')}`;
  const members: EtcdServer[] = [];
  try {
    for (const member of ports) {
      const dir = await makeTempDir(`insitu-etcd-${member.name}-`);
      trackDir(dir);
      members.push(
        new EtcdServer({ plan: { ...member, initialCluster, token, startTimeoutMs }, dir, etcd, ip, setpriv }),
      );
    }
  } catch (error) {
    await Promise.allSettled(members.map((member) => member.stop()));
    throw error;
  }
  return members;
}

/**
 * Start one private etcd member (a cluster of one) on free loopback ports with its data
 * in a temp dir; resolves when `/health` says true.
 *
 * @example
 * const etcd = await startEtcd();
 * // give etcd.endpoint to the code under test
 * await etcd.stop();
 */
export async function startEtcd(options: EtcdOptions = {}): Promise<EtcdMember> {
  const [member] = await planEtcdMembers(
    [options.name ?? 'etcd1'],
    options.host ?? '127.0.0.1',
    options.startTimeoutMs ?? 30_000,
  );
  if (member === undefined) throw new Error('no etcd member planned');
  try {
    await member.start();
  } catch (error) {
    await member.stop();
    throw error;
  }
  return member;
}
