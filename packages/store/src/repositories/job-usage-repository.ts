import { sql } from 'kysely';
import type { JobRow } from '../schema.js';
import type { RepositoryContext } from './context.js';
import { DAY_MS, HOUR_MS } from './usage-repository.js';

/** Job usage summed for one period (and, grouped, one organisation, provider or version). */
export interface JobUsageTotal {
  period: number;
  orgId?: string;
  providerId?: string;
  versionId?: string;
  runs: number;
  /** Runs per final state. */
  succeeded: number;
  failed: number;
  refused: number;
  cancelled: number;
  wallMs: number;
  cpuMs: number;
  /** Runs whose CPU time was measured (the others add nothing to `cpuMs`). */
  cpuRuns: number;
  resultFiles: number;
  resultBytes: number;
  argsBytes: number;
}

const SUMS = ['runs', 'wall_ms', 'cpu_ms', 'cpu_runs', 'result_files', 'result_bytes', 'args_bytes'] as const;
const GROUP_COLUMN = { org: 'org_id', provider: 'provider_id', version: 'version_id' } as const;

/**
 * Metering of compute jobs: one row per hour, consumer organisation, provider, version and
 * final state, incremented once when a job ends (in the transaction of its audit record).
 */
export class JobUsageRepository {
  constructor(private readonly ctx: RepositoryContext) {}

  /** Count an ended job: its run, wall time, CPU time and what it left. */
  async add(job: JobRow, results: { files: number; bytes: number }): Promise<void> {
    const end = Number(job.finished_at ?? job.updated_at);
    const row = {
      hour: end - (end % HOUR_MS),
      org_id: job.org_id,
      provider_id: job.provider_id,
      app_id: job.app_id,
      version_id: job.version_id,
      state: job.state,
      runs: 1,
      wall_ms: job.started_at === null ? 0 : Math.max(0, end - Number(job.started_at)),
      cpu_ms: job.cpu_ms === null ? 0 : Number(job.cpu_ms),
      cpu_runs: job.cpu_ms === null ? 0 : 1,
      result_files: results.files,
      result_bytes: results.bytes,
      args_bytes: Buffer.byteLength(job.args),
    };
    if (this.ctx.dialect === 'mysql') {
      await this.ctx.db
        .insertInto('job_usage_hourly')
        .values(row)
        .onDuplicateKeyUpdate(Object.fromEntries(SUMS.map((c) => [c, sql`${sql.ref(c)} + VALUES(${sql.ref(c)})`])))
        .execute();
    } else {
      await this.ctx.db
        .insertInto('job_usage_hourly')
        .values(row)
        .onConflict((oc) =>
          oc
            .columns(['hour', 'org_id', 'provider_id', 'version_id', 'state'])
            .doUpdateSet(
              Object.fromEntries(
                SUMS.map((c) => [c, sql`${sql.ref(`job_usage_hourly.${c}`)} + ${sql.ref(`excluded.${c}`)}`]),
              ),
            ),
        )
        .execute();
    }
  }

  /**
   * Totals per period (hour or day) in [from, to) of the jobs some organisations submitted
   * or some providers ran (either matches; both absent: every job), optionally per
   * organisation, provider or version.
   */
  async totals(options: {
    from: number;
    to: number;
    granularity: 'hour' | 'day';
    orgIds?: readonly string[];
    providerIds?: readonly string[];
    versionId?: string;
    groupBy?: 'org' | 'provider' | 'version';
  }): Promise<JobUsageTotal[]> {
    const size = options.granularity === 'day' ? DAY_MS : HOUR_MS;
    const period = sql<number>`(hour - (hour % ${size}))`;
    const byState = (state: string) => sql<number>`SUM(CASE WHEN state = ${state} THEN runs ELSE 0 END)`.as(state);
    let query = this.ctx.db
      .selectFrom('job_usage_hourly')
      .select([
        period.as('period'),
        ...SUMS.map((c) => sql<number>`SUM(${sql.ref(c)})`.as(c)),
        byState('succeeded'),
        byState('failed'),
        byState('refused'),
        byState('cancelled'),
      ])
      .where('hour', '>=', options.from)
      .where('hour', '<', options.to);
    const { orgIds, providerIds } = options;
    if (orgIds || providerIds) {
      if ((orgIds?.length ?? 0) + (providerIds?.length ?? 0) === 0) return [];
      query = query.where((eb) =>
        eb.or([
          ...(orgIds && orgIds.length > 0 ? [eb('org_id', 'in', orgIds)] : []),
          ...(providerIds && providerIds.length > 0 ? [eb('provider_id', 'in', providerIds)] : []),
        ]),
      );
    }
    if (options.versionId) query = query.where('version_id', '=', options.versionId);
    const column = options.groupBy ? GROUP_COLUMN[options.groupBy] : undefined;
    const grouped = column
      ? query.select(column).groupBy([period, column]).orderBy(period).orderBy(column)
      : query.groupBy(period).orderBy(period);
    const rows = (await grouped.execute()) as Array<
      Record<string, number> & { org_id?: string; provider_id?: string; version_id?: string }
    >;
    return rows.map((r) => ({
      period: Number(r.period),
      ...(r.org_id !== undefined ? { orgId: r.org_id } : {}),
      ...(r.provider_id !== undefined ? { providerId: r.provider_id } : {}),
      ...(r.version_id !== undefined ? { versionId: r.version_id } : {}),
      runs: Number(r.runs),
      succeeded: Number(r.succeeded),
      failed: Number(r.failed),
      refused: Number(r.refused),
      cancelled: Number(r.cancelled),
      wallMs: Number(r.wall_ms),
      cpuMs: Number(r.cpu_ms),
      cpuRuns: Number(r.cpu_runs),
      resultFiles: Number(r.result_files),
      resultBytes: Number(r.result_bytes),
      argsBytes: Number(r.args_bytes),
    }));
  }
}
