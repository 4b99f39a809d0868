import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { chmod, chown, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  InsituError,
  manifestKinds,
  stricterJobPolicy,
  stricterPolicy,
  toInsituError,
  type AgentDatasetPolicy,
  type AgentJob,
  type AppManifest,
  type Logger,
  type OutputPolicy,
} from '@insitu/core';
import {
  LocalBalancer,
  sendError,
  sendStreamError,
  type InboundRequest,
  type OutboundResponse,
} from './apps/balancer.js';
import type { IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import { installBundle, installedBundle, normaliseDigest } from './apps/bundle.js';
import { LocalBundleSource, type BundleSource, type DesiredDeployment } from './apps/bundle-source.js';
import { Cgroups, type InstanceCgroups } from './apps/cgroups.js';
import { InstanceProcess, type InstanceExit } from './apps/instance.js';
import { collectResults, type JobResultFile } from './apps/job-results.js';
import { buildLaunch, checkSandbox } from './apps/sandbox.js';
import { seccompFilter, seccompSupported } from './apps/seccomp.js';
import {
  DEFAULT_RESTART_POLICY,
  DeploymentRunner,
  type InstanceStatus,
  type RestartPolicy,
} from './apps/deployment-runner.js';
import type { OutputLog } from './apps/output-log.js';
import type { AgentConfig } from './config/agent-config.js';
import { DataApiServer } from './data-api/data-api-server.js';
import { PrivacyBudget, type BudgetLedger } from './data-api/privacy-budget.js';
import type { DataSource } from './sources/data-source.js';
import { DatasetRegistry } from './sources/dataset-registry.js';
import { openSource } from './sources/open-source.js';
import { appUnavailable, bundleInvalid } from './errors.js';

/** Where a deployment stands, as the agent reports it to the platform. */
export type DeploymentState = 'pending' | 'starting' | 'running' | 'degraded' | 'crash-looping' | 'failed' | 'stopping';

export interface DeploymentStatus {
  id: string;
  app: string;
  version: string;
  digest: string;
  desiredReplicas: number;
  readyReplicas: number;
  state: DeploymentState;
  /** Why it failed, is crash-looping or degraded (`INSITU_APP_UNAVAILABLE` when an instance crash-loops). */
  reason?: { code: string; message: string };
  instances: InstanceStatus[];
}

/** The agent's status report: one entry per desired deployment. */
export interface AgentStatus {
  agentId?: string;
  providerId?: string;
  sandbox: 'bubblewrap' | 'none';
  /** What bounds an instance's memory and processes: cgroup controllers (v2 or v1), or only rlimits (weaker). */
  limits: { memory: 'cgroup' | 'rlimit'; processes: 'cgroup' | 'rlimit' };
  deployments: DeploymentStatus[];
}

interface Entry {
  desired: DesiredDeployment;
  state: 'pending' | 'active' | 'failed' | 'stopping';
  failure?: InsituError;
  failedAt?: number;
  manifest?: AppManifest;
  runner?: DeploymentRunner;
  dataApi?: DataApiServer;
  balancer?: LocalBalancer;
  abort: AbortController;
  ready: Promise<void>;
  /** Set once its removal began: an update and close() racing share one removal. */
  removal?: Promise<void>;
}

/** How a job run ended, as {@link Agent.runJob} reports it. */
export interface JobOutcome {
  state: 'succeeded' | 'failed' | 'refused' | 'cancelled';
  reason: string;
  exitCode: number | null;
  /** Its last output lines (the agent sends them up only if its config shares them). */
  output: string[];
  /** Result files the provider's policy let out (only when it succeeded). */
  files?: JobResultFile[];
  /** CPU time its processes used (ms), from its cgroup; absent where no CPU accounting group exists. */
  cpuTimeMs?: number;
}

/** How to build an {@link Agent}. */
export interface AgentOptions {
  config: Readonly<AgentConfig>;
  /** Holds the bundle cache (`bundles/`) and the agent's state files. */
  dataDir: string;
  logger: Logger;
  /**
   * This agent's provider. An application reads the datasets its deployment carries for
   * this provider id (resolved by the platform at submission), never what the manifest
   * names; `name` is only for messages. `'*'` serves every dataset the manifest names
   * (`insitu app dev`, where there is no platform and no id).
   */
  provider: { id: string; name?: string } | '*';
  agentId?: string;
  bundleSource?: BundleSource;
  /** Run applications without bubblewrap; refused unless `sandbox.allowNoSandbox` (or `allowNoSandbox` here, for `insitu app dev`). */
  noSandbox?: boolean;
  allowNoSandbox?: boolean;
  restartPolicy?: Partial<RestartPolicy>;
  /** A failed deployment (bundle fetch, digest, manifest) is tried again by `applyDesired` once this long has passed (default 30 s). */
  retryFailedAfterMs?: number;
  env?: NodeJS.ProcessEnv;
  /** Root of the `@insitu/sdk` package to mount into sandboxes (default: the installed one). */
  sdkDir?: string;
}

function installedSdkDir(): string {
  // …/sdk/dist/src/index.js → …/sdk
  return dirname(dirname(dirname(fileURLToPath(import.meta.resolve('@insitu/sdk')))));
}

/**
 * The provider agent's runtime: its data sources, the data API of each application,
 * and the applications' instances. The platform side (enrolment, metadata sync, the
 * tunnel) drives it through {@link Agent.applyDesired}, {@link Agent.handle},
 * {@link Agent.status} and the `status` event.
 *
 * @example
 * const agent = await Agent.create({ config, dataDir, logger, provider: { id: 'prv_…' } });
 * await agent.applyDesired([{ id: 'dep1', app: 'report', version: '1.0.0', digest, replicas: 2, bundle: './report' }]);
 * http.createServer((req, res) => agent.handle(req, res, { deployment: 'dep1' }));
 */
export class Agent extends EventEmitter<{ status: [AgentStatus] }> {
  readonly registry: DatasetRegistry;
  private readonly entries = new Map<string, Entry>();
  private readonly gates = DataApiServer.createGates();
  /** Output policies set on the platform, by dataset name (each can only tighten the config's). */
  private platformPolicies = new Map<string, OutputPolicy>();
  /** The epsilon spent on datasets with noise, per deployment; kept in the data directory. */
  private readonly budget: PrivacyBudget;
  /** Bundles being fetched and verified, by digest: deployments of one bundle share the work. */
  private readonly installing = new Map<string, Promise<{ dir: string; manifest: AppManifest }>>();
  private nextDeployment = 0;
  private closed = false;
  /** Set when close() begins: from then on nothing starts. */
  private closing = false;
  private workTurn = 0;
  private closingDone: Promise<void> | undefined;

  private constructor(
    private readonly options: AgentOptions,
    private readonly runtimeDir: string,
    private readonly cgroups: Cgroups,
    private readonly cgroupPrefix: string,
    private readonly seccompFile: string | undefined,
    private readonly sdkDir: string,
    readonly sandboxed: boolean,
  ) {
    super();
    const sources: DataSource[] = options.config.sources.map((s) => openSource(s, options.config.limits, options.env));
    this.registry = new DatasetRegistry(sources, options.logger);
    this.budget = new PrivacyBudget(join(options.dataDir, 'privacy-budget.json'));
  }

  /**
   * Replace the output policies the platform carries for this provider's datasets. They
   * are combined with the config's by {@link stricterPolicy}, so a policy from the
   * platform can tighten what the provider configured here, never loosen it.
   */
  setPlatformPolicies(policies: readonly AgentDatasetPolicy[]): void {
    const next = new Map(policies.map((p) => [p.dataset, p.policy]));
    this.platformPolicies = next;
  }

  /** A dataset's effective output policy here: the stricter of the config's and the platform's. */
  effectivePolicy(dataset: string): OutputPolicy {
    return stricterPolicy(this.registry.get(dataset)?.meta.policy, this.platformPolicies.get(dataset));
  }

  /** The agent's validated config. */
  get config(): Readonly<AgentConfig> {
    return this.options.config;
  }

  /** Check the sandbox choice, prepare the runtime directory and open (lazily) the sources. */
  static async create(options: AgentOptions): Promise<Agent> {
    const noSandbox = options.noSandbox === true;
    if (noSandbox && !(options.config.sandbox.allowNoSandbox || options.allowNoSandbox)) {
      throw new InsituError(
        'INSITU_SANDBOX_UNAVAILABLE',
        '--no-sandbox is refused: the agent config does not set sandbox.allowNoSandbox: true',
      );
    }
    if (noSandbox) {
      options.logger.warn(
        'RUNNING APPLICATIONS WITHOUT A SANDBOX: they can read, write and reach everything this agent can. Development only.',
      );
    }
    if (!noSandbox) await checkSandbox(options.config.sandbox);
    const sdkDir = options.sdkDir ?? installedSdkDir();
    const bundles = join(options.dataDir, 'bundles');
    await mkdir(join(bundles, 'node_modules', '@insitu'), { recursive: true, mode: 0o755 });
    // Without a sandbox, `import '@insitu/sdk'` from a bundle resolves through this link.
    const link = join(bundles, 'node_modules', '@insitu', 'sdk');
    if (!existsSync(link)) await symlink(sdkDir, link).catch(() => undefined);
    const runtimeDir = await mkdtemp(join(tmpdir(), 'insitu-agent-'));
    const cgroups = await Cgroups.detect(options.config.sandbox.cgroups && !noSandbox);
    if (!noSandbox && !cgroups.memory)
      options.logger.warn(
        'no writable cgroup memory controller (v1, or a delegated v2 subtree): memory is bounded by the address-space rlimit only',
      );
    if (!noSandbox && !cgroups.pids)
      options.logger.warn(
        'no writable cgroup pids controller (v1, or a delegated v2 subtree): processes are bounded by RLIMIT_NPROC only',
      );
    // Instance cgroups carry a prefix of this data directory: what an agent killed before it
    // could stop its instances left behind is found and killed by its successor, and only that.
    const cgroupPrefix = `insitu-${createHash('sha256').update(options.dataDir).digest('hex').slice(0, 10)}-`;
    const swept = await cgroups.sweep(cgroupPrefix);
    if (swept > 0) options.logger.warn({ swept }, 'killed instances a previous agent left running');
    let seccompFile: string | undefined;
    if (!noSandbox && seccompSupported()) {
      seccompFile = join(runtimeDir, 'seccomp.bpf');
      await writeFile(seccompFile, seccompFilter(), { mode: 0o600 });
    } else if (!noSandbox)
      options.logger.warn(
        { arch: process.arch },
        'no seccomp filter for this architecture: applications run without one',
      );
    return new Agent(options, runtimeDir, cgroups, cgroupPrefix, seccompFile, sdkDir, !noSandbox);
  }

  private emitStatus(): void {
    if (!this.closed) this.emit('status', this.status());
  }

  /**
   * The dataset names a deployment may read here: those its resolved, approved list holds
   * for this agent's provider id. Ids only: the manifest's `provider` strings (names or
   * ids as the developer wrote them) decide nothing on a provider's agent.
   */
  private declared(desired: DesiredDeployment, manifest: AppManifest, log: Logger): Set<string> {
    const provider = this.options.provider;
    if (provider === '*') return new Set(manifest.datasets.map((d) => d.dataset));
    if (!desired.datasets) {
      log.warn(
        'the deployment carries no resolved datasets (a platform older than this agent?): the application may read no data',
      );
      return new Set();
    }
    return new Set(desired.datasets.filter((d) => d.providerId === provider.id).map((d) => d.dataset));
  }

  /**
   * Make the running deployments match `desired`: start what is new (fetch the bundle,
   * verify its digest, start its instances), rescale what changed, stop what is gone.
   * Resolves once every change has been started; instances come up in the background
   * (watch {@link status} or the `status` event). A deployment that failed (fetch,
   * digest, manifest) is tried again by a later call once `retryFailedAfterMs` has passed.
   */
  async applyDesired(desired: readonly DesiredDeployment[]): Promise<void> {
    if (this.closing) throw new InsituError('INSITU_UNAVAILABLE', 'the agent is closed');
    const wanted = new Map(desired.map((d) => [d.id, d]));
    const stops: Array<Promise<void>> = [];
    const retryAfter = this.options.retryFailedAfterMs ?? 30_000;
    for (const [id, entry] of this.entries) {
      const next = wanted.get(id);
      const same =
        next &&
        normaliseDigestSafe(next.digest) === normaliseDigestSafe(entry.desired.digest) &&
        next.version === entry.desired.version &&
        sameDatasets(next.datasets, entry.desired.datasets);
      const retry = entry.state === 'failed' && Date.now() - (entry.failedAt ?? 0) >= retryAfter;
      if (!same || retry) stops.push(this.remove(id, entry));
    }
    await Promise.all(stops);
    for (const d of desired) {
      // close() began while this update waited: nothing starts or grows during shutdown.
      if (this.closing) throw new InsituError('INSITU_UNAVAILABLE', 'the agent is closing');
      const entry = this.entries.get(d.id);
      if (entry) {
        entry.desired = d;
        if (entry.state === 'active') await entry.runner?.scale(d.replicas);
        continue;
      }
      this.start(d);
    }
    this.emitStatus();
  }

  /** Fetch, verify and unpack a bundle once; deployments and jobs of one bundle share the work. */
  private async install(
    desired: DesiredDeployment,
    signal: AbortSignal,
    log: Logger,
  ): Promise<{ dir: string; manifest: AppManifest }> {
    const cacheDir = join(this.options.dataDir, 'bundles');
    const digest = normaliseDigest(desired.digest);
    let installing = this.installing.get(digest);
    if (!installing) {
      installing = (async () => {
        const cached = await installedBundle(digest, cacheDir);
        if (cached) return cached;
        const source = this.options.bundleSource ?? new LocalBundleSource();
        const fetched = await source.fetch(desired, signal);
        try {
          const installed = await installBundle(fetched.path, digest, cacheDir);
          log.info({ digest }, 'bundle verified');
          return installed;
        } finally {
          await fetched.dispose?.();
        }
      })();
      this.installing.set(digest, installing);
      installing.finally(() => this.installing.delete(digest)).catch(() => undefined);
    }
    return installing;
  }

  /**
   * Charge noised answers to the platform's provider-wide privacy budget as well as this
   * agent's own (see the README's design notes); without it the budget is this agent's alone.
   */
  setBudgetLedger(ledger: BudgetLedger | undefined): void {
    this.budget.setLedger(ledger);
  }

  /**
   * Run a job once: its approved bundle in the sandbox, with the manifest's CPU and memory
   * limits, the given wall-time budget and an output directory; its data API serves the
   * job's approved datasets under the job's id, like a deployment's. `signal` cancels it
   * (the process group is killed). Returns how it ended, its last output lines, and its
   * result files if the provider's result policy let them out.
   */
  async runJob(
    job: AgentJob,
    signal: AbortSignal,
    hooks: { onStart?: (pid: number | undefined) => void } = {},
  ): Promise<JobOutcome> {
    const meter: { cpuTimeMs?: number } = {};
    const outcome = await this.runJobOnce(job, signal, hooks, meter);
    return meter.cpuTimeMs === undefined ? outcome : { ...outcome, cpuTimeMs: meter.cpuTimeMs };
  }

  private async runJobOnce(
    job: AgentJob,
    signal: AbortSignal,
    hooks: { onStart?: (pid: number | undefined) => void },
    meter: { cpuTimeMs?: number },
  ): Promise<JobOutcome> {
    const log = this.options.logger.child({ job: job.id, app: job.app, version: job.version });
    const desired: DesiredDeployment = { ...job, replicas: 0 };
    const { manifest, dir } = await this.install(desired, signal, log);
    if (manifest.name !== job.app || manifest.version !== job.version)
      return {
        state: 'failed',
        reason: `the bundle is ${manifest.name}@${manifest.version}, not ${job.app}@${job.version}`,
        exitCode: null,
        output: [],
      };
    if (!manifestKinds(manifest).includes('job'))
      return { state: 'refused', reason: 'the version does not declare "kind": "job"', exitCode: null, output: [] };
    const jobDir = join(this.runtimeDir, `j${this.nextDeployment++}`);
    const outputDir = join(jobDir, 'output');
    await mkdir(outputDir, { recursive: true, mode: 0o700 });
    const asRoot = this.sandboxed && process.getuid?.() === 0;
    const uid = this.options.config.sandbox.uid;
    const dataApiSocket = join(jobDir, 'data.sock');
    const dataApi = new DataApiServer({
      registry: this.registry,
      declared: this.declared(desired, manifest, log),
      limits: this.options.config.limits,
      logger: log.child({ subsystem: 'data-api' }),
      caller: job.id,
      gates: this.gates,
      // The same output policies as services: the platform's can only tighten the config's, and
      // every job of one approved version pays noised answers from one budget (a budget per job
      // would let a consumer buy a fresh one by submitting again).
      platformPolicies: { get: (dataset) => this.platformPolicies.get(dataset) },
      budget: this.budget,
      budgetKey: `job-version:${job.digest}`,
    });
    let cgroups: InstanceCgroups | undefined;
    let proc: InstanceProcess | undefined;
    const output: string[] = [];
    try {
      await dataApi.listen(dataApiSocket);
      if (asRoot) {
        await chown(dataApiSocket, uid, uid);
        await chown(outputDir, uid, uid);
        // The job (another uid) must traverse its own directory to reach the output and the socket.
        await chmod(jobDir, 0o711);
      }
      // The approval's result limits can only tighten the config's.
      const { results: policy } = stricterJobPolicy(this.options.config.jobs, job.policy);
      cgroups = await this.cgroups.create(`${this.cgroupPrefix}${job.id}`, {
        memoryBytes: manifest.limits.memoryMb * 1024 * 1024,
        processes: manifest.limits.processes,
      });
      const launch = buildLaunch({
        manifest,
        bundleDir: dir,
        listenSocket: join(jobDir, 'app.sock'),
        dataApiSocket,
        sdkDir: this.sdkDir,
        sandbox: this.options.config.sandbox,
        noSandbox: !this.sandboxed,
        cgroups,
        ...(this.seccompFile ? { seccompFile: this.seccompFile } : {}),
        job: { outputDir, argsJson: JSON.stringify(job.args ?? null), maxFileBytes: policy.maxFileBytes },
      });
      if (signal.aborted) return { state: 'cancelled', reason: 'cancelled before it started', exitCode: null, output };
      const started = await InstanceProcess.start(launch, log, (_stream, line) => {
        output.push(line);
        if (output.length > 200) output.shift();
      });
      proc = started;
      hooks.onStart?.(started.pid);
      let why: 'cancelled' | 'wall-time' | undefined;
      const timer = setTimeout(() => {
        why ??= 'wall-time';
        void started.stop(2000);
      }, job.wallTimeMs);
      const onAbort = () => {
        why ??= 'cancelled';
        void started.stop(2000);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      if (signal.aborted) onAbort();
      let exit: InstanceExit;
      try {
        exit = await started.exited;
      } finally {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        const cpu = await cgroups.cpuTimeMs().catch(() => undefined);
        if (cpu !== undefined) meter.cpuTimeMs = cpu;
      }
      if (why === 'cancelled')
        return { state: 'cancelled', reason: 'cancelled; the job was killed', exitCode: null, output };
      if (why === 'wall-time')
        return {
          state: 'failed',
          reason: `killed after its wall-time budget of ${job.wallTimeMs} ms`,
          exitCode: null,
          output,
        };
      if (exit.code !== 0) {
        // A write past the per-file cap fails in the sandbox (RLIMIT_FSIZE): a policy refusal, not a crash.
        const left = await collectResults(outputDir, policy).catch(() => undefined);
        if (left && !left.ok) return { state: 'refused', reason: left.reason, exitCode: exit.code, output };
        const oom = (await cgroups.oomKilled().catch(() => false)) === true;
        const reason = oom
          ? 'killed by the memory limit'
          : exit.signal
            ? exit.signal === 'SIGXCPU'
              ? 'CPU time limit reached'
              : exit.signal === 'SIGXFSZ'
                ? `wrote a file over ${policy.maxFileBytes} bytes, the provider's cap`
                : `killed by ${exit.signal}`
            : exit.code === 128 + 25
              ? `wrote a file over ${policy.maxFileBytes} bytes, the provider's cap`
              : `exited with code ${String(exit.code)}`;
        return {
          state: exit.code === 128 + 25 || exit.signal === 'SIGXFSZ' ? 'refused' : 'failed',
          reason,
          exitCode: exit.code,
          output,
        };
      }
      const collected = await collectResults(outputDir, policy);
      if (!collected.ok) return { state: 'refused', reason: collected.reason, exitCode: 0, output };
      return {
        state: 'succeeded',
        reason: `exited with code 0; ${collected.files.length} result file(s)`,
        exitCode: 0,
        output,
        files: collected.files,
      };
    } finally {
      await proc?.stop(0);
      await cgroups?.kill().catch(() => undefined);
      // A job is over only when nothing of it runs any more.
      if (proc && !(await proc.groupGone()))
        log.warn({ pid: proc.pid }, "processes of the job's group outlived SIGKILL for 2 s");
      await cgroups?.remove().catch(() => undefined);
      await dataApi.close();
      await rm(jobDir, { recursive: true, force: true });
    }
  }

  private start(desired: DesiredDeployment): void {
    if (this.closing) return;
    const abort = new AbortController();
    const entry: Entry = { desired, state: 'pending', abort, ready: Promise.resolve() };
    this.entries.set(desired.id, entry);
    entry.ready = this.bringUp(entry).catch((error: unknown) => {
      if (abort.signal.aborted) return;
      entry.state = 'failed';
      entry.failedAt = Date.now();
      entry.failure = toInsituError(error);
      if (entry.failure.code === 'INSITU_INTERNAL')
        entry.failure = new InsituError('INSITU_INTERNAL', (error as Error).message ?? String(error));
      this.options.logger.error(
        { deployment: desired.id, code: entry.failure.code, err: entry.failure.message },
        'deployment failed',
      );
      this.emitStatus();
    });
  }

  private async bringUp(entry: Entry): Promise<void> {
    const { desired, abort } = entry;
    const log = this.options.logger.child({ deployment: desired.id, app: desired.app, version: desired.version });
    const { manifest, dir } = await this.install(desired, abort.signal, log);
    if (manifest.name !== desired.app || manifest.version !== desired.version) {
      throw bundleInvalid(
        `the bundle is ${manifest.name}@${manifest.version}, but ${desired.app}@${desired.version} was deployed`,
      );
    }
    if (abort.signal.aborted) return;
    entry.manifest = manifest;
    const deploymentDir = join(this.runtimeDir, `d${this.nextDeployment++}`);
    await mkdir(deploymentDir, { recursive: true, mode: 0o700 });
    const dataApiSocket = join(deploymentDir, 'data.sock');
    const dataApi = new DataApiServer({
      registry: this.registry,
      declared: this.declared(desired, manifest, log),
      limits: this.options.config.limits,
      logger: log.child({ subsystem: 'data-api' }),
      caller: desired.id,
      gates: this.gates,
      platformPolicies: { get: (dataset) => this.platformPolicies.get(dataset) },
      budget: this.budget,
    });
    await dataApi.listen(dataApiSocket);
    entry.dataApi = dataApi;
    // As root the app runs as the sandbox uid itself (no user namespace): it must be able to
    // connect. The socket stays in a directory only the agent can traverse.
    if (this.sandboxed && process.getuid?.() === 0)
      await chown(dataApiSocket, this.options.config.sandbox.uid, this.options.config.sandbox.uid);
    const runner = new DeploymentRunner({
      id: desired.id,
      manifest,
      launch: {
        bundleDir: dir,
        dataApiSocket,
        sdkDir: this.sdkDir,
        sandbox: this.options.config.sandbox,
        noSandbox: !this.sandboxed,
        ...(this.seccompFile ? { seccompFile: this.seccompFile } : {}),
      },
      runDir: deploymentDir,
      cgroups: this.cgroups,
      cgroupPrefix: this.cgroupPrefix,
      policy: { ...DEFAULT_RESTART_POLICY, ...this.options.restartPolicy },
      logger: log,
      onChange: () => this.emitStatus(),
    });
    entry.runner = runner;
    entry.balancer = new LocalBalancer({
      name: `${manifest.name}@${manifest.version}`,
      ready: () => runner.ready(),
      instanceFailed: (id) => runner.instanceFailed(id),
      requestTimeoutMs: manifest.limits.requestTimeoutMs,
    });
    if (abort.signal.aborted || this.closing) return;
    entry.state = 'active';
    await runner.scale(entry.desired.replicas);
    this.emitStatus();
  }

  private remove(id: string, entry: Entry): Promise<void> {
    entry.removal ??= this.removeOnce(id, entry);
    return entry.removal;
  }

  private async removeOnce(id: string, entry: Entry): Promise<void> {
    entry.state = 'stopping';
    entry.abort.abort();
    this.emitStatus();
    await entry.ready;
    await entry.runner?.stop();
    await entry.dataApi?.close();
    this.entries.delete(id);
    this.emitStatus();
  }

  /** The deployment a request is for: by id, or by app (and version). */
  private find(target: { deployment: string } | { app: string; version?: string }): Entry | undefined {
    if ('deployment' in target) return this.entries.get(target.deployment);
    return [...this.entries.values()].find(
      (e) =>
        e.desired.app === target.app &&
        (target.version === undefined || e.desired.version === target.version) &&
        e.state === 'active',
    );
  }

  /**
   * Hand an HTTP request to one of the local instances of a deployment (the tunnel calls
   * this with the request and response of its HTTP/2 server's compatibility API; an
   * HTTP/1.1 pair works the same). Never throws: no such deployment or no ready instance
   * is answered 503.
   */
  handle(
    req: InboundRequest,
    res: OutboundResponse,
    target: { deployment: string } | { app: string; version?: string },
  ): void {
    const entry = this.find(target);
    if (!entry?.balancer) {
      const what =
        'deployment' in target
          ? `deployment ${target.deployment}`
          : `${target.app}${target.version ? `@${target.version}` : ''}`;
      sendError(res, appUnavailable(`${what} is not running on this agent`));
      return;
    }
    entry.balancer.handle(req, res);
  }

  /** {@link handle} for a raw HTTP/2 stream: the tunnel's fast path. */
  handleStream(
    stream: ServerHttp2Stream,
    headers: IncomingHttpHeaders,
    target: { deployment: string } | { app: string; version?: string },
  ): void {
    const entry = this.find(target);
    if (!entry?.balancer) {
      const what =
        'deployment' in target
          ? `deployment ${target.deployment}`
          : `${target.app}${target.version ? `@${target.version}` : ''}`;
      sendStreamError(stream, appUnavailable(`${what} is not running on this agent`));
      return;
    }
    entry.balancer.handleStream(stream, headers);
  }

  /**
   * Where a work connection bound to a deployment pipes its bytes (the tunnel's data
   * plane): the socket of one of its ready instances, the one with the fewest work
   * connections (ties in turn), with a signal that closes the connection once that
   * instance has exited. Only an active deployment of this agent (approved and deployed:
   * nothing else is ever an entry) — never one being removed, never a path named by the
   * caller. Undefined when none is ready: the tunnel closes the connection.
   */
  workTarget(
    deploymentId: string,
  ): { socketPath: string; signal: AbortSignal; release: () => void; unreachable: () => void } | undefined {
    const entry = this.entries.get(deploymentId);
    if (entry?.state !== 'active' || !entry.runner) return undefined;
    const ready = entry.runner.ready();
    if (ready.length === 0) return undefined;
    const least = Math.min(...ready.map((i) => i.pipes));
    const candidates = ready.filter((i) => i.pipes === least);
    const instance = candidates[this.workTurn++ % candidates.length];
    if (!instance) return undefined;
    instance.pipes++;
    let released = false;
    return {
      socketPath: instance.socketPath,
      signal: instance.gone.signal,
      release: () => {
        if (released) return;
        released = true;
        instance.pipes--;
      },
      // As on the HTTP/2 path: an instance whose socket refuses connections has failed.
      unreachable: () => entry.runner?.instanceFailed(instance.id),
    };
  }

  /** What the instances of a deployment on this agent wrote (its last lines, and what follows), if it runs here. */
  outputOf(deploymentId: string): OutputLog | undefined {
    return this.entries.get(deploymentId)?.runner?.output;
  }

  /** The status report: per deployment pending, starting, running, degraded, crash-looping or failed (with the reason). */
  status(): AgentStatus {
    const provider = this.options.provider;
    return {
      ...(this.options.agentId ? { agentId: this.options.agentId } : {}),
      ...(provider !== '*' && provider.id ? { providerId: provider.id } : {}),
      sandbox: this.sandboxed ? 'bubblewrap' : 'none',
      limits: { memory: this.cgroups.memory ? 'cgroup' : 'rlimit', processes: this.cgroups.pids ? 'cgroup' : 'rlimit' },
      deployments: [...this.entries.values()].map((entry) => deploymentStatus(entry)),
    };
  }

  /** Wait until the deployment has settled into `running`, `degraded`, `failed` or `crash-looping`. */
  async settled(id: string): Promise<DeploymentStatus | undefined> {
    await this.entries.get(id)?.ready;
    return this.status().deployments.find((d) => d.id === id);
  }

  /** Stop every application, close the data APIs and the sources, remove the runtime directory. */
  close(): Promise<void> {
    this.closingDone ??= this.shutdown();
    return this.closingDone;
  }

  private async shutdown(): Promise<void> {
    this.closing = true;
    // An update that was already past its checks may still have added an entry: repeat until none is left.
    while (this.entries.size > 0)
      await Promise.all([...this.entries.entries()].map(([id, entry]) => this.remove(id, entry)));
    this.closed = true;
    await this.registry.close();
    await rm(this.runtimeDir, { recursive: true, force: true });
  }
}

/** Same resolved datasets (in any order): otherwise the data API must be rebuilt with the new list. */
function sameDatasets(a: DesiredDeployment['datasets'], b: DesiredDeployment['datasets']): boolean {
  const key = (list: DesiredDeployment['datasets']) =>
    list
      ? list
          .map((d) => `${d.providerId}/${d.dataset}`)
          .sort()
          .join('\n')
      : undefined;
  return key(a) === key(b);
}

function normaliseDigestSafe(digest: string): string {
  try {
    return normaliseDigest(digest);
  } catch {
    return digest;
  }
}

/** The exit and the last lines a crash-looping instance wrote: what its developer needs to fix it. */
function crashLoopMessage(looping: InstanceStatus): string {
  const last = (looping.lastExit?.output ?? []).slice(-3).map((l) => (l.length > 200 ? `${l.slice(0, 200)}…` : l));
  return `instance ${looping.id} keeps crashing: ${looping.lastExit?.reason ?? 'unknown'}${last.length > 0 ? `; last output: ${last.join(' | ')}` : '; it wrote nothing'}`;
}

/** An instance that does not serve right now, and why (its last exit, if it had one). */
function describeDown(instance: InstanceStatus): string {
  // `running` but not ready: it just ended or failed a request, and its exit is not handled yet.
  const state = instance.state === 'running' ? 'not ready' : instance.state;
  return `instance ${instance.id} ${state}${instance.lastExit ? ` after: ${instance.lastExit.reason}` : ''}`;
}

function deploymentStatus(entry: Entry): DeploymentStatus {
  const instances = entry.runner?.instances() ?? [];
  const ready = new Set((entry.runner?.ready() ?? []).map((i) => i.id));
  const readyReplicas = ready.size;
  let state: DeploymentState;
  let reason: DeploymentStatus['reason'];
  if (entry.state === 'failed') {
    state = 'failed';
    reason = { code: entry.failure?.code ?? 'INSITU_INTERNAL', message: entry.failure?.message ?? 'failed' };
  } else if (entry.state === 'pending') state = 'pending';
  else if (entry.state === 'stopping') state = 'stopping';
  else {
    const looping = instances.find((i) => i.state === 'crash-looping');
    if (looping && readyReplicas === 0) {
      state = 'crash-looping';
      reason = { code: 'INSITU_APP_UNAVAILABLE', message: crashLoopMessage(looping) };
    } else if (readyReplicas >= entry.desired.replicas) state = 'running';
    else if (readyReplicas > 0) {
      // Serving with fewer instances than desired: still announced and routed to (see DESIGN notes).
      state = 'degraded';
      const serving = `${readyReplicas} of ${entry.desired.replicas} instances serve`;
      if (looping) reason = { code: 'INSITU_APP_UNAVAILABLE', message: `${crashLoopMessage(looping)}; ${serving}` };
      else {
        const down = instances.filter((i) => !ready.has(i.id)).map((i) => describeDown(i));
        reason = { code: 'INSITU_NOT_READY', message: `${serving}${down.length > 0 ? `; ${down.join('; ')}` : ''}` };
      }
    } else state = 'starting';
  }
  return {
    id: entry.desired.id,
    app: entry.desired.app,
    version: entry.desired.version,
    digest: normaliseDigestSafe(entry.desired.digest),
    desiredReplicas: entry.desired.replicas,
    readyReplicas,
    state,
    ...(reason ? { reason } : {}),
    instances,
  };
}
