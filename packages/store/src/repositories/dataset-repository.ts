import { createHash } from 'node:crypto';
import { InsituError, newId, type Column, type DatasetInput } from '@insitu/core';
import { sql, type Kysely, type RawBuilder, type SelectQueryBuilder } from 'kysely';
import type { Database, DatasetRowRaw, DatasetsTable } from '../schema.js';
import { fts5Query, mysqlDoc, mysqlQuery, normalizedName, queryTokens, searchTokens } from '../search-text.js';
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

interface IndexedDataset {
  name: string;
  tags: string[];
  columns: Column[];
  description: string;
  visibility: 'public' | 'org';
  orgId: string;
  providerId: string;
}

const PUBLIC_TOKEN = 'vpublic';

/**
 * How search results are ordered, identically on SQLite and MariaDB: datasets whose name
 * is exactly the query, then those whose name holds every word, then those where every
 * word is in the name, tags or columns (names and descriptions), then the rest (words
 * also found in the description); newest first within each tier. Term-frequency scores
 * (BM25) were dropped on purpose: ranking every match of a common word cost 20–90 ms at
 * 100,000 datasets, and they differed between the engines.
 */
export const RANKING = 'exact name > name > name/tags/columns > description; newest first within a tier';

/** A filter token for the FTS5 `meta` column: a letter and 16 hex digits of SHA-256, so any value becomes one safe token. */
function metaToken(kind: 'o' | 'p' | 't' | 'c' | 'n', value: string): string {
  return kind + createHash('sha256').update(value).digest('hex').slice(0, 16);
}

/**
 * Read ranked tiers into one page of seqs. Each tier's match set contains the previous
 * one's, so a tier's own rows are its matches minus the previous tier's (`minusPrevious`).
 * While every tier so far was read in full (no page skipped), the next tier reads its
 * plain match and drops the rows already seen here, instead of asking the engine to
 * evaluate the previous tier again inside a NOT; once a page starts inside or after a
 * tier, tiers are read with `minusPrevious`, an offset, and counted to skip them whole.
 */
async function readTiers<T>(
  tiers: readonly T[],
  params: Pick<DatasetSearch, 'limit' | 'offset'>,
  read: { rows(tier: T, which: 'match' | 'minusPrevious', limit: number, offset: number): Promise<number[]>; count(tier: T): Promise<number> },
): Promise<number[]> {
  const out: number[] = [];
  let skip = params.offset;
  let need = params.limit + 1;
  const seen = new Set<number>();
  let complete = true;
  for (const tier of tiers) {
    if (need === 0) break;
    if (complete && skip === 0) {
      const own = (await read.rows(tier, 'match', need + seen.size, 0)).filter((seq) => !seen.has(seq));
      out.push(...own.slice(0, need));
      for (const seq of own) seen.add(seq);
      if (own.length >= need) break;
      need -= own.length;
      continue;
    }
    complete = false;
    const rows = await read.rows(tier, 'minusPrevious', need, skip);
    if (rows.length > 0) {
      out.push(...rows);
      need -= rows.length;
      skip = 0;
    } else if (skip > 0) {
      // The page starts after this tier: skip its whole size.
      skip = Math.max(0, skip - (await read.count(tier)));
    }
  }
  return out;
}

type JoinedRow = DatasetRowRaw & { provider_name: string };

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
      .select(['p.name as provider_name']);
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
      const provider = await db.selectFrom('providers').select(['org_id']).where('id', '=', providerId).executeTakeFirst();
      if (!provider) throw new InsituError('INSITU_PROVIDER_NOT_FOUND', `no provider ${providerId}`);
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
          .values({ id: newId('ds'), provider_id: providerId, org_id: provider.org_id, name, created_at: now, ...values })
          .executeTakeFirstOrThrow();
        seq = Number(result.insertId);
      }
      await this.index(db, seq, { name, tags, columns: input.columns, description: values.description, visibility: values.visibility, orgId: provider.org_id, providerId });
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
    else {
      await db.deleteFrom('dataset_fts').where('rowid', '=', seq).execute();
      await db.deleteFrom('dataset_fts_near').where('rowid', '=', seq).execute();
    }
  }

  private async index(db: Kysely<Database>, seq: number, doc: IndexedDataset): Promise<void> {
    const { name, tags, columns, description } = doc;
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
        .values({
          seq,
          name_norm: normalizedName(name),
          name_doc: mysqlDoc(nameTokens),
          ntc_doc: mysqlDoc([...nameTokens, ...tagTokens, ...columnTokens]),
          doc: mysqlDoc([...nameTokens, ...tagTokens, ...columnTokens, ...descriptionTokens]),
        })
        .execute();
    } else {
      const meta = [
        doc.visibility === 'public' ? PUBLIC_TOKEN : 'vorg',
        metaToken('n', normalizedName(name)),
        metaToken('o', doc.orgId),
        metaToken('p', doc.providerId),
        ...tags.map((t) => metaToken('t', t)),
        ...columnNames.map((c) => metaToken('c', c)),
      ].join(' ');
      await db
        .insertInto('dataset_fts')
        .values({ rowid: seq, name: nameTokens.join(' '), tags: tagTokens.join(' '), columns: columnTokens.join(' '), description: descriptionTokens.join(' '), meta })
        .execute();
      await db.insertInto('dataset_fts_near').values({ rowid: seq, name: nameTokens.join(' '), tags: tagTokens.join(' '), columns: columnTokens.join(' '), meta }).execute();
    }
  }

  /**
   * Search the catalog. Every token of `q` must match a token of the name, tags,
   * column names or descriptions as a prefix; results rank name matches first.
   * Returns one page and whether more follow.
   */
  async search(params: DatasetSearch): Promise<{ items: DatasetRecord[]; hasMore: boolean }> {
    const tokens = params.q ? queryTokens(params.q) : [];
    // A query with no letters or digits (only punctuation) matches nothing.
    if (tokens.length === 0 && params.q && params.q.trim() !== '') return { items: [], hasMore: false };
    let seqs: number[];
    if (tokens.length > 0 && this.ctx.dialect === 'sqlite') seqs = await this.rankSqlite(tokens, params);
    else if (tokens.length > 0) seqs = await this.rankMysql(tokens, params);
    else seqs = await this.browse(params);
    // Phase two: the full rows of one page only, in the order phase one chose.
    const page = seqs.slice(0, params.limit);
    const rows = page.length > 0 ? await this.base().where('d.seq', 'in', page).execute() : [];
    const bySeq = new Map(rows.map((row) => [Number(row.seq), decode(row)]));
    const items = page.map((seq) => bySeq.get(seq)).filter((r): r is DatasetRecord => r !== undefined);
    return { items, hasMore: seqs.length > params.limit };
  }

  /**
   * SQLite: each tier is one FTS5 query (filters are hashed tokens in the `meta` column),
   * read in rowid order with a LIMIT, so FTS5 stops after one page instead of ranking
   * every match; the datasets table is not touched. See {@link RANKING}.
   */
  private async rankSqlite(tokens: string[], params: DatasetSearch): Promise<number[]> {
    const words = fts5Query(tokens);
    const filters: string[] = [];
    if (!params.viewer.all) filters.push(`meta : (${[PUBLIC_TOKEN, ...params.viewer.orgIds.map((o) => metaToken('o', o))].map((t) => `"${t}"`).join(' OR ')})`);
    for (const tag of params.tags ?? []) filters.push(`meta : "${metaToken('t', tag)}"`);
    if (params.column) filters.push(`meta : "${metaToken('c', params.column.toLowerCase())}"`);
    if (params.providerId) filters.push(`meta : "${metaToken('p', params.providerId)}"`);
    const exact = `meta : "${metaToken('n', tokens.join(' '))}"`;
    const name = `name : (${words})`;
    const near = `{name tags columns} : (${words})`;
    const all = `{name tags columns description} : (${words})`;
    const where = (expr: string, not?: string) => {
      const positive = [expr, ...filters].map((e) => `(${e})`).join(' AND ');
      return not ? `(${positive}) NOT (${not})` : positive;
    };
    // Each tier's match set contains the previous one's (exact name ⊆ name ⊆
    // name/tags/columns ⊆ everything), so a tier's own rows are its matches minus the
    // previous tier's. The name and name/tags/columns tiers run on the table without
    // descriptions (words common in descriptions would make them scan long doclists).
    const tiers: Array<{ table: string; match: string; minusPrevious: string }> = [
      { table: 'dataset_fts', match: where(exact), minusPrevious: where(exact) },
      { table: 'dataset_fts_near', match: where(name), minusPrevious: where(name, exact) },
      { table: 'dataset_fts_near', match: where(near), minusPrevious: where(near, name) },
      { table: 'dataset_fts', match: where(all), minusPrevious: where(all, near) },
    ];
    return readTiers(tiers, params, {
      rows: async (tier, which, limit, offset) => {
        const fts = sql.table(tier.table);
        const expr = which === 'match' ? tier.match : tier.minusPrevious;
        const rows = await sql<{ seq: number }>`SELECT rowid AS seq FROM ${fts} WHERE ${fts} MATCH ${expr} ORDER BY rowid DESC LIMIT ${limit} OFFSET ${offset}`.execute(this.ctx.db);
        return rows.rows.map((r) => Number(r.seq));
      },
      count: async (tier) => {
        const fts = sql.table(tier.table);
        const count = await sql<{ n: number }>`SELECT COUNT(*) AS n FROM ${fts} WHERE ${fts} MATCH ${tier.minusPrevious}`.execute(this.ctx.db);
        return Number(count.rows[0]?.n ?? 0);
      },
    });
  }

  /**
   * MariaDB: InnoDB FULLTEXT in boolean mode (every word required, as a prefix), the same
   * tiers as SQLite, one query each, newest first with a LIMIT: most searches fill their
   * page from the name tier and never run the full-document match, which InnoDB ranks
   * in full before any LIMIT applies.
   */
  private async rankMysql(tokens: string[], params: DatasetSearch): Promise<number[]> {
    const match = mysqlQuery(tokens);
    const exact = sql<boolean>`s.name_norm = ${tokens.join(' ')}`;
    const name = sql<boolean>`MATCH(s.name_doc) AGAINST (${match} IN BOOLEAN MODE)`;
    const near = sql<boolean>`MATCH(s.ntc_doc) AGAINST (${match} IN BOOLEAN MODE)`;
    const all = sql<boolean>`MATCH(s.doc) AGAINST (${match} IN BOOLEAN MODE)`;
    const tiers = [
      { match: exact, minusPrevious: exact },
      { match: name, minusPrevious: sql<boolean>`${name} AND NOT (${exact})` },
      { match: near, minusPrevious: sql<boolean>`${near} AND NOT ${name}` },
      { match: all, minusPrevious: sql<boolean>`${all} AND NOT ${near}` },
    ];
    const matching = (where: RawBuilder<boolean>) =>
      this.filtered(this.ctx.db.selectFrom('datasets as d').innerJoin('dataset_search as s', 's.seq', 'd.seq').select('d.seq').where(where), params);
    return readTiers(tiers, params, {
      rows: async (tier, which, limit, offset) => {
        const rows = await matching(which === 'match' ? tier.match : tier.minusPrevious)
          .orderBy('d.seq', 'desc')
          .limit(limit)
          .offset(offset)
          .execute();
        return rows.map((r) => Number(r.seq));
      },
      count: async (tier) => {
        const row = await this.ctx.db
          .selectFrom(matching(tier.minusPrevious).as('m'))
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .executeTakeFirst();
        return Number(row?.n ?? 0);
      },
    });
  }

  /** Without words: filters only, by name. */
  private async browse(params: DatasetSearch): Promise<number[]> {
    const rows = await this.filtered(this.ctx.db.selectFrom('datasets as d').select('d.seq'), params)
      .orderBy('d.name')
      .orderBy('d.seq')
      .limit(params.limit + 1)
      .offset(params.offset)
      .execute();
    return rows.map((r) => Number(r.seq));
  }

  private filtered<Q extends SelectQueryBuilder<Database & { d: DatasetsTable }, 'd', { seq: number }>>(query: Q, params: DatasetSearch): Q {
    let out = query;
    for (const tag of params.tags ?? []) {
      out = out.where((eb) => eb.exists(eb.selectFrom('dataset_tags as t').select('t.seq').whereRef('t.seq', '=', 'd.seq').where('t.tag', '=', tag))) as Q;
    }
    if (params.column) {
      const column = params.column.toLowerCase();
      out = out.where((eb) => eb.exists(eb.selectFrom('dataset_columns as c').select('c.seq').whereRef('c.seq', '=', 'd.seq').where('c.name_lc', '=', column))) as Q;
    }
    if (params.providerId) out = out.where('d.provider_id', '=', params.providerId) as Q;
    if (!params.viewer.all) {
      const orgIds = params.viewer.orgIds;
      out = out.where((eb) => (orgIds.length > 0 ? eb.or([eb('d.visibility', '=', 'public'), eb('d.org_id', 'in', orgIds)]) : eb('d.visibility', '=', 'public'))) as Q;
    }
    return out;
  }

  /** Number of datasets, for status pages and benchmarks. */
  async count(): Promise<number> {
    const row = await this.ctx.db.selectFrom('datasets').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirst();
    return Number(row?.n ?? 0);
  }
}
