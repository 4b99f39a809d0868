import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Create a fresh, private (mode 0700) directory under `os.tmpdir()` whose name starts
 * with `prefix`.
 *
 * @example
 * const dir = await makeTempDir('insitu-store-test-'); // /tmp/insitu-store-test-Ab12Cd
 */
export async function makeTempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/**
 * Remove a directory and everything in it; a missing directory is not an error.
 *
 * @example
 * await removeDir(dir);
 */
export async function removeDir(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true, maxRetries: 5, retryDelay: 50 });
}
