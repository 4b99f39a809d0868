import { createHash } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { Database } from '../schema.js';
import { fts5Query, normalizedName, searchTokens } from '../search-text.js';
import { readTiers, type CatalogIndex, type DatasetSearch, type IndexedDataset } from './search.js';

const PUBLIC_TOKEN = 'vpublic';

/** A filter token for the FTS5 `meta` column: a letter and 16 hex digits of SHA-256, so any value becomes one safe token. */
function metaToken(kind: 'o' | 'p' | 't' | 'c' | 'n', value: string): string {
  return kind + createHash('sha256').update(value).digest('hex').slice(0, 16);
}

/**
 * The catalog index on SQLite: two FTS5 tables (`dataset_fts` with descriptions,
 * `dataset_fts_near` without), filters as hashed tokens in their `meta` column. Each tier
 * is one FTS5 query read in rowid order with a LIMIT, so FTS5 stops after one page
 * instead of ranking every match; the datasets table is not touched.
 */
export class SqliteCatalogIndex implements CatalogIndex {
  constructor(private readonly db: () => Kysely<Database>) {}

  async clear(db: Kysely<Database>, seq: number): Promise<void> {
    await db.deleteFrom('dataset_fts').where('rowid', '=', seq).execute();
    await db.deleteFrom('dataset_fts_near').where('rowid', '=', seq).execute();
  }

  async add(db: Kysely<Database>, seq: number, doc: IndexedDataset, columnNames: readonly string[]): Promise<void> {
    const nameTokens = searchTokens(doc.name);
    const tagTokens = doc.tags.flatMap((t) => searchTokens(t));
    const columnTokens = doc.columns.flatMap((c) => [...searchTokens(c.name), ...searchTokens(c.description ?? '')]);
    const descriptionTokens = searchTokens(doc.description);
    const meta = [
      doc.visibility === 'public' ? PUBLIC_TOKEN : 'vorg',
      metaToken('n', normalizedName(doc.name)),
      metaToken('o', doc.orgId),
      metaToken('p', doc.providerId),
      ...doc.tags.map((t) => metaToken('t', t)),
      ...columnNames.map((c) => metaToken('c', c)),
    ].join(' ');
    await db
      .insertInto('dataset_fts')
      .values({
        rowid: seq,
        name: nameTokens.join(' '),
        tags: tagTokens.join(' '),
        columns: columnTokens.join(' '),
        description: descriptionTokens.join(' '),
        meta,
      })
      .execute();
    await db
      .insertInto('dataset_fts_near')
      .values({
        rowid: seq,
        name: nameTokens.join(' '),
        tags: tagTokens.join(' '),
        columns: columnTokens.join(' '),
        meta,
      })
      .execute();
  }

  rank(tokens: string[], params: DatasetSearch): Promise<number[]> {
    const words = fts5Query(tokens);
    const filters: string[] = [];
    if (!params.viewer.all)
      filters.push(
        `meta : (${[PUBLIC_TOKEN, ...params.viewer.orgIds.map((o) => metaToken('o', o))].map((t) => `"${t}"`).join(' OR ')})`,
      );
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
        const rows = await sql<{
          seq: number;
        }>`SELECT rowid AS seq FROM ${fts} WHERE ${fts} MATCH ${expr} ORDER BY rowid DESC LIMIT ${limit} OFFSET ${offset}`.execute(
          this.db(),
        );
        return rows.rows.map((r) => Number(r.seq));
      },
      count: async (tier) => {
        const fts = sql.table(tier.table);
        const count = await sql<{
          n: number;
        }>`SELECT COUNT(*) AS n FROM ${fts} WHERE ${fts} MATCH ${tier.minusPrevious}`.execute(this.db());
        return Number(count.rows[0]?.n ?? 0);
      },
    });
  }
}
