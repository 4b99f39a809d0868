import { newId } from '@insitu/core';
import type { Role, UserRow } from '../schema.js';
import { affected, type RepositoryContext } from './context.js';

export interface CreateUser {
  email: string;
  name: string;
  passwordHash: string;
}

/** One membership of a user, with the state of the organisation. */
export interface MembershipView {
  orgId: string;
  orgName: string;
  orgKind: 'platform' | 'member';
  orgStatus: 'active' | 'pending' | 'suspended';
  role: Role;
}

/** A member of an organisation with all roles held there. */
export interface MemberView {
  user: UserRow;
  roles: Role[];
}

/** Users and their memberships (user × organisation × role). */
export class UserRepository {
  constructor(private readonly ctx: RepositoryContext) {}

  async create(input: CreateUser): Promise<UserRow> {
    const now = this.ctx.now();
    const row: UserRow = {
      id: newId('usr'),
      email: input.email.toLowerCase(),
      name: input.name,
      password_hash: input.passwordHash,
      status: 'active',
      created_at: now,
      updated_at: now,
    };
    await this.ctx.db.insertInto('users').values(row).execute();
    return row;
  }

  get(id: string): Promise<UserRow | undefined> {
    return this.ctx.db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
  }

  getByEmail(email: string): Promise<UserRow | undefined> {
    return this.ctx.db.selectFrom('users').selectAll().where('email', '=', email.toLowerCase()).executeTakeFirst();
  }

  list(options: { limit: number; offset: number }): Promise<UserRow[]> {
    return this.ctx.db
      .selectFrom('users')
      .selectAll()
      .orderBy('id')
      .limit(options.limit)
      .offset(options.offset)
      .execute();
  }

  async update(
    id: string,
    changes: { name?: string; passwordHash?: string; status?: UserRow['status'] },
  ): Promise<boolean> {
    const set: Partial<UserRow> = { updated_at: this.ctx.now() };
    if (changes.name !== undefined) set.name = changes.name;
    if (changes.passwordHash !== undefined) set.password_hash = changes.passwordHash;
    if (changes.status !== undefined) set.status = changes.status;
    const result = await this.ctx.db.updateTable('users').set(set).where('id', '=', id).executeTakeFirst();
    return affected(result) === 1;
  }

  /** Give `role` in `orgId`; giving a role the user holds already is a no-op. */
  async addRole(orgId: string, userId: string, role: Role): Promise<void> {
    const exists = await this.ctx.db
      .selectFrom('memberships')
      .select('role')
      .where('org_id', '=', orgId)
      .where('user_id', '=', userId)
      .where('role', '=', role)
      .executeTakeFirst();
    if (!exists) {
      await this.ctx.db
        .insertInto('memberships')
        .values({ org_id: orgId, user_id: userId, role, created_at: this.ctx.now() })
        .execute();
    }
  }

  /** Replace the user's roles in `orgId` (an empty list removes the membership). */
  async setRoles(orgId: string, userId: string, roles: readonly Role[]): Promise<void> {
    await this.ctx.db.deleteFrom('memberships').where('org_id', '=', orgId).where('user_id', '=', userId).execute();
    const now = this.ctx.now();
    if (roles.length > 0) {
      await this.ctx.db
        .insertInto('memberships')
        .values([...new Set(roles)].map((role) => ({ org_id: orgId, user_id: userId, role, created_at: now })))
        .execute();
    }
  }

  /** Every membership of a user, with the organisation's name, kind and status. */
  async memberships(userId: string): Promise<MembershipView[]> {
    const rows = await this.ctx.db
      .selectFrom('memberships as m')
      .innerJoin('orgs as o', 'o.id', 'm.org_id')
      .select(['m.org_id', 'm.role', 'o.name', 'o.kind', 'o.status'])
      .where('m.user_id', '=', userId)
      .orderBy('m.org_id')
      .orderBy('m.role')
      .execute();
    return rows.map((r) => ({ orgId: r.org_id, orgName: r.name, orgKind: r.kind, orgStatus: r.status, role: r.role }));
  }

  /** Members of an organisation, each with its roles, ordered by user id. */
  async members(orgId: string, options: { limit: number; offset: number }): Promise<MemberView[]> {
    const users = await this.ctx.db
      .selectFrom('users as u')
      .selectAll('u')
      .where('u.id', 'in', (qb) => qb.selectFrom('memberships').select('user_id').where('org_id', '=', orgId))
      .orderBy('u.id')
      .limit(options.limit)
      .offset(options.offset)
      .execute();
    if (users.length === 0) return [];
    const roles = await this.ctx.db
      .selectFrom('memberships')
      .select(['user_id', 'role'])
      .where('org_id', '=', orgId)
      .where(
        'user_id',
        'in',
        users.map((u) => u.id),
      )
      .orderBy('role')
      .execute();
    return users.map((user) => ({ user, roles: roles.filter((r) => r.user_id === user.id).map((r) => r.role) }));
  }

  /** How many users hold `role` in `orgId`. */
  async countWithRole(orgId: string, role: Role): Promise<number> {
    const row = await this.ctx.db
      .selectFrom('memberships')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('org_id', '=', orgId)
      .where('role', '=', role)
      .executeTakeFirst();
    return Number(row?.n ?? 0);
  }

  async removeMembership(orgId: string, userId: string): Promise<boolean> {
    const result = await this.ctx.db
      .deleteFrom('memberships')
      .where('org_id', '=', orgId)
      .where('user_id', '=', userId)
      .executeTakeFirst();
    return affected(result) > 0;
  }
}
