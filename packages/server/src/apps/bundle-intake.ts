import { createHash } from 'node:crypto';
import {
  InsituError,
  canonicalTar,
  parseAppManifest,
  readBundleTar,
  type AppManifest,
  type BundleEntry,
} from '@insitu/core';
import type { BundleFile } from '@insitu/store';

/** A submitted bundle, checked: its canonical bytes, digest, manifest and file list. */
export interface InspectedBundle {
  canonical: Buffer;
  digest: string;
  manifest: AppManifest;
  files: BundleFile[];
  entries: BundleEntry[];
}

/**
 * Read an uploaded tarball (plain or gzip), re-pack it canonically (so the digest is the
 * same as the agent computes from the unpacked files), and validate `insitu.json`: the
 * schema, and that the entry (and OpenAPI document) are files in the bundle — an
 * executable one for the `command` runtime.
 */
export async function inspectBundle(
  bytes: Buffer,
  limits: { maxBytes: number; maxEntries: number },
): Promise<InspectedBundle> {
  const entries = await readBundleTar(bytes, limits);
  const byPath = new Map(entries.map((e) => [e.path, e]));
  const manifestEntry = byPath.get('insitu.json');
  if (!manifestEntry || manifestEntry.kind !== 'file')
    throw new InsituError('INSITU_BUNDLE_INVALID', 'the bundle has no insitu.json at its root');
  let parsed: unknown;
  try {
    parsed = JSON.parse((manifestEntry.data ?? Buffer.alloc(0)).toString('utf8'));
  } catch (error) {
    throw new InsituError('INSITU_BUNDLE_INVALID', `insitu.json is not valid JSON: ${(error as Error).message}`);
  }
  const manifest = parseAppManifest(parsed, { what: 'insitu.json', code: 'INSITU_BUNDLE_INVALID' });
  for (const [what, path] of [
    ['entry', manifest.entry],
    ['openapi', manifest.openapi],
  ] as const) {
    if (path === undefined) continue;
    const entry = byPath.get(path);
    if (entry?.kind !== 'file')
      throw new InsituError('INSITU_BUNDLE_INVALID', `insitu.json: ${what} ${path} is not a file in the bundle`);
    if (what === 'entry' && manifest.runtime === 'command' && !entry.executable) {
      throw new InsituError(
        'INSITU_BUNDLE_INVALID',
        `insitu.json: entry ${path} is not executable (runtime "command")`,
      );
    }
  }
  const canonical = canonicalTar(entries);
  const digest = createHash('sha256').update(canonical).digest('hex');
  const files = entries
    .filter((e) => e.kind === 'file')
    .map((e) => ({
      path: e.path,
      size: e.data?.length ?? 0,
      sha256: createHash('sha256')
        .update(e.data ?? Buffer.alloc(0))
        .digest('hex'),
    }))
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { canonical, digest, manifest, files, entries };
}

/** The file's text if it looks like text (valid UTF-8, no NUL) and is small enough to show a reviewer. */
export function reviewText(data: Buffer, maxBytes = 256 * 1024): string | undefined {
  if (data.length > maxBytes || data.includes(0)) return undefined;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(data);
  } catch {
    return undefined;
  }
}
