import { createHash } from 'node:crypto';
import { cp, lstat, mkdir, mkdtemp, readFile, readdir, readlink, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, posix, relative } from 'node:path';
import { InsituError, canonicalTar, parseAppManifest, type AppManifest, type BundleEntry } from '@insitu/core';
import * as tar from 'tar';
import { bundleInvalid } from '../errors.js';

/** The manifest file at the root of every bundle. */
export const MANIFEST_FILE = 'insitu.json';

interface Entry {
  path: string;
  kind: 'dir' | 'file' | 'symlink';
  executable: boolean;
  size: number;
  source: string;
  link?: string;
}

function invalid(message: string): InsituError {
  return bundleInvalid(message);
}

/** Every entry below `root`, sorted by path (byte order), symlinks checked to stay inside. */
async function walk(root: string): Promise<Entry[]> {
  const out: Entry[] = [];
  async function visit(dir: string): Promise<void> {
    for (const name of await readdir(dir)) {
      const full = join(dir, name);
      const path = relative(root, full).split('\\').join('/');
      const info = await lstat(full);
      if (info.isDirectory()) {
        out.push({ path, kind: 'dir', executable: true, size: 0, source: full });
        await visit(full);
      } else if (info.isFile()) {
        out.push({ path, kind: 'file', executable: (info.mode & 0o111) !== 0, size: info.size, source: full });
      } else if (info.isSymbolicLink()) {
        const link = await readlink(full);
        const target = posix.normalize(posix.join(posix.dirname(path), link));
        if (posix.isAbsolute(link) || target === '..' || target.startsWith('../'))
          throw invalid(`${path}: symbolic link to ${link} leaves the bundle`);
        out.push({ path, kind: 'symlink', executable: false, size: 0, source: full, link });
      } else {
        throw invalid(`${path}: only files, directories and relative symbolic links may be in a bundle`);
      }
    }
  }
  await visit(root);
  return out.sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
}

/**
 * The canonical tarball of a bundle directory: ustar, entries sorted by path, mode 0644
 * or 0755 (executable bit kept), owner 0, time 0, no other metadata. The same files give
 * the same bytes on every machine, so its sha256 is the bundle's identity.
 */
export async function canonicalTarball(dir: string): Promise<Buffer> {
  const entries: BundleEntry[] = [];
  for (const entry of await walk(dir)) {
    if (entry.kind !== 'file') {
      entries.push({
        path: entry.path,
        kind: entry.kind,
        executable: entry.executable,
        ...(entry.link !== undefined ? { link: entry.link } : {}),
      });
      continue;
    }
    const data = await readFile(entry.source);
    if (data.length !== entry.size) throw invalid(`${entry.path} changed while the bundle was read`);
    entries.push({ path: entry.path, kind: 'file', executable: entry.executable, data });
  }
  // The format itself (ustar, sorted, modes, zero owner and time) is core's, shared with the platform.
  return canonicalTar(entries);
}

/** sha256 (hex) of the canonical tarball of a bundle directory. */
export async function bundleDigest(dir: string): Promise<string> {
  return createHash('sha256')
    .update(await canonicalTarball(dir))
    .digest('hex');
}

/** `sha256:ABC…` or `abc…` → lower-case hex; anything else is refused. */
export function normaliseDigest(digest: string): string {
  const hex = digest.replace(/^sha256:/i, '').toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex)) throw invalid(`"${digest}" is not a sha256 digest`);
  return hex;
}

/** Read and validate `insitu.json` of an unpacked bundle; the entry (and OpenAPI document) must exist. */
export async function readManifest(dir: string): Promise<AppManifest> {
  let text: string;
  try {
    text = await readFile(join(dir, MANIFEST_FILE), 'utf8');
  } catch {
    throw invalid(`the bundle has no ${MANIFEST_FILE} at its root`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw invalid(`${MANIFEST_FILE} is not valid JSON: ${(error as Error).message}`);
  }
  const manifest = parseAppManifest(parsed, { what: MANIFEST_FILE, code: 'INSITU_BUNDLE_INVALID' });
  for (const [what, path] of [
    ['entry', manifest.entry],
    ['openapi', manifest.openapi],
  ] as const) {
    if (path === undefined) continue;
    const info = await stat(join(dir, path)).catch(() => undefined);
    if (!info?.isFile()) throw invalid(`${MANIFEST_FILE}: ${what} ${path} is not a file in the bundle`);
    if (what === 'entry' && manifest.runtime === 'command' && (info.mode & 0o111) === 0)
      throw invalid(`${MANIFEST_FILE}: entry ${path} is not executable (runtime "command")`);
  }
  return manifest;
}

/** Unpack a bundle (a directory or a tarball, gzipped or not) into `target`, refusing links and special files. */
export async function unpackBundle(source: string, target: string): Promise<void> {
  const info = await stat(source).catch(() => undefined);
  if (!info) throw invalid(`bundle ${source} does not exist`);
  await mkdir(target, { recursive: true, mode: 0o755 });
  if (info.isDirectory()) {
    await cp(source, target, { recursive: true, verbatimSymlinks: true });
    return;
  }
  const refused: string[] = [];
  try {
    await tar.x({
      file: source,
      cwd: target,
      strict: true,
      preserveOwner: false,
      filter: (path, entry) => {
        const type = (entry as { type?: string }).type;
        const ok = type === 'File' || type === 'OldFile' || type === 'Directory' || type === 'SymbolicLink';
        if (!ok) refused.push(path);
        return ok;
      },
    });
  } catch (error) {
    throw invalid(`bundle ${source} is not a readable tarball: ${(error as Error).message}`);
  }
  if (refused.length > 0)
    throw invalid(
      `bundle ${source} holds entries that are not files, directories or symbolic links: ${refused.slice(0, 5).join(', ')}`,
    );
}

/**
 * Make a verified copy of a bundle under `cacheDir/<digest>`: unpack it, compute the digest
 * of its canonical tarball, and refuse it with `INSITU_BUNDLE_DIGEST_MISMATCH` unless it is
 * the `expected` one.
 */
export async function installBundle(
  source: string,
  expected: string,
  cacheDir: string,
): Promise<{ dir: string; manifest: AppManifest }> {
  const digest = normaliseDigest(expected);
  const dir = join(cacheDir, digest);
  await mkdir(cacheDir, { recursive: true, mode: 0o755 });
  const staging = await mkdtemp(join(cacheDir, '.staging-'));
  try {
    const unpacked = join(staging, 'bundle');
    await unpackBundle(source, unpacked);
    const actual = await bundleDigest(unpacked);
    if (actual !== digest) {
      throw new InsituError(
        'INSITU_BUNDLE_DIGEST_MISMATCH',
        `bundle digest is sha256:${actual}, but sha256:${digest} was approved; refusing to start it`,
        {
          details: { expected: digest, actual },
        },
      );
    }
    const manifest = await readManifest(unpacked);
    try {
      await rename(unpacked, dir);
    } catch (error) {
      // Another installation of the same digest finished first: its copy is as good as ours.
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw error;
    }
    return { dir, manifest };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** A bundle already installed (verified) under `cacheDir`, if it is there. */
export async function installedBundle(
  expected: string,
  cacheDir: string,
): Promise<{ dir: string; manifest: AppManifest } | undefined> {
  const dir = join(cacheDir, normaliseDigest(expected));
  if (!(await stat(dir).catch(() => undefined))) return undefined;
  return { dir, manifest: await readManifest(dir) };
}

/** Write the canonical tarball of `dir` to `file` (to submit or ship a bundle); returns its sha256. */
export async function packBundle(dir: string, file: string): Promise<string> {
  const data = await canonicalTarball(dir);
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, data);
  return createHash('sha256').update(data).digest('hex');
}
