import type { InsituErrorOptions } from '@insitu/core';
// basics, not the whole of core: the CSV worker threads import these too.
import { InsituError } from '@insitu/core/basics';

// The agent's errors, over core's code table (packages/core/src/error-codes.ts): one factory per
// kind of failure, so a code and the shape of its message are written once.

/** `INSITU_CONFIG_INVALID`: the agent's config (or a file it names) passes no check; `message` says where. */
export function configInvalid(message: string, options?: InsituErrorOptions): InsituError {
  return new InsituError('INSITU_CONFIG_INVALID', message, options);
}

/**
 * `INSITU_DATA_SOURCE_UNAVAILABLE`: a data source cannot be read; the message names the source
 * when it is known: `source <name>: <message>`.
 *
 * @example throw dataSourceUnavailable(config.name, `cannot read ${path}: ENOENT`);
 */
export function dataSourceUnavailable(source: string | undefined, message: string, cause?: unknown): InsituError {
  return new InsituError(
    'INSITU_DATA_SOURCE_UNAVAILABLE',
    source === undefined ? message : `source ${source}: ${message}`,
    cause === undefined ? undefined : { cause },
  );
}

/** `INSITU_DATA_QUERY_INVALID` (400): a data query the agent will not run; `message` says what to change. */
export function queryInvalid(message: string): InsituError {
  return new InsituError('INSITU_DATA_QUERY_INVALID', message);
}

/** `INSITU_BUNDLE_INVALID`: an application bundle (or its manifest) the agent will not start. */
export function bundleInvalid(message: string, options?: InsituErrorOptions): InsituError {
  return new InsituError('INSITU_BUNDLE_INVALID', message, options);
}

/** `INSITU_APP_UNAVAILABLE` (503): no instance of the application can answer now. */
export function appUnavailable(message: string, options?: InsituErrorOptions): InsituError {
  return new InsituError('INSITU_APP_UNAVAILABLE', message, options);
}
