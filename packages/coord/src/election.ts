import { InsituError } from '@insitu/core';
import type { KvEntry } from './engine.js';

export const ELECTION_PREFIX = '_election/';
/** Leadership ends on our side after this fraction of the TTL without a keep-alive. */
export const LEADER_DEADLINE_FRACTION = 2 / 3;
export const MIN_TTL_MS = 1000;

export function notLeader(message: string): InsituError {
  return new InsituError('INSITU_COORD_NOT_LEADER', message);
}

export function electionPrefix(election: string): string {
  if (!/^[A-Za-z0-9._-]{1,128}$/.test(election)) {
    throw new InsituError(
      'INSITU_VALIDATION',
      `election name "${election}" must be 1-128 letters, digits, dots, dashes or underscores`,
    );
  }
  return `${ELECTION_PREFIX}${election}/`;
}

export function lowest(entries: readonly KvEntry[]): KvEntry | undefined {
  let best: KvEntry | undefined;
  for (const entry of entries) if (!best || entry.createRevision < best.createRevision) best = entry;
  return best;
}
