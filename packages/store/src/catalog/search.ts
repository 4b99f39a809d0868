import type { Column } from '@insitu/core';
import type { Kysely, SelectQueryBuilder } from 'kysely';
import type { Database, DatasetsTable } from '../schema.js';

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

/** What the index keeps of a dataset. */
export interface IndexedDataset {
  name: string;
  tags: string[];
  columns: Column[];
  description: string;
  visibility: 'public' | 'org';
  orgId: string;
  providerId: string;
}

/**
 * How search results are ordered, identically on SQLite and MariaDB: datasets whose name
 * is exactly the query, then those whose name holds every word, then those where every
 * word is in the name, tags or columns (names and descriptions), then the rest (words
 * also found in the description); newest first within each tier. Term-frequency scores
 * (BM25) were dropped on purpose: ranking every match of a common word cost 20–90 ms at
 * 100,000 datasets, and they differed between the engines.
 */
export const RANKING = 'exact name > name > name/tags/columns > description; newest first within a tier';

/**
 * Read ranked tiers into one page of seqs. Each tier's match set contains the previous
 * one's, so a tier's own rows are its matches minus the previous tier's (`minusPrevious`).
 * While every tier so far was read in full (no page skipped), the next tier reads its
 * plain match and drops the rows already seen here, instead of asking the engine to
 * evaluate the previous tier again inside a NOT; once a page starts inside or after a
 * tier, tiers are read with `minusPrevious`, an offset, and counted to skip them whole.
 */
export async function readTiers<T>(
  tiers: readonly T[],
  params: Pick<DatasetSearch, 'limit' | 'offset'>,
  read: {
    rows(tier: T, which: 'match' | 'minusPrevious', limit: number, offset: number): Promise<number[]>;
    count(tier: T): Promise<number>;
  },
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

/**
 * The search index of one SQL dialect, chosen once when the store opens: how a dataset is
 * indexed and removed, and how words are ranked into one page of seqs ({@link RANKING}).
 */
export interface CatalogIndex {
  clear(db: Kysely<Database>, seq: number): Promise<void>;
  add(db: Kysely<Database>, seq: number, doc: IndexedDataset, columnNames: readonly string[]): Promise<void>;
  rank(tokens: string[], params: DatasetSearch): Promise<number[]>;
}

/** The filters of a search (tags, column, provider, who may see it) on a query over `datasets as d`. */
export function filtered<Q extends SelectQueryBuilder<Database & { d: DatasetsTable }, 'd', { seq: number }>>(
  query: Q,
  params: DatasetSearch,
): Q {
  let out = query;
  for (const tag of params.tags ?? []) {
    out = out.where((eb) =>
      eb.exists(
        eb.selectFrom('dataset_tags as t').select('t.seq').whereRef('t.seq', '=', 'd.seq').where('t.tag', '=', tag),
      ),
    ) as Q;
  }
  if (params.column) {
    const column = params.column.toLowerCase();
    out = out.where((eb) =>
      eb.exists(
        eb
          .selectFrom('dataset_columns as c')
          .select('c.seq')
          .whereRef('c.seq', '=', 'd.seq')
          .where('c.name_lc', '=', column),
      ),
    ) as Q;
  }
  if (params.providerId) out = out.where('d.provider_id', '=', params.providerId) as Q;
  if (!params.viewer.all) {
    const orgIds = params.viewer.orgIds;
    out = out.where((eb) =>
      orgIds.length > 0
        ? eb.or([eb('d.visibility', '=', 'public'), eb('d.org_id', 'in', orgIds)])
        : eb('d.visibility', '=', 'public'),
    ) as Q;
  }
  return out;
}
