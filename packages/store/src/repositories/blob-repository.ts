import { createHash } from 'node:crypto';
import type { RepositoryContext } from './context.js';

/** Chunk size of stored blobs: below MariaDB's default max_allowed_packet (16 MiB) with room to spare. */
export const BLOB_CHUNK_BYTES = 1024 * 1024;

/**
 * Content-addressed blobs (application bundles) in the database, in 1 MiB chunks. Every
 * platform node can serve every bundle; they are replicated and backed up with the rest.
 */
export class BlobRepository {
  constructor(private readonly ctx: RepositoryContext) {}

  /** Store `data` under its SHA-256 (hex), once; returns the digest. Call inside a transaction. */
  async put(data: Buffer): Promise<string> {
    const digest = createHash('sha256').update(data).digest('hex');
    if (await this.has(digest)) return digest;
    const chunks = Math.max(1, Math.ceil(data.length / BLOB_CHUNK_BYTES));
    for (let i = 0; i < chunks; i++) {
      await this.ctx.db
        .insertInto('blob_chunks')
        .values({ digest, chunk: i, data: data.subarray(i * BLOB_CHUNK_BYTES, (i + 1) * BLOB_CHUNK_BYTES) })
        .execute();
    }
    await this.ctx.db
      .insertInto('blobs')
      .values({ digest, size: data.length, chunks, created_at: this.ctx.now() })
      .execute();
    return digest;
  }

  async has(digest: string): Promise<boolean> {
    return (
      (await this.ctx.db.selectFrom('blobs').select('digest').where('digest', '=', digest).executeTakeFirst()) !==
      undefined
    );
  }

  /** The blob, verified against its digest, or undefined. */
  async get(digest: string): Promise<Buffer | undefined> {
    const meta = await this.ctx.db.selectFrom('blobs').selectAll().where('digest', '=', digest).executeTakeFirst();
    if (!meta) return undefined;
    const rows = await this.ctx.db
      .selectFrom('blob_chunks')
      .select(['chunk', 'data'])
      .where('digest', '=', digest)
      .orderBy('chunk')
      .execute();
    const data = Buffer.concat(rows.map((r) => Buffer.from(r.data)));
    if (createHash('sha256').update(data).digest('hex') !== digest) {
      throw new Error(`blob ${digest} is corrupt in the database`);
    }
    return data;
  }
}
