import { newId } from '@insitu/core';
import type { SessionRow } from '../schema.js';
import { affected, type RepositoryContext } from './context.js';

/** Sign-in sessions; only the SHA-256 of each bearer token is stored. */
export class SessionRepository {
  constructor(private readonly ctx: RepositoryContext) {}

  async create(input: { userId: string; tokenHash: string; ttlMs: number }): Promise<SessionRow> {
    const now = this.ctx.now();
    const row: SessionRow = {
      id: newId('ses'),
      token_hash: input.tokenHash,
      user_id: input.userId,
      created_at: now,
      expires_at: now + input.ttlMs,
      revoked_at: null,
    };
    await this.ctx.db.insertInto('sessions').values(row).execute();
    return row;
  }

  /** The live session with this token hash: not expired, not revoked. */
  findLive(tokenHash: string): Promise<SessionRow | undefined> {
    return this.ctx.db
      .selectFrom('sessions')
      .selectAll()
      .where('token_hash', '=', tokenHash)
      .where('revoked_at', 'is', null)
      .where('expires_at', '>', this.ctx.now())
      .executeTakeFirst();
  }

  async revoke(id: string): Promise<boolean> {
    const result = await this.ctx.db
      .updateTable('sessions')
      .set({ revoked_at: this.ctx.now() })
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return affected(result) === 1;
  }

  /** Revoke every live session of a user, except `keepId` if given. */
  async revokeAllOfUser(userId: string, keepId?: string): Promise<number> {
    let query = this.ctx.db
      .updateTable('sessions')
      .set({ revoked_at: this.ctx.now() })
      .where('user_id', '=', userId)
      .where('revoked_at', 'is', null);
    if (keepId) query = query.where('id', '!=', keepId);
    const result = await query.executeTakeFirst();
    return affected(result);
  }

  /** Delete sessions that expired or were revoked more than `graceMs` ago. */
  async purge(graceMs = 0): Promise<number> {
    const cutoff = this.ctx.now() - graceMs;
    const result = await this.ctx.db
      .deleteFrom('sessions')
      .where((eb) => eb.or([eb('expires_at', '<', cutoff), eb('revoked_at', '<', cutoff)]))
      .executeTakeFirst();
    return affected(result);
  }
}
