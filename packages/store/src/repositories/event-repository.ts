import { newId } from '@insitu/core';
import type { EventRow } from '../schema.js';
import type { RepositoryContext } from './context.js';

/** Something that happened, for people: submitted, approved, deployed, crash-looping, failed over… */
export interface EventInput {
  orgId: string | null;
  kind: string;
  subject: string;
  message: string;
  data?: Record<string, unknown>;
}

/** The event log the console and `GET /api/v1/events` show. */
export class EventRepository {
  constructor(private readonly ctx: RepositoryContext) {}

  async add(input: EventInput): Promise<void> {
    await this.ctx.db
      .insertInto('events')
      .values({ id: newId('evt'), ts: this.ctx.now(), org_id: input.orgId, kind: input.kind, subject: input.subject, message: input.message, data: JSON.stringify(input.data ?? {}) })
      .execute();
  }

  /** Newest first; of some organisations (plus platform-wide events when `includePlatform`), or all. */
  list(options: { orgIds?: readonly string[]; includePlatform?: boolean; subject?: string; beforeSeq?: number; limit: number }): Promise<EventRow[]> {
    let query = this.ctx.db.selectFrom('events').selectAll();
    const orgIds = options.orgIds;
    if (orgIds) {
      query = query.where((eb) =>
        eb.or([...(orgIds.length > 0 ? [eb('org_id', 'in', orgIds)] : [eb('org_id', '=', '__none__')]), ...(options.includePlatform ? [eb('org_id', 'is', null)] : [])]),
      );
    }
    if (options.subject) query = query.where('subject', '=', options.subject);
    if (options.beforeSeq !== undefined) query = query.where('seq', '<', options.beforeSeq);
    return query.orderBy('seq', 'desc').limit(options.limit).execute();
  }
}
