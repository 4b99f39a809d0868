import { InsituError } from '@insitu/core';

// The store's errors, over core's code table (packages/core/src/error-codes.ts).

/** `INSITU_DATABASE_UNAVAILABLE`: the platform database cannot be opened, reached or migrated. */
export function databaseUnavailable(message: string, cause?: unknown): InsituError {
  return new InsituError('INSITU_DATABASE_UNAVAILABLE', message, cause === undefined ? undefined : { cause });
}

/** `INSITU_CONFIG_INVALID`: a `database.url` the store cannot use; the message says the form it takes. */
export function databaseUrlInvalid(message: string): InsituError {
  return new InsituError('INSITU_CONFIG_INVALID', message);
}

/** `INSITU_PROVIDER_NOT_FOUND` (404): metadata for a provider that does not exist. */
export function providerNotFound(providerId: string): InsituError {
  return new InsituError('INSITU_PROVIDER_NOT_FOUND', `no provider ${providerId}`);
}
