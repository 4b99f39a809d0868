import { InsituError } from '@insitu/core';

// The dbmanager's errors, over core's code table (packages/core/src/error-codes.ts).

/** `INSITU_DBMANAGER_NOT_LEADER`: manager `managerId` may not change the cluster (it is not, or no longer, elected). */
export function notLeader(managerId: string, what: string, details?: Record<string, unknown>): InsituError {
  return new InsituError('INSITU_DBMANAGER_NOT_LEADER', `manager ${managerId} ${what}`, details && { details });
}

/** `INSITU_CONFIG_INVALID`: the dbmanager config passes its schema but not a rule across fields. */
export function configInvalid(message: string): InsituError {
  return new InsituError('INSITU_CONFIG_INVALID', message);
}

/** True for {@link notLeader}'s error or coord's `INSITU_COORD_NOT_LEADER`: a step refused because this manager was deposed mid-way. */
export function isNotLeader(error: unknown): boolean {
  // Coord's own refusal (a fenced write after the leader key vanished) is the same fact. Not
  // recognising it made a manager deposed mid-failover undo the failover as if it had failed and
  // send a `failover-failed` alert that no leader ever resolved (3+2 bed, node loss).
  return (
    error instanceof InsituError &&
    (error.code === 'INSITU_DBMANAGER_NOT_LEADER' || error.code === 'INSITU_COORD_NOT_LEADER')
  );
}
