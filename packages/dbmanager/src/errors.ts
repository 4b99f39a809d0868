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

/** True for {@link notLeader}'s error: a step refused because this manager was deposed mid-way. */
export function isNotLeader(error: unknown): boolean {
  return error instanceof InsituError && error.code === 'INSITU_DBMANAGER_NOT_LEADER';
}
