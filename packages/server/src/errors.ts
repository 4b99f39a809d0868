import { InsituError, type ErrorCode, type InsituErrorOptions } from '@insitu/core';
import type { FastifyError } from 'fastify';

interface ValidationEntry {
  instancePath?: string;
  message?: string;
  keyword?: string;
  params?: Record<string, unknown>;
}

/** `"a", "b" or "c"`: the values a field allows, as JSON, for a message a user can act on. */
function listValues(values: readonly unknown[]): string {
  const shown = values.map((v) => JSON.stringify(v));
  return shown.length > 1 ? `${shown.slice(0, -1).join(', ')} or ${shown.at(-1)}` : (shown[0] ?? '');
}

function describeValidation(error: FastifyError): {
  message: string;
  issues: Array<{ path: string; message: string }>;
} {
  const context = (error as FastifyError & { validationContext?: string }).validationContext ?? 'request';
  const all = (error.validation ?? []) as ValidationEntry[];
  // A union of constants fails once per member ("must be equal to constant") and once as
  // a whole ("must match a schema in anyOf"): say it once, naming the values it allows.
  const constants = new Map<string, unknown[]>();
  for (const entry of all) {
    if (entry.keyword === 'const') {
      const list = constants.get(entry.instancePath ?? '') ?? [];
      list.push(entry.params?.allowedValue);
      constants.set(entry.instancePath ?? '', list);
    }
  }
  const entries = all.filter(
    (entry) =>
      !(entry.keyword === 'const' && all.some((e) => e.keyword === 'anyOf' && e.instancePath === entry.instancePath)),
  );
  const issues = entries.map((entry) => {
    const base = (entry.instancePath ?? '').replace(/^\//, '').replace(/\//g, '.');
    if (entry.keyword === 'additionalProperties' && typeof entry.params?.additionalProperty === 'string') {
      const key = entry.params.additionalProperty;
      return { path: base ? `${base}.${key}` : key, message: 'unknown field' };
    }
    if (entry.keyword === 'required' && typeof entry.params?.missingProperty === 'string') {
      const key = entry.params.missingProperty;
      return { path: base ? `${base}.${key}` : key, message: 'is required' };
    }
    if (entry.keyword === 'enum' && Array.isArray(entry.params?.allowedValues)) {
      return { path: base, message: `must be one of ${listValues(entry.params.allowedValues)}` };
    }
    const members = constants.get(entry.instancePath ?? '');
    if (entry.keyword === 'anyOf' && members) return { path: base, message: `must be one of ${listValues(members)}` };
    return { path: base, message: entry.message ?? 'is invalid' };
  });
  const text = issues.map((i) => (i.path ? `${context}.${i.path} ${i.message}` : `${context} ${i.message}`)).join('; ');
  return { message: `invalid ${context}: ${text || error.message}`, issues };
}

const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'INSITU_BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'INSITU_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'INSITU_VALIDATION',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'INSITU_BAD_JSON',
  FST_ERR_CTP_INVALID_JSON_BODY: 'INSITU_BAD_JSON',
  FST_ERR_BAD_URL: 'INSITU_BAD_PATH',
  FST_ERR_MAX_PARAM_LENGTH: 'INSITU_PATH_TOO_LONG',
};

/** Our message for a router error (Fastify's repeats the whole path, which may be kilobytes). */
const FASTIFY_MESSAGES: Record<string, string> = {
  FST_ERR_BAD_URL: 'the path is not valid percent-encoded UTF-8',
  FST_ERR_MAX_PARAM_LENGTH: 'a path parameter is longer than 200 characters',
};

/**
 * Map whatever a route or Fastify threw onto an {@link InsituError}: validation
 * failures, malformed JSON, oversize and unsupported bodies keep their 4xx meaning;
 * anything unknown becomes `INSITU_INTERNAL` and keeps its cause for the log.
 */
export function toApiError(error: unknown): InsituError {
  if (error instanceof InsituError) return error;
  const fastifyError = error as FastifyError;
  if (fastifyError.validation) {
    const { message, issues } = describeValidation(fastifyError);
    return new InsituError('INSITU_VALIDATION', message, { details: { issues }, cause: error });
  }
  const mapped = fastifyError.code ? FASTIFY_CODES[fastifyError.code] : undefined;
  if (mapped)
    return new InsituError(mapped, FASTIFY_MESSAGES[fastifyError.code] ?? fastifyError.message, { cause: error });
  if (error instanceof SyntaxError || (fastifyError.statusCode === 400 && /JSON/i.test(fastifyError.message))) {
    return new InsituError('INSITU_BAD_JSON', `request body is not valid JSON: ${fastifyError.message}`, {
      cause: error,
    });
  }
  if (typeof fastifyError.statusCode === 'number' && fastifyError.statusCode >= 400 && fastifyError.statusCode < 500) {
    return new InsituError('INSITU_VALIDATION', fastifyError.message, {
      status: fastifyError.statusCode,
      cause: error,
    });
  }
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && DATABASE_GONE.has(code)) {
    // The platform database went away under a request (a failover, a restart): the caller
    // gets the coded 503 it can retry, not an internal error.
    return new InsituError('INSITU_DATABASE_UNAVAILABLE', 'the platform database is not answering; retry', {
      cause: error,
    });
  }
  return new InsituError('INSITU_INTERNAL', 'internal error', { cause: error });
}

/**
 * Driver error codes (mysql2, Node's sockets) that mean "the database is not reachable or
 * not writable right now", never a bug: connection refused, reset, lost or timed out, and
 * `read_only` fencing a write during a failover (ER_OPTION_PREVENTS_STATEMENT).
 */
const DATABASE_GONE = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'ER_OPTION_PREVENTS_STATEMENT',
  'ER_SERVER_SHUTDOWN',
  'ER_CON_COUNT_ERROR',
]);

/** What the API looks up by reference, and the code a missing one answers with (404). */
const NOT_FOUND_CODES = {
  organisation: 'INSITU_ORG_NOT_FOUND',
  application: 'INSITU_APP_NOT_FOUND',
  version: 'INSITU_VERSION_NOT_FOUND',
  service: 'INSITU_SERVICE_NOT_FOUND',
  dataset: 'INSITU_DATASET_NOT_FOUND',
  provider: 'INSITU_PROVIDER_NOT_FOUND',
  approval: 'INSITU_APPROVAL_NOT_FOUND',
  deployment: 'INSITU_DEPLOYMENT_NOT_FOUND',
  'API key': 'INSITU_KEY_NOT_FOUND',
} as const satisfies Record<string, ErrorCode>;

/** A kind of thing {@link notFound} can name. */
export type NotFoundKind = keyof typeof NOT_FOUND_CODES;

/**
 * The 404 of a missing (or invisible to this principal) `kind`: its own code, and the
 * message `no <kind> <ref>`. `ref` may carry the scope, e.g. `${name} at this provider`.
 *
 * @example throw notFound('dataset', id);
 */
export function notFound(kind: NotFoundKind, ref: string, options?: InsituErrorOptions): InsituError {
  return new InsituError(NOT_FOUND_CODES[kind], `no ${kind} ${ref}`, options);
}
