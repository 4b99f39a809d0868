import { randomBytes } from 'node:crypto';
import type { DataValue } from '@insitu/sdk';
import type { PlannedNoise } from '../sources/data-source.js';
import { canonicalDecimal } from '../sources/values.js';

/** A uniform double in (0, 1) from the system's secure random source (53 bits). */
function uniform(): number {
  for (;;) {
    const bytes = randomBytes(8);
    const x = Number(bytes.readBigUInt64BE() >> 11n) / 2 ** 53;
    if (x > 0) return x;
  }
}

/** One draw of Laplace(0, scale): the difference of two exponentials. */
export function laplace(scale: number): number {
  return scale * (Math.log(uniform()) - Math.log(uniform()));
}

/** Add the planned noise to one answer row (grouped: keys first, then aggregates). */
export function noisyRow(row: DataValue[], noise: PlannedNoise): DataValue[] {
  const out = [...row];
  for (const column of noise.columns) {
    const value = out[column.index];
    // An empty sum stays null: that a group exists is already part of the answer.
    if (value === null || value === undefined) continue;
    let noised = Number(value) + laplace(column.scale);
    if (column.nonNegative) noised = Math.max(0, noised);
    if (column.type === 'integer') out[column.index] = Math.round(noised);
    else if (column.type === 'decimal') out[column.index] = canonicalDecimal(Number(noised.toFixed(6)));
    else out[column.index] = noised;
  }
  return out;
}
