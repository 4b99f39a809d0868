import { newId } from '@insitu/core';
import type { ApiKeyRow, ServiceRow } from '../schema.js';
import { affected, type RepositoryContext } from './context.js';

/** Limits a service owner sets; defaults live in the server's config. */
export interface ServiceLimits {
  ratePerSecond: number;
  burst: number;
  dailyQuota: number;
  maxRequestBytes: number;
  maxResponseBytes: number;
  timeoutMs: number;
}

/** Published services, who may call them (grants), and API keys. */
export class ServiceRepository {
  constructor(private readonly ctx: RepositoryContext) {}

  async create(input: {
    name: string;
    orgId: string;
    appId: string;
    description: string;
    access: ServiceRow['access'];
    limits: ServiceLimits;
  }): Promise<ServiceRow> {
    const now = this.ctx.now();
    const row: ServiceRow = {
      id: newId('svc'),
      name: input.name,
      org_id: input.orgId,
      app_id: input.appId,
      description: input.description,
      access: input.access,
      rate_per_second: input.limits.ratePerSecond,
      burst: input.limits.burst,
      daily_quota: input.limits.dailyQuota,
      max_request_bytes: input.limits.maxRequestBytes,
      max_response_bytes: input.limits.maxResponseBytes,
      timeout_ms: input.limits.timeoutMs,
      created_at: now,
      updated_at: now,
    };
    await this.ctx.db.insertInto('services').values(row).execute();
    return row;
  }

  get(id: string): Promise<ServiceRow | undefined> {
    return this.ctx.db.selectFrom('services').selectAll().where('id', '=', id).executeTakeFirst();
  }

  getByName(name: string): Promise<ServiceRow | undefined> {
    return this.ctx.db.selectFrom('services').selectAll().where('name', '=', name).executeTakeFirst();
  }

  /** Services ordered by name that an organisation may see: public ones, its own, and those granted to it (all for `orgIds` undefined). */
  list(options: {
    visibleTo?: readonly string[];
    appId?: string;
    limit: number;
    offset: number;
  }): Promise<ServiceRow[]> {
    let query = this.ctx.db.selectFrom('services as s').selectAll('s');
    if (options.appId) query = query.where('s.app_id', '=', options.appId);
    const orgs = options.visibleTo;
    if (orgs) {
      query = query.where((eb) =>
        eb.or([
          eb('s.access', '=', 'public'),
          ...(orgs.length > 0
            ? [
                eb('s.org_id', 'in', orgs),
                eb('s.id', 'in', eb.selectFrom('service_grants').select('service_id').where('org_id', 'in', orgs)),
              ]
            : []),
        ]),
      );
    }
    return query.orderBy('s.name').limit(options.limit).offset(options.offset).execute();
  }

  async update(
    id: string,
    changes: Partial<ServiceLimits> & { description?: string; access?: ServiceRow['access'] },
  ): Promise<boolean> {
    const set: Partial<ServiceRow> = { updated_at: this.ctx.now() };
    if (changes.description !== undefined) set.description = changes.description;
    if (changes.access !== undefined) set.access = changes.access;
    if (changes.ratePerSecond !== undefined) set.rate_per_second = changes.ratePerSecond;
    if (changes.burst !== undefined) set.burst = changes.burst;
    if (changes.dailyQuota !== undefined) set.daily_quota = changes.dailyQuota;
    if (changes.maxRequestBytes !== undefined) set.max_request_bytes = changes.maxRequestBytes;
    if (changes.maxResponseBytes !== undefined) set.max_response_bytes = changes.maxResponseBytes;
    if (changes.timeoutMs !== undefined) set.timeout_ms = changes.timeoutMs;
    const result = await this.ctx.db.updateTable('services').set(set).where('id', '=', id).executeTakeFirst();
    return affected(result) === 1;
  }

  async remove(id: string): Promise<boolean> {
    const result = await this.ctx.db.deleteFrom('services').where('id', '=', id).executeTakeFirst();
    return affected(result) === 1;
  }

  async grant(serviceId: string, orgId: string): Promise<void> {
    const exists = await this.ctx.db
      .selectFrom('service_grants')
      .select('org_id')
      .where('service_id', '=', serviceId)
      .where('org_id', '=', orgId)
      .executeTakeFirst();
    if (!exists)
      await this.ctx.db
        .insertInto('service_grants')
        .values({ service_id: serviceId, org_id: orgId, created_at: this.ctx.now() })
        .execute();
  }

  async revokeGrant(serviceId: string, orgId: string): Promise<boolean> {
    const result = await this.ctx.db
      .deleteFrom('service_grants')
      .where('service_id', '=', serviceId)
      .where('org_id', '=', orgId)
      .executeTakeFirst();
    return affected(result) === 1;
  }

  async grants(serviceId: string): Promise<string[]> {
    const rows = await this.ctx.db
      .selectFrom('service_grants')
      .select('org_id')
      .where('service_id', '=', serviceId)
      .orderBy('org_id')
      .execute();
    return rows.map((r) => r.org_id);
  }

  async isGranted(serviceId: string, orgId: string): Promise<boolean> {
    return (
      (await this.ctx.db
        .selectFrom('service_grants')
        .select('org_id')
        .where('service_id', '=', serviceId)
        .where('org_id', '=', orgId)
        .executeTakeFirst()) !== undefined
    );
  }

  // API keys

  async createKey(input: {
    orgId: string;
    userId: string;
    name: string;
    keyHash: string;
    prefix: string;
    serviceIds: readonly string[];
    expiresAt: number | null;
  }): Promise<ApiKeyRow> {
    const row: ApiKeyRow = {
      id: newId('key'),
      org_id: input.orgId,
      user_id: input.userId,
      name: input.name,
      key_hash: input.keyHash,
      prefix: input.prefix,
      services: JSON.stringify([...new Set(input.serviceIds)]),
      expires_at: input.expiresAt,
      revoked_at: null,
      created_at: this.ctx.now(),
    };
    await this.ctx.db.insertInto('api_keys').values(row).execute();
    return row;
  }

  getKey(id: string): Promise<ApiKeyRow | undefined> {
    return this.ctx.db.selectFrom('api_keys').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /** The unrevoked, unexpired key with this hash. */
  findLiveKey(keyHash: string): Promise<ApiKeyRow | undefined> {
    const now = this.ctx.now();
    return this.ctx.db
      .selectFrom('api_keys')
      .selectAll()
      .where('key_hash', '=', keyHash)
      .where('revoked_at', 'is', null)
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
      .executeTakeFirst();
  }

  listKeys(options: { orgIds?: readonly string[]; limit: number; offset: number }): Promise<ApiKeyRow[]> {
    let query = this.ctx.db.selectFrom('api_keys').selectAll();
    if (options.orgIds) {
      if (options.orgIds.length === 0) return Promise.resolve([]);
      query = query.where('org_id', 'in', options.orgIds);
    }
    return query.orderBy('id').limit(options.limit).offset(options.offset).execute();
  }

  async revokeKey(id: string): Promise<boolean> {
    const result = await this.ctx.db
      .updateTable('api_keys')
      .set({ revoked_at: this.ctx.now() })
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return affected(result) === 1;
  }
}
