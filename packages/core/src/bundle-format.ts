import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import { Parser, type ReadEntry } from 'tar';
import { InsituError } from './errors.js';

/** One entry of an application bundle. */
export interface BundleEntry {
  /** Relative path, `/`-separated, no trailing slash. */
  path: string;
  kind: 'dir' | 'file' | 'symlink';
  executable: boolean;
  /** File content (files only). */
  data?: Buffer;
  /** Link target, relative and inside the bundle (symlinks only). */
  link?: string;
}

/** Bounds for reading an uploaded bundle. */
export interface BundleLimits {
  /** Largest total size of file contents. */
  maxBytes: number;
  /** Most entries. */
  maxEntries: number;
}

const BLOCK = 512;

function invalid(message: string): InsituError {
  return new InsituError('INSITU_BUNDLE_INVALID', message);
}

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, '0')}\0`;
}

function header(entry: BundleEntry): Buffer {
  const block = Buffer.alloc(BLOCK);
  let name = entry.kind === 'dir' ? `${entry.path}/` : entry.path;
  let prefix = '';
  if (Buffer.byteLength(name) > 100) {
    const cut = name.lastIndexOf('/', name.length - 2);
    prefix = cut > 0 ? name.slice(0, cut) : '';
    name = cut > 0 ? name.slice(cut + 1) : name;
    if (!prefix || Buffer.byteLength(prefix) > 155 || Buffer.byteLength(name) > 100)
      throw invalid(`${entry.path}: path too long for a bundle`);
  }
  if (entry.link !== undefined && Buffer.byteLength(entry.link) > 100)
    throw invalid(`${entry.path}: link target too long`);
  block.write(name, 0, 100, 'utf8');
  block.write(octal(entry.kind === 'file' && !entry.executable ? 0o644 : 0o755, 8), 100, 'ascii');
  block.write(octal(0, 8), 108, 'ascii');
  block.write(octal(0, 8), 116, 'ascii');
  block.write(octal(entry.kind === 'file' ? (entry.data?.length ?? 0) : 0, 12), 124, 'ascii');
  block.write(octal(0, 12), 136, 'ascii');
  block.write(entry.kind === 'dir' ? '5' : entry.kind === 'symlink' ? '2' : '0', 156, 'ascii');
  if (entry.link !== undefined) block.write(entry.link, 157, 100, 'utf8');
  block.write('ustar\0', 257, 'ascii');
  block.write('00', 263, 'ascii');
  block.write(prefix, 345, 155, 'utf8');
  block.fill(' ', 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  return block;
}

/**
 * The canonical tarball of a bundle: ustar, entries sorted by path (byte order), mode
 * 0644 or 0755 (only the executable bit is kept), owner 0, time 0, nothing else. The same
 * files give the same bytes everywhere, so its SHA-256 is the bundle's identity — what
 * providers approve and agents verify before they start anything.
 */
export function canonicalTar(entries: readonly BundleEntry[]): Buffer {
  const sorted = [...entries].sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
  const parts: Buffer[] = [];
  for (const entry of sorted) {
    parts.push(header(entry));
    if (entry.kind === 'file') {
      const data = entry.data ?? Buffer.alloc(0);
      parts.push(data);
      const pad = (BLOCK - (data.length % BLOCK)) % BLOCK;
      if (pad > 0) parts.push(Buffer.alloc(pad));
    }
  }
  parts.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(parts);
}

/** SHA-256 (hex) of the canonical tarball of these entries. */
export function bundleDigestOf(entries: readonly BundleEntry[]): string {
  return createHash('sha256').update(canonicalTar(entries)).digest('hex');
}

/** Check a path inside a bundle: relative, normalised, no `..`, no control characters. */
export function checkBundlePath(path: string): string {
  const trimmed = path.replace(/^\.\//, '').replace(/\/+$/, '');
  if (
    trimmed === '' ||
    trimmed.startsWith('/') ||
    /[\u0000-\u001f\u007f\\]/.test(trimmed) ||
    trimmed.split('/').some((part) => part === '' || part === '.' || part === '..') ||
    Buffer.byteLength(trimmed) > 255
  ) {
    throw invalid(`"${path.slice(0, 80)}" is not an allowed path in a bundle`);
  }
  return trimmed;
}

/**
 * Read the entries of an uploaded tarball (plain or gzip) in memory, within limits:
 * only files, directories and relative symbolic links that stay inside; no duplicate
 * paths. Anything else is `INSITU_BUNDLE_INVALID`; more than the limits is
 * `INSITU_BUNDLE_TOO_LARGE`.
 */
export async function readBundleTar(bytes: Buffer, limits: BundleLimits): Promise<BundleEntry[]> {
  const entries = new Map<string, BundleEntry>();
  let total = 0;
  let failure: InsituError | undefined;
  const fail = (error: InsituError) => {
    failure ??= error;
  };
  await new Promise<void>((resolve) => {
    const parser = new Parser({ strict: true });
    parser.on('entry', (entry: ReadEntry) => {
      if (failure) {
        entry.resume();
        return;
      }
      let path: string;
      try {
        path = checkBundlePath(entry.path);
      } catch (error) {
        fail(error as InsituError);
        entry.resume();
        return;
      }
      if (entries.size >= limits.maxEntries)
        fail(new InsituError('INSITU_BUNDLE_TOO_LARGE', `a bundle may hold at most ${limits.maxEntries} entries`));
      if (entries.has(path)) fail(invalid(`${path} appears twice in the tarball`));
      const executable = ((entry.mode ?? 0o644) & 0o111) !== 0;
      if (entry.type === 'Directory') {
        entries.set(path, { path, kind: 'dir', executable: true });
        entry.resume();
      } else if (entry.type === 'SymbolicLink') {
        const link = entry.linkpath ?? '';
        const target = posix.normalize(posix.join(posix.dirname(path), link));
        if (!link || posix.isAbsolute(link) || target === '..' || target.startsWith('../'))
          fail(invalid(`${path}: symbolic link to ${link} leaves the bundle`));
        entries.set(path, { path, kind: 'symlink', executable: false, link });
        entry.resume();
      } else if (entry.type === 'File' || entry.type === 'OldFile') {
        const chunks: Buffer[] = [];
        entry.on('data', (chunk: Buffer) => {
          total += chunk.length;
          if (total > limits.maxBytes)
            fail(new InsituError('INSITU_BUNDLE_TOO_LARGE', `bundle contents exceed ${limits.maxBytes} bytes`));
          else chunks.push(chunk);
        });
        entry.on('end', () => entries.set(path, { path, kind: 'file', executable, data: Buffer.concat(chunks) }));
      } else {
        fail(
          invalid(
            `${path}: only files, directories and relative symbolic links may be in a bundle (found ${entry.type})`,
          ),
        );
        entry.resume();
      }
    });
    parser.on('warn', (_code: string, message: string | Error) =>
      fail(invalid(`not a valid tarball: ${String(message instanceof Error ? message.message : message)}`)),
    );
    parser.on('error', (error: Error) => {
      fail(invalid(`not a valid tarball: ${error.message}`));
      resolve();
    });
    parser.on('end', () => resolve());
    parser.on('close', () => resolve());
    parser.end(bytes);
  });
  if (failure) throw failure;
  if (entries.size === 0) throw invalid('the tarball is empty or not a tarball');
  // Directories implied by file paths are part of the canonical form only when present; add them so equal trees give equal digests.
  for (const entry of [...entries.values()]) {
    const parts = entry.path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (!entries.has(dir)) entries.set(dir, { path: dir, kind: 'dir', executable: true });
    }
  }
  return [...entries.values()];
}
