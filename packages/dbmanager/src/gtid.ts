/**
 * MariaDB GTID positions: `domain-server-seq` per replication domain, comma separated
 * (`0-1-100,1-3-7`). A position is the last GTID applied (or received, or binlogged) in
 * each domain. With `gtid_strict_mode=ON` sequence numbers only grow inside a domain, so
 * comparing positions domain by domain is meaningful.
 */

/** One GTID. */
export interface Gtid {
  domain: number;
  server: number;
  seq: number;
}

/** A position: the last GTID of each domain. */
export type GtidPosition = ReadonlyMap<number, Gtid>;

const GTID = /^(\d+)-(\d+)-(\d+)$/;

/** Parse `0-1-100,1-3-7` (empty string: no transactions). Throws on anything else. */
export function parseGtidPosition(text: string | null | undefined): GtidPosition {
  const out = new Map<number, Gtid>();
  for (const part of (text ?? '').split(',')) {
    const trimmed = part.trim();
    if (trimmed === '') continue;
    const match = GTID.exec(trimmed);
    if (!match) throw new Error(`not a GTID: ${JSON.stringify(trimmed)}`);
    const gtid = { domain: Number(match[1]), server: Number(match[2]), seq: Number(match[3]) };
    out.set(gtid.domain, gtid);
  }
  return out;
}

/** `domain-server-seq` */
export function formatGtid(gtid: Gtid): string {
  return `${gtid.domain}-${gtid.server}-${gtid.seq}`;
}

/** The position as MariaDB writes it, domains in order. */
export function formatGtidPosition(position: GtidPosition): string {
  return [...position.values()]
    .sort((a, b) => a.domain - b.domain)
    .map(formatGtid)
    .join(',');
}

/** True when `a` holds at least everything `b` holds: in every domain of `b`, `a`'s seq is at least `b`'s. */
export function gtidCovers(a: GtidPosition, b: GtidPosition): boolean {
  for (const [domain, gtid] of b) {
    const mine = a.get(domain);
    if (mine === undefined || mine.seq < gtid.seq) return false;
  }
  return true;
}

/**
 * Order two positions: positive when `a` is ahead, negative when `b` is, 0 when equal.
 * Positions ahead in different domains are ordered by their total sequence.
 */
export function compareGtidPositions(a: GtidPosition, b: GtidPosition): number {
  const aCovers = gtidCovers(a, b);
  const bCovers = gtidCovers(b, a);
  if (aCovers && !bCovers) return 1;
  if (bCovers && !aCovers) return -1;
  if (aCovers && bCovers) return 0;
  const total = (position: GtidPosition) => [...position.values()].reduce((sum, gtid) => sum + gtid.seq, 0);
  return Math.sign(total(a) - total(b));
}

/** A run of transactions `domain-server-from..to` that one member has beyond a base position. */
export interface GtidRange {
  domain: number;
  server: number;
  fromSeq: number;
  toSeq: number;
}

/**
 * What `position` has beyond `base`, per domain: in strict mode the transactions with
 * sequence numbers above the base's. A domain at the same sequence but from another
 * server also diverged (the same number was used twice).
 */
export function gtidRangesBeyond(position: GtidPosition, base: GtidPosition): GtidRange[] {
  const out: GtidRange[] = [];
  for (const [domain, gtid] of position) {
    const baseGtid = base.get(domain);
    const baseSeq = baseGtid?.seq ?? 0;
    if (gtid.seq > baseSeq) out.push({ domain, server: gtid.server, fromSeq: baseSeq + 1, toSeq: gtid.seq });
    else if (baseGtid !== undefined && gtid.seq === baseSeq && gtid.server !== baseGtid.server) {
      out.push({ domain, server: gtid.server, fromSeq: gtid.seq, toSeq: gtid.seq });
    }
  }
  return out;
}

/** `0-1-101..0-1-103` or `0-1-101`. */
export function formatGtidRange(range: GtidRange): string {
  const from = formatGtid({ domain: range.domain, server: range.server, seq: range.fromSeq });
  if (range.fromSeq === range.toSeq) return from;
  return `${from}..${formatGtid({ domain: range.domain, server: range.server, seq: range.toSeq })}`;
}
