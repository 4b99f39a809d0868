import { readFile, rename, writeFile } from 'node:fs/promises';
import type { Coordinator } from '@insitu/coord';
import type { SignedAnchor } from './anchor.js';

/**
 * The coordination prefix of the anchors (under the platform's etcd namespace): one key
 * per signing key, `audit/anchors/<keyId>`, holding that key's latest anchor, so nodes of a
 * cluster that sign with different keys never overwrite each other.
 */
export const ANCHOR_COORD_PREFIX = 'audit/anchors/';

/**
 * Where anchors are kept outside the database: the coordination store (etcd in a
 * cluster; the in-memory store of one node lives only as long as the process) and a file
 * (by default beside the SQLite database, in the data dir). Each keeps the latest anchor;
 * a newer one never gives way to an older one.
 */
export interface AnchorPlaces {
  coord?: Coordinator;
  file?: string;
}

/** What a place holds, as text (checked by the reader), with where it came from. */
export interface AnchorText {
  source: 'coord' | 'file';
  /** Where exactly: the coordination key or the file's path. */
  at: string;
  text: string;
}

function seqOf(text: string | undefined): number {
  if (!text) return -1;
  try {
    const seq = (JSON.parse(text) as { seq?: unknown }).seq;
    return typeof seq === 'number' ? seq : -1;
  } catch {
    return -1;
  }
}

/** Read the anchors the places hold (missing ones are skipped; an unreadable coord throws). */
export async function readAnchorTexts(places: AnchorPlaces): Promise<AnchorText[]> {
  const out: AnchorText[] = [];
  if (places.coord) {
    for (const [key, text] of await places.coord.list(ANCHOR_COORD_PREFIX))
      out.push({ source: 'coord', at: key, text });
  }
  if (places.file) {
    try {
      out.push({ source: 'file', at: places.file, text: await readFile(places.file, 'utf8') });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  return out;
}

/** Put `anchor` under its key id into the coordination store unless it holds a newer one there. */
export async function putCoordAnchor(coord: Coordinator, anchor: SignedAnchor): Promise<void> {
  const key = `${ANCHOR_COORD_PREFIX}${anchor.keyId}`;
  if (seqOf(await coord.get(key)) > anchor.seq) return;
  await coord.put(key, JSON.stringify(anchor));
}

/** Write `anchor` to `file` (whole or not at all: a temporary file renamed over it) unless it holds a newer one. */
export async function writeAnchorFile(file: string, anchor: SignedAnchor): Promise<void> {
  let current: string | undefined;
  try {
    current = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  if (seqOf(current) > anchor.seq) return;
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, `${JSON.stringify(anchor)}\n`, { mode: 0o644 });
  await rename(temporary, file);
}
