import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InsituError, sleep } from '@insitu/core';
import { ApiClient, describeFetchError, type RemoteOptions } from '../api-client.js';
import { line, printItems, printObject, type CliIo } from '../io.js';
import { listAll, providerIdOf, versionIdOf } from '../refs.js';

interface Job {
  id: string;
  version: string;
  providerId: string;
  state: string;
  reason: string;
  exitCode: number | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  results?: Array<{ name: string; size: number; sha256: string }>;
}

const FINAL = new Set(['succeeded', 'failed', 'refused', 'cancelled']);
const JOB_ID = /^job_[0-9a-hjkmnp-tv-z]{26}$/;

function jobPath(id: string): string {
  if (!JOB_ID.test(id)) throw new InsituError('INSITU_USAGE', `${JSON.stringify(id)} is not a job id (job_…)`);
  return `/api/v1/jobs/${id}`;
}

function show(io: CliIo, json: boolean | undefined, job: Job): void {
  if (json) line(io.stdout, JSON.stringify(job));
  else line(io.stdout, `${job.id}: ${job.state} (${job.reason})`);
}

/** Exit status of a job that ended: 0 only when it succeeded. */
const exitOf = (job: Job) => (job.state === 'succeeded' ? 0 : FINAL.has(job.state) ? 1 : 0);

/**
 * `insitu job run VERSION --provider P [--args JSON] [--wall-time SECONDS] [--wait]`: run an
 * approved job version once at a provider; with --wait, follow it until it ends.
 */
export async function runJobRun(
  version: string,
  options: RemoteOptions & {
    provider: string;
    args?: string;
    wallTime?: number;
    wait?: boolean;
    timeout: number;
    json?: boolean;
  },
  io: CliIo,
): Promise<number> {
  const api = ApiClient.from(options, io);
  let args: unknown;
  if (options.args !== undefined) {
    try {
      args = JSON.parse(options.args);
    } catch (error) {
      throw new InsituError('INSITU_USAGE', `--args is not JSON: ${(error as Error).message}`);
    }
  }
  let job = await api.request<Job>('POST', '/api/v1/jobs', {
    versionId: await versionIdOf(api, version),
    providerId: await providerIdOf(api, options.provider),
    ...(args !== undefined ? { args } : {}),
    ...(options.wallTime ? { wallTimeMs: options.wallTime * 1000 } : {}),
  });
  if (!options.json) line(io.stderr, `… job ${job.id} ${job.state}`);
  if (options.wait) {
    const deadline = Date.now() + options.timeout * 1000;
    let last = job.state;
    while (!FINAL.has(job.state)) {
      if (Date.now() >= deadline)
        throw new InsituError(
          'INSITU_NOT_READY',
          `job ${job.id} is still ${job.state} after ${options.timeout} s; follow it with: insitu job status ${job.id}`,
        );
      await sleep(200, io.signal ?? new AbortController().signal);
      job = await api.request<Job>('GET', jobPath(job.id));
      if (job.state !== last && !options.json) line(io.stderr, `… ${job.state}: ${job.reason}`);
      last = job.state;
    }
  }
  show(io, options.json, job);
  return exitOf(job);
}

/** `insitu job status ID`: state, reason, times and result files. */
export async function runJobStatus(
  id: string,
  options: RemoteOptions & { json?: boolean },
  io: CliIo,
): Promise<number> {
  const api = ApiClient.from(options, io);
  const job = await api.request<Job>('GET', jobPath(id));
  if (options.json) line(io.stdout, JSON.stringify(job));
  else
    printObject(io, false, {
      id: job.id,
      version: job.version,
      provider: job.providerId,
      state: job.state,
      reason: job.reason,
      created: job.createdAt,
      started: job.startedAt ?? '-',
      finished: job.finishedAt ?? '-',
      results: (job.results ?? []).map((r) => `${r.name} (${r.size} bytes)`).join(', ') || '-',
    });
  return exitOf(job);
}

/** `insitu job list`: your organisations' jobs and those at your providers. */
export async function runJobList(options: RemoteOptions & { json?: boolean }, io: CliIo): Promise<void> {
  const api = ApiClient.from(options, io);
  const jobs = await listAll<Job>(api, '/api/v1/jobs', {});
  printItems(io, options.json, jobs, {
    id: (j) => j.id,
    version: (j) => j.version,
    state: (j) => j.state,
    reason: (j) => j.reason,
    created: (j) => j.createdAt,
  });
}

/** `insitu job cancel ID`. */
export async function runJobCancel(id: string, options: RemoteOptions & { json?: boolean }, io: CliIo): Promise<void> {
  const api = ApiClient.from(options, io);
  show(io, options.json, await api.request<Job>('POST', `${jobPath(id)}/cancel`));
}

/** `insitu job logs ID`: the job's output lines, if the provider let them out. */
export async function runJobLogs(id: string, options: RemoteOptions & { json?: boolean }, io: CliIo): Promise<void> {
  const api = ApiClient.from(options, io);
  const { lines } = await api.request<{ lines: string[] }>('GET', `${jobPath(id)}/logs`);
  if (options.json) line(io.stdout, JSON.stringify({ lines }));
  else for (const text of lines) line(io.stdout, text);
}

/**
 * `insitu job results ID [--out DIR]`: list the result files, or download every one into
 * DIR (names as the platform checked them: one path segment each).
 */
export async function runJobResults(
  id: string,
  options: RemoteOptions & { out?: string; json?: boolean },
  io: CliIo,
): Promise<void> {
  const api = ApiClient.from(options, io);
  const files = await api.request<Array<{ name: string; size: number; sha256: string }>>(
    'GET',
    `${jobPath(id)}/results`,
  );
  if (options.out) {
    await mkdir(options.out, { recursive: true });
    for (const file of files) {
      if (!/^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/.test(file.name))
        throw new InsituError('INSITU_REMOTE', `the platform named a result ${JSON.stringify(file.name)}`);
      let response: Response;
      try {
        response = await fetch(`${api.url}${jobPath(id)}/results/${file.name}`, {
          headers: api.token ? { authorization: `Bearer ${api.token}` } : {},
          signal: AbortSignal.timeout(120_000),
        });
      } catch (error) {
        throw new InsituError('INSITU_REMOTE', `cannot reach ${api.url}: ${describeFetchError(error)}`);
      }
      const data = Buffer.from(await response.arrayBuffer());
      if (!response.ok)
        throw new InsituError('INSITU_REMOTE', `result ${file.name}: ${response.status} ${data.toString('utf8')}`);
      await writeFile(join(options.out, file.name), data);
      if (!options.json) line(io.stderr, `… ${join(options.out, file.name)} (${data.length} bytes)`);
    }
  }
  printItems(io, options.json, files, { name: (f) => f.name, size: (f) => f.size, sha256: (f) => f.sha256 });
}
