/**
 * @insitu/core/basics — the part of core a command line needs before it knows which
 * command runs: the error class and codes, the environment registry, log levels and the
 * version. It loads no logger, metrics, schema or tar library, so `insitu --help` starts
 * in a fraction of the time the full entry takes.
 */
export { ERROR_CODES, isErrorCode } from './error-codes.js';
export type { ErrorCode } from './error-codes.js';
export { InsituError, isUserError, toInsituError } from './errors.js';
export { ENV_VARS, checkEnv, readEnvVar } from './env-registry.js';
export { LOG_LEVELS } from './log-levels.js';
export type { LogLevel } from './log-levels.js';
export { VERSION } from './version.js';
