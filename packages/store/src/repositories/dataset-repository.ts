import { newId, type Column, type DatasetInput } from '@insitu/core';
import { sql, type Kysely } from 'kysely';
import type { Database, DatasetRowRaw } from '../schema.js';
import { fts5Query, mysqlDoc, mysqlQuery, queryTokens, searchTokens } from '../search-text.js';
import { affected, type RepositoryContext } from './context.js';

/** A dataset as repositories return it: metadata only, decoded. */
export interface DatasetRecord {
  id: string;
  seq: number;
  providerId: string;
  providerName: string;
  orgId: string;
  name: string;
  description: string;
  tags: string[];
  sourceKind: string;
  visibility: 'public' | 'org';
  columns: Column[];
  rowCount: number | null;
  syncedAt: number;
  createdAt: number;
  updatedAt: number;
}

/** Who is looking: platform admins see everything, others public datasets and their organisations'. */
export interface CatalogViewer {
  all: boolean;
  orgIds: readonly string[];
}

/** A catalog search. All given filters must hold; `q` ranks the results. */
export interface DatasetSearch {
  q?: string;
  tags?: readonly string[];
  providerId?: string;
  column?: string;
  viewer: CatalogViewer;
  limit: number;
  offset: number;
}

type JoinedRow = DatasetRowRaw & { provider_name: string; org_id: string };

function decode(row: JoinedRow): DatasetRecord {
  return {
    id: row.id,
    seq: Number(row.seq),
    providerId: row.provider_id,
    providerName: row.provider_name,
    orgId: row.org_id,
    name: row.name,
    description: row.description,
    tags: JSON.parse(row.tags) as string[],
    sourceKind: row.source_kind,
    visibility: row.visibility,
    columns: JSON.parse(row.columns) as Column[],
    rowCount: row.row_count === null ? null : Number(row.row_count),
    syncedAt: Number(row.synced_at),
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

/** The data catalog: datasets, their tags and column names, and the search index. */
export class DatasetRepository {
  constructor(private readonly ctx: RepositoryContext) {}

  private base(db: Kysely<Database> = this.ctx.db) {
    return db
      .selectFrom('datasets as d')
      .innerJoin('providers as p', 'p.id', 'd.provider_id')
      .selectAll('d')
      .select(['p.name as provider_name', 'p.org_id as org_id']);
  }

  async get(id: string): Promise<DatasetRecord | undefined> {
    const row = await this.base().where('d.id', '=', id).executeTakeFirst();
    return row && decode(row);
  }

  async getByName(providerId: string, name: string): Promise<DatasetRecord | undefined> {
    const row = await this.base().where('d.provider_id', '=', providerId).where('d.name', '=', name).executeTakeFirst();
    return row && decode(row);
  }

  private inTransaction<T>(fn: (db: Kysely<Database>) => Promise<T>): Promise<T> {
    return this.ctx.db.isTransaction ? fn(this.ctx.db) : this.ctx.db.transaction().execute(fn);
  }

  /**
   * Create or replace the dataset `name` of a provider with `input` (metadata only),
   * and re-index it. Returns the stored record and whether it was new.
   */
  upsert(providerId: string, name: string, input: DatasetInput): Promise<{ record: DatasetRecord; created: boolean }> {
    return this.inTransaction(async (db) => {
      const now = this.ctx.now();
      const tags = [...new Set(input.tags ?? [])];
      const values = {
        description: input.description ?? '',
        tags: JSON.stringify(tags),
        source_kind: input.sourceKind,
        visibility: input.visibility ?? 'public',
        columns: JSON.stringify(input.columns),
        row_count: input.rowCount,
        synced_at: input.syncedAt ? Date.parse(input.syncedAt) : now,
        updated_at: now,
      };
      const existing = await db
        .selectFrom('datasets')
        .select(['seq'])
        .where('provider_id', '=', providerId)
        .where('name', '=', name)
        .executeTakeFirst();
      let seq: number;
      if (existing) {
        seq = Number(existing.seq);
        await db.updateTable('datasets').set(values).where('seq', '=', seq).execute();
        await this.clearIndex(db, seq);
      } else {
        const result = await db
          .insertInto('datasets')
          .values({ id: newId('ds'), provider_id: providerId, name, created_at: now, ...values })
          .executeTakeFirstOrThrow();
        seq = Number(result.insertId);
      }
      await this.index(db, seq, name, tags, input.columns, values.description);
      const row = await this.base(db).where('d.seq', '=', seq).executeTakeFirstOrThrow();
      return { record: decode(row), created: !existing };
    });
  }

  /** Delete a provider's dataset by name; false when there was none. */
  remove(providerId: string, name: string): Promise<boolean> {
    return this.inTransaction(async (db) => {
      const existing = await db.selectFrom('datasets').select('seq').where('provider_id', '=', providerId).where('name', '=', name).executeTakeFirst();
      if (!existing) return false;
      const seq = Number(existing.seq);
      await this.clearIndex(db, seq);
      const result = await db.deleteFrom('datasets').where('seq', '=', seq).executeTakeFirst();
      return affected(result) === 1;
    });
  }

  private async clearIndex(db: Kysely<Database>, seq: number): Promise<void> {
    await db.deleteFrom('dataset_tags').where('seq', '=', seq).execute();
    await db.deleteFrom('dataset_columns').where('seq', '=', seq).execute();
    if (this.ctx.dialect === 'mysql') await db.deleteFrom('dataset_search').where('seq', '=', seq).execute();
    else await db.deleteFrom('dataset_fts').where('rowid', '=', seq).execute();
  }

  private async index(db: Kysely<Database>, seq: number, name: string, tags: string[], columns: Column[], description: string): Promise<void> {
    if (tags.length > 0) await db.insertInto('dataset_tags').values(tags.map((tag) => ({ seq, tag }))).execute();
    const columnNames = [...new Set(columns.map((c) => c.name.toLowerCase().slice(0, 128)))];
    await db.insertInto('dataset_columns').values(columnNames.map((name_lc) => ({ seq, name_lc }))).execute();
    const nameTokens = searchTokens(name);
    const tagTokens = tags.flatMap((t) => searchTokens(t));
    const columnTokens = columns.flatMap((c) => [...searchTokens(c.name), ...searchTokens(c.description ?? '')]);
    const descriptionTokens = searchTokens(description);
    if (this.ctx.dialect === 'mysql') {
      await db
        .insertInto('dataset_search')
        .values({ seq, name_doc: mysqlDoc(nameTokens), doc: mysqlDoc([...nameTokens, ...tagTokens, ...columnTokens, ...descriptionTokens]) })
        .execute();
    } else {
      await db
        .insertInto('dataset_fts')
        .values({ rowid: seq, name: nameTokens.join(' '), tags: tagTokens.join(' '), columns: columnTokens.join(' '), description: descriptionTokens.join(' ') })
        .execute();
    }
  }

  /**
   * Search the catalog. Every token of `q` must match a token of the name, tags,
   * column names or descriptions as a prefix; results rank name matches first.
   * Returns one page and whether more follow.
   */
  async search(params: DatasetSearch): Promise<{ items: DatasetRecord[]; hasMore: boolean }> {
    let query = this.base();
    const tokens = params.q ? queryTokens(params.q) : [];
    if (tokens.length > 0) {
      // Ranking, the same on both engines where it matters most: datasets whose name holds
      // every word come first, shortest name first (the closest match); then the rest by
      // the engine's relevance (BM25 on SQLite, InnoDB's TF-IDF on MariaDB).
      if (this.ctx.dialect === 'mysql') {
        const match = mysqlQuery(tokens);
        const nameHit = sql`MATCH(s.name_doc) AGAINST (${match} IN BOOLEAN MODE) > 0`;
        query = query
          .innerJoin('dataset_search as s', 's.seq', 'd.seq')
          .where(sql<boolean>`MATCH(s.doc) AGAINST (${match} IN BOOLEAN MODE)`)
          .orderBy(sql`CASE WHEN ${nameHit} THEN 0 ELSE 1 END`)
          .orderBy(sql`CASE WHEN ${nameHit} THEN CHAR_LENGTH(d.name) ELSE 0 END`)
          .orderBy(sql`MATCH(s.doc) AGAINST (${match} IN BOOLEAN MODE)`, 'desc');
      } else {
        const nameHit = sql`d.seq IN (SELECT rowid FROM dataset_fts WHERE dataset_fts MATCH ${`name : (${fts5Query(tokens)})`})`;
        query = query
          .innerJoin('dataset_fts', 'dataset_fts.rowid', 'd.seq')
          .where(sql<boolean>`dataset_fts MATCH ${fts5Query(tokens)}`)
          .orderBy(sql`CASE WHEN ${nameHit} THEN 0 ELSE 1 END`)
          .orderBy(sql`CASE WHEN ${nameHit} THEN LENGTH(d.name) ELSE 0 END`)
          .orderBy(sql`bm25(dataset_fts, 10.0, 5.0, 3.0, 1.0)`);
      }
    } else if (params.q && params.q.trim() !== '') {
      // A query with no letters or digits (only punctuation) matches nothing.
      return { items: [], hasMore: false };
    }
    for (const tag of params.tags ?? []) {
      query = query.where((eb) => eb.exists(eb.selectFrom('dataset_tags as t').select('t.seq').whereRef('t.seq', '=', 'd.seq').where('t.tag', '=', tag)));
    }
    if (params.column) {
      const column = params.column.toLowerCase();
      query = query.where((eb) => eb.exists(eb.selectFrom('dataset_columns as c').select('c.seq').whereRef('c.seq', '=', 'd.seq').where('c.name_lc', '=', column)));
    }
    if (params.providerId) query = query.where('d.provider_id', '=', params.providerId);
    if (!params.viewer.all) {
      const orgIds = params.viewer.orgIds;
      query = query.where((eb) => (orgIds.length > 0 ? eb.or([eb('d.visibility', '=', 'public'), eb('p.org_id', 'in', orgIds)]) : eb('d.visibility', '=', 'public')));
    }
    const rows = await query.orderBy('d.name').orderBy('d.seq').limit(params.limit + 1).offset(params.offset).execute();
    return { items: rows.slice(0, params.limit).map(decode), hasMore: rows.length > params.limit };
  }

  /** Number of datasets, for status pages and benchmarks. */
  async count(): Promise<number> {
    const row = await this.ctx.db.selectFrom('datasets').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirst();
    return Number(row?.n ?? 0);
  }
}
