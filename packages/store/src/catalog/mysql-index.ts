import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { Database } from '../schema.js';
import { mysqlDoc, mysqlQuery, normalizedName, searchTokens } from '../search-text.js';
import { filtered, readTiers, type CatalogIndex, type DatasetSearch, type IndexedDataset } from './search.js';

/**
 * The catalog index on MariaDB: `dataset_search` with three InnoDB FULLTEXT documents
 * (name; name, tags and columns; everything) and the normalised name. Boolean mode (every
 * word required, as a prefix), the same tiers as SQLite, one query each, newest first with
 * a LIMIT: most searches fill their page from the name tier and never run the
 * full-document match, which InnoDB ranks in full before any LIMIT applies.
 */
export class MysqlCatalogIndex implements CatalogIndex {
  constructor(private readonly db: () => Kysely<Database>) {}

  async clear(db: Kysely<Database>, seq: number): Promise<void> {
    await db.deleteFrom('dataset_search').where('seq', '=', seq).execute();
  }

  async add(db: Kysely<Database>, seq: number, doc: IndexedDataset): Promise<void> {
    const nameTokens = searchTokens(doc.name);
    const tagTokens = doc.tags.flatMap((t) => searchTokens(t));
    const columnTokens = doc.columns.flatMap((c) => [...searchTokens(c.name), ...searchTokens(c.description ?? '')]);
    const descriptionTokens = searchTokens(doc.description);
    await db
      .insertInto('dataset_search')
      .values({
        seq,
        name_norm: normalizedName(doc.name),
        name_doc: mysqlDoc(nameTokens),
        ntc_doc: mysqlDoc([...nameTokens, ...tagTokens, ...columnTokens]),
        doc: mysqlDoc([...nameTokens, ...tagTokens, ...columnTokens, ...descriptionTokens]),
      })
      .execute();
  }

  rank(tokens: string[], params: DatasetSearch): Promise<number[]> {
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
      filtered(
        this.db()
          .selectFrom('datasets as d')
          .innerJoin('dataset_search as s', 's.seq', 'd.seq')
          .select('d.seq')
          .where(where),
        params,
      );
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
        const row = await this.db()
          .selectFrom(matching(tier.minusPrevious).as('m'))
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .executeTakeFirst();
        return Number(row?.n ?? 0);
      },
    });
  }
}
