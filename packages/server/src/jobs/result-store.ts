import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InsituError } from '@insitu/core';
import type { Repositories } from '@insitu/store';

/**
 * Where result bytes live: in the database (`job_results.data`, one node), or, when
 * `jobs.resultsDir` is set, in that directory (shared by a cluster's nodes) under
 * `{jobId}/{sha256}`, never under the name the agent gave.
 */
export class ResultStore {
  constructor(private readonly dir: string | undefined) {}

  async put(repos: Repositories, jobId: string, name: string, data: Buffer): Promise<void> {
    const digest = createHash('sha256').update(data).digest('hex');
    if (this.dir) {
      const jobDir = join(this.dir, jobId);
      await mkdir(jobDir, { recursive: true, mode: 0o700 });
      const staging = join(jobDir, `${digest}.${process.pid}.part`);
      await writeFile(staging, data, { mode: 0o600 });
      await rename(staging, join(jobDir, digest));
    }
    await repos.jobs.addResult({ jobId, name, size: data.length, digest, data: this.dir ? null : data });
  }

  async get(repos: Repositories, jobId: string, name: string): Promise<Buffer | undefined> {
    const row = await repos.jobs.result(jobId, name);
    if (!row) return undefined;
    let data: Buffer;
    if (row.data) data = Buffer.from(row.data);
    else if (this.dir) data = await readFile(join(this.dir, jobId, row.digest));
    else
      throw new InsituError('INSITU_INTERNAL', `result ${name} of ${jobId} is in a results directory this node lacks`);
    if (createHash('sha256').update(data).digest('hex') !== row.digest)
      throw new InsituError('INSITU_INTERNAL', `result ${name} of ${jobId} is corrupt`);
    return data;
  }

  /** Delete the results whose retention ended; returns how many. */
  async sweep(repos: Repositories): Promise<number> {
    const removed = await repos.jobs.sweepExpired();
    if (this.dir) {
      for (const jobId of new Set(removed.map((r) => r.job_id)))
        await rm(join(this.dir, jobId), { recursive: true, force: true });
    }
    return removed.length;
  }
}
