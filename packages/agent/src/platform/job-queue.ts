import type { AgentJob, Logger } from '@insitu/core';
import type { Agent, JobOutcome } from '../agent.js';
import type { PlatformClient } from '../identity/platform-client.js';

/** How to build a {@link JobQueue}. */
export interface JobQueueOptions {
  agent: Agent;
  client: PlatformClient;
  logger: Logger;
  /** Jobs run at once; the rest stay queued at the platform for this or another agent. */
  concurrency: number;
  /** The config's jobs.shareLogs: a job's last output lines go up only if this and its approval allow it. */
  shareLogs: boolean;
}

/**
 * This agent's side of jobs: from every list the platform pushes (tunnel `jobs` command)
 * or the agent polls, claim queued jobs while fewer than `concurrency` run, run each in
 * the sandbox, upload the results the provider's policy let out, then report how it
 * ended. A running job that vanished from the list was cancelled: its process group is killed.
 */
export class JobQueue {
  private readonly running = new Map<string, { abort: AbortController; done: Promise<void> }>();
  private closed = false;

  constructor(private readonly options: JobQueueOptions) {}

  /** The ids of the jobs running here. */
  get active(): string[] {
    return [...this.running.keys()];
  }

  /** Act on the platform's current list. */
  apply(jobs: readonly AgentJob[]): void {
    if (this.closed) return;
    const listed = new Set(jobs.map((j) => j.id));
    for (const [id, run] of this.running) {
      if (!listed.has(id)) run.abort.abort();
    }
    for (const job of jobs) {
      if (this.running.size >= this.options.concurrency) break;
      if (job.state !== 'queued' || this.running.has(job.id)) continue;
      this.start(job);
    }
  }

  private start(job: AgentJob): void {
    const abort = new AbortController();
    const done = this.run(job, abort.signal)
      .catch((error: unknown) => this.options.logger.warn({ err: error, job: job.id }, 'job run failed'))
      .finally(() => this.running.delete(job.id));
    this.running.set(job.id, { abort, done });
  }

  private async run(job: AgentJob, signal: AbortSignal): Promise<void> {
    const { client, agent, logger } = this.options;
    if (!(await client.claimJob(job.id))) {
      this.running.delete(job.id);
      return;
    }
    logger.info({ job: job.id, app: job.app, version: job.version }, 'job started');
    let outcome: JobOutcome;
    try {
      outcome = await agent.runJob(job, signal);
    } catch (error) {
      outcome = { state: 'failed', reason: `could not run: ${(error as Error).message}`, exitCode: null, output: [] };
    }
    logger.info({ job: job.id, state: outcome.state, reason: outcome.reason }, 'job ended');
    if (outcome.state === 'cancelled') return; // the platform ended it already
    let state = outcome.state;
    let reason = outcome.reason;
    for (const file of outcome.files ?? []) {
      try {
        await client.uploadJobResult(job.id, file.name, file.data);
      } catch (error) {
        state = 'refused';
        reason = `the platform did not take result ${file.name}: ${(error as Error).message}`;
        break;
      }
    }
    await client.reportJob(job.id, {
      state,
      reason: reason.slice(0, 2000),
      exitCode: outcome.exitCode,
      ...(outcome.cpuTimeMs !== undefined ? { cpuTimeMs: outcome.cpuTimeMs } : {}),
      // Only where both the agent's config and the version's approval share them.
      ...(this.options.shareLogs && job.policy?.shareLogs === true
        ? { logs: outcome.output.slice(-200).map((l) => l.slice(0, 2100)) }
        : {}),
    });
  }

  /** Cancel every running job and wait for them. */
  async close(): Promise<void> {
    this.closed = true;
    for (const run of this.running.values()) run.abort.abort();
    await Promise.all([...this.running.values()].map((r) => r.done));
  }
}
