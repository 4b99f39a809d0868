import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const RESULT_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

/**
 * The arguments the job was submitted with (`POST /api/v1/jobs {args}`), parsed from
 * `INSITU_JOB_ARGS`; `null` when none were given or this is not a job.
 *
 * @example const { year } = jobArgs<{ year: number }>() ?? { year: 2025 };
 */
export function jobArgs<T = unknown>(): T | null {
  const text = process.env.INSITU_JOB_ARGS;
  if (!text) return null;
  return JSON.parse(text) as T;
}

/**
 * Write one result file of a job into its output directory (`INSITU_OUTPUT_DIR`). An
 * object is written as JSON. What leaves the provider is what its result policy allows
 * (size, count, extensions); the agent checks after the job ends.
 *
 * @example await writeResult('totals.json', { total: 42 });
 */
export async function writeResult(name: string, data: string | Uint8Array | object): Promise<void> {
  const dir = process.env.INSITU_OUTPUT_DIR;
  if (!dir) throw new Error('INSITU_OUTPUT_DIR is not set: writeResult works inside a job');
  if (!RESULT_NAME.test(name))
    throw new Error(`result name ${JSON.stringify(name)}: letters, digits, ".", "_" and "-" only, no directories`);
  const bytes = typeof data === 'string' || data instanceof Uint8Array ? data : `${JSON.stringify(data)}\n`;
  await writeFile(join(dir, name), bytes, { flag: 'wx' });
}
