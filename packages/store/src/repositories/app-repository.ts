import { newId, type ResolvedDataset } from '@insitu/core';
import type { AppRow, AppVersionRow, ApprovalRow, VersionState } from '../schema.js';
import { affected, type RepositoryContext } from './context.js';

/** One file of a bundle as listed to reviewers. */
export interface BundleFile {
  path: string;
  size: number;
  sha256: string;
}

/** Applications, their versions and the providers' approvals of each version. */
export class AppRepository {
  constructor(private readonly ctx: RepositoryContext) {}

  async create(input: { orgId: string; name: string; description: string; createdBy: string }): Promise<AppRow> {
    const now = this.ctx.now();
    const row: AppRow = {
      id: newId('app'),
      org_id: input.orgId,
      name: input.name,
      description: input.description,
      created_by: input.createdBy,
      created_at: now,
      updated_at: now,
    };
    await this.ctx.db.insertInto('apps').values(row).execute();
    return row;
  }

  get(id: string): Promise<AppRow | undefined> {
    return this.ctx.db.selectFrom('apps').selectAll().where('id', '=', id).executeTakeFirst();
  }

  getByName(orgId: string, name: string): Promise<AppRow | undefined> {
    return this.ctx.db
      .selectFrom('apps')
      .selectAll()
      .where('org_id', '=', orgId)
      .where('name', '=', name)
      .executeTakeFirst();
  }

  /** Apps ordered by id: of some organisations, or (without `orgIds`) all. */
  list(options: { orgIds?: readonly string[]; limit: number; offset: number }): Promise<AppRow[]> {
    let query = this.ctx.db.selectFrom('apps').selectAll();
    if (options.orgIds) {
      if (options.orgIds.length === 0) return Promise.resolve([]);
      query = query.where('org_id', 'in', options.orgIds);
    }
    return query.orderBy('id').limit(options.limit).offset(options.offset).execute();
  }

  /**
   * Record a submitted version with its datasets resolved to provider ids, and one
   * pending approval per provider of those datasets. Call inside a transaction.
   */
  async createVersion(input: {
    appId: string;
    version: string;
    major: number;
    digest: string;
    size: number;
    manifest: unknown;
    files: BundleFile[];
    submittedBy: string;
    datasets: readonly ResolvedDataset[];
  }): Promise<{ version: AppVersionRow; approvals: ApprovalRow[] }> {
    const now = this.ctx.now();
    const version: AppVersionRow = {
      id: newId('ver'),
      app_id: input.appId,
      version: input.version,
      major: input.major,
      digest: input.digest,
      size: input.size,
      manifest: JSON.stringify(input.manifest),
      files: JSON.stringify(input.files),
      datasets: JSON.stringify(input.datasets.map((d) => ({ providerId: d.providerId, dataset: d.dataset }))),
      state: 'pending',
      submitted_by: input.submittedBy,
      created_at: now,
    };
    await this.ctx.db.insertInto('app_versions').values(version).execute();
    const approvals: ApprovalRow[] = [...new Set(input.datasets.map((d) => d.providerId))].map((providerId) => ({
      id: newId('apr'),
      version_id: version.id,
      provider_id: providerId,
      digest: input.digest,
      state: 'pending',
      reason: '',
      decided_by: null,
      decided_at: null,
      created_at: now,
      job_policy: null,
    }));
    if (approvals.length > 0) await this.ctx.db.insertInto('approvals').values(approvals).execute();
    return { version, approvals };
  }

  /** The datasets a version reads, resolved to provider ids at its submission. */
  static datasetsOf(version: AppVersionRow): ResolvedDataset[] {
    if (version.datasets === null) return [];
    const parsed = JSON.parse(version.datasets) as unknown;
    return Array.isArray(parsed) ? (parsed as ResolvedDataset[]) : [];
  }

  getVersion(id: string): Promise<AppVersionRow | undefined> {
    return this.ctx.db.selectFrom('app_versions').selectAll().where('id', '=', id).executeTakeFirst();
  }

  getVersionByNumber(appId: string, version: string): Promise<AppVersionRow | undefined> {
    return this.ctx.db
      .selectFrom('app_versions')
      .selectAll()
      .where('app_id', '=', appId)
      .where('version', '=', version)
      .executeTakeFirst();
  }

  listVersions(appId: string, options: { limit: number; offset: number }): Promise<AppVersionRow[]> {
    return this.ctx.db
      .selectFrom('app_versions')
      .selectAll()
      .where('app_id', '=', appId)
      .orderBy('id')
      .limit(options.limit)
      .offset(options.offset)
      .execute();
  }

  approvalsOf(versionId: string): Promise<ApprovalRow[]> {
    return this.ctx.db
      .selectFrom('approvals')
      .selectAll()
      .where('version_id', '=', versionId)
      .orderBy('provider_id')
      .execute();
  }

  getApproval(id: string): Promise<ApprovalRow | undefined> {
    return this.ctx.db.selectFrom('approvals').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /** Approval requests addressed to some providers, newest first. */
  listApprovals(options: {
    providerIds?: readonly string[];
    state?: ApprovalRow['state'];
    versionId?: string;
    limit: number;
    offset: number;
  }): Promise<ApprovalRow[]> {
    let query = this.ctx.db.selectFrom('approvals').selectAll();
    if (options.providerIds) {
      if (options.providerIds.length === 0) return Promise.resolve([]);
      query = query.where('provider_id', 'in', options.providerIds);
    }
    if (options.state) query = query.where('state', '=', options.state);
    if (options.versionId) query = query.where('version_id', '=', options.versionId);
    return query.orderBy('id', 'desc').limit(options.limit).offset(options.offset).execute();
  }

  /**
   * Decide a pending approval, then recompute the version's state: rejected if any
   * provider rejected, approved when all approved this digest. Returns the new state, or
   * undefined when the approval was decided already. Call inside a transaction.
   */
  async decide(
    approvalId: string,
    input: { state: 'approved' | 'rejected'; reason: string; userId: string; jobPolicy?: unknown },
  ): Promise<VersionState | undefined> {
    const result = await this.ctx.db
      .updateTable('approvals')
      .set({
        state: input.state,
        reason: input.reason,
        decided_by: input.userId,
        decided_at: this.ctx.now(),
        job_policy: input.jobPolicy === undefined ? null : JSON.stringify(input.jobPolicy),
      })
      .where('id', '=', approvalId)
      .where('state', '=', 'pending')
      .executeTakeFirst();
    if (affected(result) !== 1) return undefined;
    const approval = await this.getApproval(approvalId);
    if (!approval) return undefined;
    const all = await this.approvalsOf(approval.version_id);
    const version = await this.getVersion(approval.version_id);
    const state: VersionState = all.some((a) => a.state === 'rejected')
      ? 'rejected'
      : all.every((a) => a.state === 'approved' && a.digest === version?.digest)
        ? 'approved'
        : 'pending';
    await this.ctx.db.updateTable('app_versions').set({ state }).where('id', '=', approval.version_id).execute();
    return state;
  }
}
