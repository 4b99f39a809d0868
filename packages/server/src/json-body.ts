import { InsituError } from '@insitu/core';

/** Keys that would reach an object's prototype if some later code copied the body with `Object.assign` or a merge. */
function refuseProtoKeys(key: string, value: unknown): unknown {
  if (
    key === '__proto__' ||
    (key === 'constructor' && typeof value === 'object' && value !== null && Object.hasOwn(value, 'prototype'))
  ) {
    const path = key === '__proto__' ? '__proto__' : 'constructor.prototype';
    throw new InsituError(
      'INSITU_VALIDATION',
      `invalid body: body.${path} unknown field (a key that names an object prototype is never accepted)`,
      {
        details: { issues: [{ path, message: 'unknown field' }] },
      },
    );
  }
  return value;
}

/** A body that may hold such a key, spelled out or with escapes (`"\u005f_proto__"`). */
const MAY_NAME_A_PROTOTYPE = /__proto__|constructor|\\u/;

/**
 * The API's JSON body parser (Fastify's, with our answers): malformed JSON is
 * `INSITU_BAD_JSON` with the parser's reason; a `__proto__` key (or `constructor.prototype`)
 * is refused like any other unknown field (`INSITU_VALIDATION`), before any code sees the
 * object, so no prototype can change. Only bodies that contain such a name (or a `\\u`
 * escape that could spell one) pay for the key-by-key check.
 */
export function parseJsonBody(text: string): unknown {
  if (text.length === 0) throw new InsituError('INSITU_BAD_JSON', 'the request body is empty; send a JSON value');
  try {
    return MAY_NAME_A_PROTOTYPE.test(text) ? JSON.parse(text, refuseProtoKeys) : JSON.parse(text);
  } catch (error) {
    if (error instanceof InsituError) throw error;
    throw new InsituError('INSITU_BAD_JSON', `request body is not valid JSON: ${(error as Error).message}`, {
      cause: error,
    });
  }
}
