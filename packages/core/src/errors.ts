import { ERROR_CODES, isErrorCode, type ErrorCode } from './error-codes.js';

const BRAND = Symbol.for('insitu.error');

/** Options for {@link InsituError}. */
export interface InsituErrorOptions {
  /** Structured details a caller can act on (never secrets). */
  details?: unknown;
  cause?: unknown;
  /** Override the status from the code table (rarely needed). */
  status?: number;
  /** Extra response headers, e.g. `Retry-After`. */
  headers?: Record<string, string>;
}

/**
 * The one error class of Insitu. Its `code` is stable and maps to an HTTP status.
 * Errors with a status below 500 are user errors: answered and logged at info.
 * Branded with `Symbol.for` so `instanceof` works across copies of this package.
 *
 * @example
 * throw new InsituError('INSITU_DATASET_NOT_FOUND', `no dataset ${id}`);
 */
export class InsituError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: unknown;
  readonly headers: Record<string, string> | undefined;

  constructor(code: ErrorCode, message: string, options: InsituErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'InsituError';
    this.code = code;
    this.status = options.status ?? ERROR_CODES[code].status;
    this.details = options.details;
    this.headers = options.headers;
    Object.defineProperty(this, BRAND, { value: true });
  }

  /** A user error is the caller's to fix; anything else is an incident. */
  get isUserError(): boolean {
    return this.status < 500;
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
  }
}

/** True for an {@link InsituError} whose status is below 500. */
export function isUserError(error: unknown): error is InsituError {
  return error instanceof InsituError && error.isUserError;
}

/** Turn anything thrown into an {@link InsituError}, hiding internals of unknown errors. */
export function toInsituError(error: unknown): InsituError {
  if (error instanceof InsituError) return error;
  const code = (error as { code?: unknown } | null)?.code;
  if (isErrorCode(code)) return new InsituError(code, String((error as Error).message), { cause: error });
  return new InsituError('INSITU_INTERNAL', 'internal error', { cause: error });
}

/** The body of every error answer: `{ error: { code, message, requestId?, details? } }`. */
export interface ErrorBody {
  error: { code: string; message: string; requestId?: string; details?: unknown };
}

/**
 * The one builder of error bodies, used by every edge (REST API, gateway, tunnel, data
 * API, dbmanager admin, sandbox balancer) so the shape cannot drift. Details are included
 * only when given; an internal error's message is whatever the caller passes (pass
 * `toInsituError(e)`, which already hides internals).
 *
 * @example errorBody(new InsituError('INSITU_NOT_FOUND', 'no such key'), request.id)
 */
export function errorBody(error: { code: string; message: string; details?: unknown }, requestId?: string): ErrorBody {
  const body: ErrorBody['error'] = { code: error.code, message: error.message };
  if (requestId !== undefined) body.requestId = requestId;
  if (error.details !== undefined) body.details = error.details;
  return { error: body };
}

/** {@link errorBody} as JSON text, for raw `http` responses. */
export function errorJson(error: { code: string; message: string; details?: unknown }, requestId?: string): string {
  return JSON.stringify(errorBody(error, requestId));
}
