import { InsituError, type ErrorCode } from '@insitu/core';
import type { FastifyError } from 'fastify';

interface ValidationEntry {
  instancePath?: string;
  message?: string;
  keyword?: string;
  params?: Record<string, unknown>;
}

function describeValidation(error: FastifyError): { message: string; issues: Array<{ path: string; message: string }> } {
  const context = (error as FastifyError & { validationContext?: string }).validationContext ?? 'request';
  const entries = (error.validation ?? []) as ValidationEntry[];
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
  if (mapped) return new InsituError(mapped, FASTIFY_MESSAGES[fastifyError.code] ?? fastifyError.message, { cause: error });
  if (error instanceof SyntaxError || (fastifyError.statusCode === 400 && /JSON|prototype|constructor/i.test(fastifyError.message))) {
    return new InsituError('INSITU_BAD_JSON', `request body is not valid JSON: ${fastifyError.message}`, { cause: error });
  }
  if (typeof fastifyError.statusCode === 'number' && fastifyError.statusCode >= 400 && fastifyError.statusCode < 500) {
    return new InsituError('INSITU_VALIDATION', fastifyError.message, { status: fastifyError.statusCode, cause: error });
  }
  return new InsituError('INSITU_INTERNAL', 'internal error', { cause: error });
}
