import { newId } from '@insitu/core';
import type { OrgRow, OrgsTable } from '../schema.js';
import { affected, type RepositoryContext } from './context.js';

export interface CreateOrg {
  name: string;
  displayName: string;
  kind?: OrgsTable['kind'];
  status: OrgsTable['status'];
}

/** Organisations: the unit of ownership and of visibility. */
export class OrgRepository {
  constructor(private readonly ctx: RepositoryContext) {}

  async create(input: CreateOrg): Promise<OrgRow> {
    const now = this.ctx.now();
    const row: OrgRow = {
      id: newId('org'),
      name: input.name,
      display_name: input.displayName,
      kind: input.kind ?? 'member',
      status: input.status,
      created_at: now,
      updated_at: now,
    };
    await this.ctx.db.insertInto('orgs').values(row).execute();
    return row;
  }

  get(id: string): Promise<OrgRow | undefined> {
    return this.ctx.db.selectFrom('orgs').selectAll().where('id', '=', id).executeTakeFirst();
  }

  getByName(name: string): Promise<OrgRow | undefined> {
    return this.ctx.db.selectFrom('orgs').selectAll().where('name', '=', name).executeTakeFirst();
  }

  /** The platform's own organisation (its admins administer the platform). */
  platform(): Promise<OrgRow | undefined> {
    return this.ctx.db.selectFrom('orgs').selectAll().where('kind', '=', 'platform').executeTakeFirst();
  }

  /** Organisations ordered by id; `ids` restricts to those (the caller's own). */
  list(options: {
    ids?: readonly string[];
    status?: OrgsTable['status'];
    limit: number;
    offset: number;
  }): Promise<OrgRow[]> {
    let query = this.ctx.db.selectFrom('orgs').selectAll();
    if (options.ids) {
      if (options.ids.length === 0) return Promise.resolve([]);
      query = query.where('id', 'in', options.ids);
    }
    if (options.status) query = query.where('status', '=', options.status);
    return query.orderBy('id').limit(options.limit).offset(options.offset).execute();
  }

  async setStatus(id: string, status: OrgsTable['status']): Promise<boolean> {
    const result = await this.ctx.db
      .updateTable('orgs')
      .set({ status, updated_at: this.ctx.now() })
      .where('id', '=', id)
      .executeTakeFirst();
    return affected(result) === 1;
  }

  async update(id: string, changes: { displayName?: string }): Promise<boolean> {
    if (changes.displayName === undefined) return true;
    const result = await this.ctx.db
      .updateTable('orgs')
      .set({ display_name: changes.displayName, updated_at: this.ctx.now() })
      .where('id', '=', id)
      .executeTakeFirst();
    return affected(result) === 1;
  }
}
