import { newId } from '@insitu/core';
import type { AgentRow, EnrolmentTokenRow, ProviderRow } from '../schema.js';
import { affected, type RepositoryContext } from './context.js';

/** Providers (an organisation's offer of data), their enrolment tokens and their agents. */
export class ProviderRepository {
  constructor(private readonly ctx: RepositoryContext) {}

  async create(input: { orgId: string; name: string; displayName: string; description: string }): Promise<ProviderRow> {
    const now = this.ctx.now();
    const row: ProviderRow = {
      id: newId('prv'),
      org_id: input.orgId,
      name: input.name,
      display_name: input.displayName,
      description: input.description,
      created_at: now,
      updated_at: now,
    };
    await this.ctx.db.insertInto('providers').values(row).execute();
    return row;
  }

  get(id: string): Promise<ProviderRow | undefined> {
    return this.ctx.db.selectFrom('providers').selectAll().where('id', '=', id).executeTakeFirst();
  }

  getByName(name: string): Promise<ProviderRow | undefined> {
    return this.ctx.db.selectFrom('providers').selectAll().where('name', '=', name).executeTakeFirst();
  }

  list(options: { orgId?: string; limit: number; offset: number }): Promise<ProviderRow[]> {
    let query = this.ctx.db.selectFrom('providers').selectAll();
    if (options.orgId) query = query.where('org_id', '=', options.orgId);
    return query.orderBy('id').limit(options.limit).offset(options.offset).execute();
  }

  async update(id: string, changes: { displayName?: string; description?: string }): Promise<boolean> {
    const set: Partial<ProviderRow> = { updated_at: this.ctx.now() };
    if (changes.displayName !== undefined) set.display_name = changes.displayName;
    if (changes.description !== undefined) set.description = changes.description;
    const result = await this.ctx.db.updateTable('providers').set(set).where('id', '=', id).executeTakeFirst();
    return affected(result) === 1;
  }

  // Enrolment tokens

  async createToken(input: {
    providerId: string;
    tokenHash: string;
    note: string;
    createdBy: string;
    ttlMs: number;
  }): Promise<EnrolmentTokenRow> {
    const now = this.ctx.now();
    const row: EnrolmentTokenRow = {
      id: newId('enr'),
      provider_id: input.providerId,
      token_hash: input.tokenHash,
      note: input.note,
      created_by: input.createdBy,
      created_at: now,
      expires_at: now + input.ttlMs,
      used_at: null,
      agent_id: null,
      revoked_at: null,
    };
    await this.ctx.db.insertInto('enrolment_tokens').values(row).execute();
    return row;
  }

  getToken(id: string): Promise<EnrolmentTokenRow | undefined> {
    return this.ctx.db.selectFrom('enrolment_tokens').selectAll().where('id', '=', id).executeTakeFirst();
  }

  listTokens(providerId: string, options: { limit: number; offset: number }): Promise<EnrolmentTokenRow[]> {
    return this.ctx.db
      .selectFrom('enrolment_tokens')
      .selectAll()
      .where('provider_id', '=', providerId)
      .orderBy('id')
      .limit(options.limit)
      .offset(options.offset)
      .execute();
  }

  async revokeToken(id: string): Promise<boolean> {
    const result = await this.ctx.db
      .updateTable('enrolment_tokens')
      .set({ revoked_at: this.ctx.now() })
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .where('used_at', 'is', null)
      .executeTakeFirst();
    return affected(result) === 1;
  }

  /**
   * Use an enrolment token once: mark it used by `agentId` if it is unused, unrevoked
   * and unexpired, in one conditional UPDATE so two concurrent exchanges cannot both win.
   */
  async consumeToken(tokenHash: string, agentId: string): Promise<EnrolmentTokenRow | undefined> {
    const now = this.ctx.now();
    const result = await this.ctx.db
      .updateTable('enrolment_tokens')
      .set({ used_at: now, agent_id: agentId })
      .where('token_hash', '=', tokenHash)
      .where('used_at', 'is', null)
      .where('revoked_at', 'is', null)
      .where('expires_at', '>', now)
      .executeTakeFirst();
    if (affected(result) !== 1) return undefined;
    return this.ctx.db
      .selectFrom('enrolment_tokens')
      .selectAll()
      .where('token_hash', '=', tokenHash)
      .executeTakeFirst();
  }

  // Agents

  async createAgent(input: {
    id: string;
    providerId: string;
    name: string;
    credentialHash: string;
    hostname: string;
    version: string;
  }): Promise<AgentRow> {
    const row: AgentRow = {
      id: input.id,
      provider_id: input.providerId,
      name: input.name,
      credential_hash: input.credentialHash,
      hostname: input.hostname,
      version: input.version,
      created_at: this.ctx.now(),
      last_seen_at: null,
      revoked_at: null,
    };
    await this.ctx.db.insertInto('agents').values(row).execute();
    return row;
  }

  getAgent(id: string): Promise<AgentRow | undefined> {
    return this.ctx.db.selectFrom('agents').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /** The unrevoked agent holding this credential hash. */
  findLiveAgent(credentialHash: string): Promise<AgentRow | undefined> {
    return this.ctx.db
      .selectFrom('agents')
      .selectAll()
      .where('credential_hash', '=', credentialHash)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
  }

  /** Agents ordered by id, of one provider and/or of the providers of some organisations. */
  listAgents(options: {
    providerId?: string;
    orgIds?: readonly string[];
    limit: number;
    offset: number;
  }): Promise<AgentRow[]> {
    let query = this.ctx.db.selectFrom('agents as a').selectAll('a');
    if (options.providerId) query = query.where('a.provider_id', '=', options.providerId);
    if (options.orgIds) {
      const orgIds = options.orgIds;
      if (orgIds.length === 0) return Promise.resolve([]);
      query = query.where('a.provider_id', 'in', (qb) =>
        qb.selectFrom('providers').select('id').where('org_id', 'in', orgIds),
      );
    }
    return query.orderBy('a.id').limit(options.limit).offset(options.offset).execute();
  }

  async revokeAgent(id: string): Promise<boolean> {
    const result = await this.ctx.db
      .updateTable('agents')
      .set({ revoked_at: this.ctx.now() })
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return affected(result) === 1;
  }

  async touchAgent(id: string): Promise<void> {
    await this.ctx.db.updateTable('agents').set({ last_seen_at: this.ctx.now() }).where('id', '=', id).execute();
  }
}
