import { newId, type Column, type DatasetInput, type OutputPolicy } from '@insitu/core';
import type { Kysely } from 'kysely';
import { MysqlCatalogIndex } from '../catalog/mysql-index.js';
import { filtered, type CatalogIndex, type DatasetSearch, type IndexedDataset } from '../catalog/search.js';
import { SqliteCatalogIndex } from '../catalog/sqlite-index.js';
import type { Database, DatasetRowRaw } from '../schema.js';
import { queryTokens } from '../search-text.js';
import { affected, type RepositoryContext } from './context.js';
import { providerNotFound } from '../errors.js';

export type { CatalogViewer, DatasetSearch } from '../catalog/search.js';

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
  /** The output policy of the agent's config, as its last sync reported it. */
  agentPolicy: OutputPolicy;
  /** The output policy set on the platform (can only tighten the agent's). */
  platformPolicy: OutputPolicy;
  syncedAt: number;
  createdAt: number;
  updatedAt: number;
}

function policyOf(text: string | null): OutputPolicy {
  return text === null ? {} : (JSON.parse(text) as OutputPolicy);
}

function policyText(policy: OutputPolicy | undefined): string | null {
  return policy === undefined || Object.keys(policy).length === 0 ? null : JSON.stringify(policy);
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
    agentPolicy: policyOf(row.agent_policy),
    platformPolicy: policyOf(row.platform_policy),
    syncedAt: Number(row.synced_at),
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

/** The data catalog: datasets, their tags and column names, and the search index. */
export class DatasetRepository {
  /** The search index of this store's dialect, chosen once. */
  readonly #index: CatalogIndex;

  constructor(private readonly ctx: RepositoryContext) {
    this.#index =
      ctx.dialect === 'mysql' ? new MysqlCatalogIndex(() => this.ctx.db) : new SqliteCatalogIndex(() => this.ctx.db);
  }

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
      const provider = await db
        .selectFrom('providers')
        .select(['org_id'])
        .where('id', '=', providerId)
        .executeTakeFirst();
      if (!provider) throw providerNotFound(providerId);
      const tags = [...new Set(input.tags ?? [])];
      const values = {
        description: input.description ?? '',
        tags: JSON.stringify(tags),
        source_kind: input.sourceKind,
        visibility: input.visibility ?? 'public',
        columns: JSON.stringify(input.columns),
        row_count: input.rowCount,
        agent_policy: policyText(input.policy),
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
          .values({
            id: newId('ds'),
            provider_id: providerId,
            org_id: provider.org_id,
            name,
            created_at: now,
            ...values,
          })
          .executeTakeFirstOrThrow();
        seq = Number(result.insertId);
      }
      await this.index(db, seq, {
        name,
        tags,
        columns: input.columns,
        description: values.description,
        visibility: values.visibility,
        orgId: provider.org_id,
        providerId,
      });
      const row = await this.base(db).where('d.seq', '=', seq).executeTakeFirstOrThrow();
      return { record: decode(row), created: !existing };
    });
  }

  /** Set (replace) the platform's output policy of a dataset; an empty policy removes it. False when there is no such dataset. */
  async setPlatformPolicy(id: string, policy: OutputPolicy): Promise<boolean> {
    // Not the update's row count: MySQL counts only rows whose values changed.
    const found = await this.ctx.db.selectFrom('datasets').select('seq').where('id', '=', id).executeTakeFirst();
    if (!found) return false;
    await this.ctx.db
      .updateTable('datasets')
      .set({ platform_policy: policyText(policy), updated_at: this.ctx.now() })
      .where('id', '=', id)
      .execute();
    return true;
  }

  /** The platform's output policies of a provider's datasets, by dataset name (only those that have one). */
  async platformPolicies(providerId: string): Promise<Array<{ dataset: string; policy: OutputPolicy }>> {
    const rows = await this.ctx.db
      .selectFrom('datasets')
      .select(['name', 'platform_policy'])
      .where('provider_id', '=', providerId)
      .where('platform_policy', 'is not', null)
      .orderBy('name')
      .execute();
    return rows.map((r) => ({ dataset: r.name, policy: policyOf(r.platform_policy) }));
  }

  /** Delete a provider's dataset by name; false when there was none. */
  remove(providerId: string, name: string): Promise<boolean> {
    return this.inTransaction(async (db) => {
      const existing = await db
        .selectFrom('datasets')
        .select('seq')
        .where('provider_id', '=', providerId)
        .where('name', '=', name)
        .executeTakeFirst();
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
    await this.#index.clear(db, seq);
  }

  private async index(db: Kysely<Database>, seq: number, doc: IndexedDataset): Promise<void> {
    if (doc.tags.length > 0)
      await db
        .insertInto('dataset_tags')
        .values(doc.tags.map((tag) => ({ seq, tag })))
        .execute();
    const columnNames = [...new Set(doc.columns.map((c) => c.name.toLowerCase().slice(0, 128)))];
    await db
      .insertInto('dataset_columns')
      .values(columnNames.map((name_lc) => ({ seq, name_lc })))
      .execute();
    await this.#index.add(db, seq, doc, columnNames);
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
    const seqs = tokens.length > 0 ? await this.#index.rank(tokens, params) : await this.browse(params);
    // Phase two: the full rows of one page only, in the order phase one chose.
    const page = seqs.slice(0, params.limit);
    const rows = page.length > 0 ? await this.base().where('d.seq', 'in', page).execute() : [];
    const bySeq = new Map(rows.map((row) => [Number(row.seq), decode(row)]));
    const items = page.map((seq) => bySeq.get(seq)).filter((r): r is DatasetRecord => r !== undefined);
    return { items, hasMore: seqs.length > params.limit };
  }

  /** Without words: filters only, by name. */
  private async browse(params: DatasetSearch): Promise<number[]> {
    const rows = await filtered(this.ctx.db.selectFrom('datasets as d').select('d.seq'), params)
      .orderBy('d.name')
      .orderBy('d.seq')
      .limit(params.limit + 1)
      .offset(params.offset)
      .execute();
    return rows.map((r) => Number(r.seq));
  }

  /** Number of datasets, for status pages and benchmarks. */
  async count(): Promise<number> {
    const row = await this.ctx.db
      .selectFrom('datasets')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirst();
    return Number(row?.n ?? 0);
  }
}
