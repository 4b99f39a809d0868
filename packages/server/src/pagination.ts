import { createHash } from 'node:crypto';
import { InsituError } from '@insitu/core';

const MAX_OFFSET = 100_000;

/** One page request, decoded: how many, from where. */
export interface PageRequest {
  limit: number;
  offset: number;
  /** Cursor for the page after one that ended at `offset + limit`. */
  next(hasMore: boolean): string | undefined;
}

function queryKey(filters: Record<string, unknown>): string {
  const canonical = JSON.stringify(
    Object.keys(filters)
      .sort()
      .map((k) => [k, filters[k]]),
  );
  return createHash('sha256').update(canonical).digest('base64url').slice(0, 10);
}

/**
 * Decode `limit` and the opaque `cursor` of a list request. The cursor carries the
 * offset and a fingerprint of the filters, so a cursor from another query is refused
 * (`INSITU_BAD_CURSOR`) instead of silently paging something else.
 */
export function pageRequest(
  query: { limit?: number; cursor?: string },
  filters: Record<string, unknown> = {},
): PageRequest {
  const limit = query.limit ?? 20;
  const key = queryKey(filters);
  let offset = 0;
  if (query.cursor !== undefined) {
    let decoded: unknown;
    try {
      decoded = JSON.parse(Buffer.from(query.cursor, 'base64url').toString('utf8'));
    } catch {
      throw new InsituError('INSITU_BAD_CURSOR', 'cursor is not one this endpoint issued');
    }
    const cursor = decoded as { o?: unknown; k?: unknown } | null;
    if (typeof cursor?.o !== 'number' || !Number.isInteger(cursor.o) || cursor.o < 0 || cursor.o > MAX_OFFSET) {
      throw new InsituError('INSITU_BAD_CURSOR', 'cursor is not one this endpoint issued');
    }
    if (cursor.k !== key) throw new InsituError('INSITU_BAD_CURSOR', 'cursor belongs to a query with other filters');
    offset = cursor.o;
  }
  return {
    limit,
    offset,
    next: (hasMore) =>
      hasMore && offset + limit <= MAX_OFFSET
        ? Buffer.from(JSON.stringify({ o: offset + limit, k: key })).toString('base64url')
        : undefined,
  };
}

/** Fetch one more than asked to learn whether another page follows. */
export function pageOf<T>(rows: T[], page: PageRequest): { items: T[]; nextCursor?: string } {
  const hasMore = rows.length > page.limit;
  const nextCursor = page.next(hasMore);
  return nextCursor ? { items: rows.slice(0, page.limit), nextCursor } : { items: rows.slice(0, page.limit) };
}
