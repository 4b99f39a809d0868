import { newId } from '@insitu/core';
import type { EventRow } from '../schema.js';
import type { RepositoryContext } from './context.js';

/** Something that happened, for people: submitted, approved, deployed, crash-looping, failed over… */
export interface EventInput {
  /** A given id (events copied from elsewhere keep theirs); a new one by default. */
  id?: string;
  /** When it happened (epoch ms); now by default. */
  ts?: number;
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
      .values({
        id: input.id ?? newId('evt'),
        ts: input.ts ?? this.ctx.now(),
        org_id: input.orgId,
        kind: input.kind,
        subject: input.subject,
        message: input.message,
        data: JSON.stringify(input.data ?? {}),
      })
      .execute();
  }

  /**
   * Add events that carry their own ids (the operator's, copied from coord), skipping ids
   * already present, so a copy repeated after a lost answer adds nothing twice. Returns how
   * many were new.
   */
  async addMissing(inputs: readonly (EventInput & { id: string })[]): Promise<number> {
    if (inputs.length === 0) return 0;
    const present = new Set(
      (
        await this.ctx.db
          .selectFrom('events')
          .select('id')
          .where(
            'id',
            'in',
            inputs.map((e) => e.id),
          )
          .execute()
      ).map((row) => row.id),
    );
    let added = 0;
    for (const input of inputs) {
      if (present.has(input.id)) continue;
      await this.add(input);
      present.add(input.id);
      added += 1;
    }
    return added;
  }

  /**
   * A write and a read of the platform database that leaves nothing behind (the operator's
   * deep probe): insert a row, read it back, delete it. Run it in a transaction so no reader
   * ever sees the row; the commit proves the primary takes writes. Resolves with the row's id.
   */
  async probe(subject: string): Promise<string> {
    const id = newId('evt');
    await this.add({ id, orgId: null, kind: 'platform.probe', subject: subject.slice(0, 64), message: 'deep probe' });
    const row = await this.ctx.db.selectFrom('events').select('id').where('id', '=', id).executeTakeFirst();
    if (row?.id !== id) throw new Error('the probe row written was not read back');
    await this.ctx.db.deleteFrom('events').where('id', '=', id).execute();
    return id;
  }

  /** Newest first; of some organisations (plus platform-wide events when `includePlatform`), or all. `kind` ending in `.` matches a prefix. */
  list(options: {
    orgIds?: readonly string[];
    includePlatform?: boolean;
    subject?: string;
    kind?: string;
    beforeSeq?: number;
    limit: number;
  }): Promise<EventRow[]> {
    let query = this.ctx.db.selectFrom('events').selectAll();
    const orgIds = options.orgIds;
    if (orgIds) {
      query = query.where((eb) =>
        eb.or([
          ...(orgIds.length > 0 ? [eb('org_id', 'in', orgIds)] : [eb('org_id', '=', '__none__')]),
          ...(options.includePlatform ? [eb('org_id', 'is', null)] : []),
        ]),
      );
    }
    if (options.subject) query = query.where('subject', '=', options.subject);
    // Kinds are [a-z0-9.-] (the API checks it), so a prefix needs no LIKE escaping.
    if (options.kind)
      query = options.kind.endsWith('.')
        ? query.where('kind', 'like', `${options.kind}%`)
        : query.where('kind', '=', options.kind);
    if (options.beforeSeq !== undefined) query = query.where('seq', '<', options.beforeSeq);
    return query.orderBy('seq', 'desc').limit(options.limit).execute();
  }
}
