import { closest, distance } from 'fastest-levenshtein';

/**
 * The candidate closest to `input` when it is close enough to be a likely typo
 * (edit distance at most a third of its length, at least 2), else undefined.
 *
 * @example suggest('datadir', ['dataDir', 'listen']) // 'dataDir'
 */
export function suggest(input: string, candidates: readonly string[]): string | undefined {
  if (candidates.length === 0) return undefined;
  const lowered = candidates.map((c) => c.toLowerCase());
  const best = closest(input.toLowerCase(), lowered);
  const index = lowered.indexOf(best);
  const limit = Math.max(2, Math.floor(input.length / 3));
  return distance(input.toLowerCase(), best) <= limit ? candidates[index] : undefined;
}
