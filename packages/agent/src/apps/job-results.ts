import { constants } from 'node:fs';
import { lstat, open, readdir } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { RESULT_NAME_PATTERN, type JobResultPolicy } from '@insitu/core';

/** A result file the policy let out. */
export interface JobResultFile {
  name: string;
  data: Buffer;
}

const NAME = new RegExp(RESULT_NAME_PATTERN);

/**
 * Read what a job left in its output directory and check it against the provider's
 * result policy: only regular files directly in the directory (a symbolic link, a
 * directory or a device refuses the whole result; nothing is followed), names of the
 * platform's shape, allowed extensions, and the caps on count, per-file and total size.
 * The first breach refuses everything, with the reason in words; nothing is read past a cap.
 */
export async function collectResults(
  dir: string,
  policy: Readonly<JobResultPolicy>,
): Promise<{ ok: true; files: JobResultFile[] } | { ok: false; reason: string }> {
  const names = (await readdir(dir)).sort();
  if (names.length > policy.maxFiles)
    return { ok: false, reason: `${names.length} result files; the provider allows at most ${policy.maxFiles}` };
  const files: JobResultFile[] = [];
  let total = 0;
  for (const name of names) {
    if (!NAME.test(name))
      return { ok: false, reason: `result ${JSON.stringify(name.slice(0, 80))}: not a valid result file name` };
    const extension = extname(name).slice(1).toLowerCase();
    if (!policy.extensions.includes(extension))
      return {
        ok: false,
        reason: `result ${name}: extension "${extension}" is not allowed (allowed: ${policy.extensions.join(', ')})`,
      };
    const path = join(dir, name);
    const info = await lstat(path);
    if (!info.isFile()) return { ok: false, reason: `result ${name}: not a regular file` };
    if (info.size > policy.maxFileBytes)
      return {
        ok: false,
        reason: `result ${name}: ${info.size} bytes; the provider allows ${policy.maxFileBytes} per file`,
      };
    total += info.size;
    if (total > policy.maxTotalBytes)
      return { ok: false, reason: `results exceed ${policy.maxTotalBytes} bytes in total, the provider's cap` };
    // O_NOFOLLOW: the job may have swapped the file for a link since lstat.
    const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      const data = Buffer.alloc(info.size);
      const { bytesRead } = await handle.read(data, 0, info.size, 0);
      const more = await handle.read(Buffer.alloc(1), 0, 1, info.size);
      if (bytesRead !== info.size || more.bytesRead !== 0)
        return { ok: false, reason: `result ${name}: changed while it was read` };
      files.push({ name, data });
    } finally {
      await handle.close();
    }
  }
  return { ok: true, files };
}
