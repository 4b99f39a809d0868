import { ErrorBodySchema } from '@insitu/core';
import Type, { type Static } from 'typebox';
import type { RouteOptions } from 'fastify';
import type { App } from './app.js';

/** The shared component every error response refers to: `#/components/schemas/ApiError`. */
export const API_ERROR_ID = 'ApiError';

/** What each error status means on this API (the description of the documented response). */
const ERROR_MEANINGS: Record<number, string> = {
  400: 'Invalid input: a field, query or path that fails validation, malformed JSON, or a broken percent-escape (INSITU_VALIDATION, INSITU_BAD_JSON, INSITU_BAD_PATH, …)',
  401: 'No credential, or one that is unknown, expired or revoked (INSITU_UNAUTHENTICATED, …)',
  403: 'The credential may not do this: a missing role, or a principal of the wrong kind (INSITU_FORBIDDEN, …)',
  404: 'Not found, or not visible to the caller, which answers alike (INSITU_*_NOT_FOUND)',
  409: 'Conflicts with the current state: a name in use, a decision already made, a version not approved (INSITU_CONFLICT, …)',
  413: 'The request body is larger than allowed (INSITU_BODY_TOO_LARGE, INSITU_BUNDLE_TOO_LARGE)',
  414: 'A path parameter is longer than 200 characters (INSITU_PATH_TOO_LONG)',
  415: 'The body is not of a media type this endpoint accepts (INSITU_UNSUPPORTED_MEDIA_TYPE)',
  500: 'An internal error; the request id finds it in the log (INSITU_INTERNAL)',
  503: 'The platform database or coordination store cannot be reached right now (INSITU_DATABASE_UNAVAILABLE, INSITU_NOT_READY, …)',
};

/** A reference to the shared error body, for routes that document an error status themselves. */
export const ApiErrorRef = Type.Unsafe<Static<typeof ErrorBodySchema>>({ $ref: `${API_ERROR_ID}#` });

/** The documented answer of a route that answers 204: no body. */
export const NoContent = Type.Unsafe<void>({ type: 'null', description: 'No content' });

/** A documented binary answer (the handler sends a Buffer). */
export function Binary<T = Buffer>(mediaType: string, description: string) {
  return Type.Unsafe<T>({ type: 'string', contentMediaType: mediaType, description });
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Error statuses the handler itself answers besides those every route of its shape can (see {@link errorStatusesOf}). */
    errors?: readonly number[];
  }
}

/**
 * The error statuses a route can answer: every route 400 (a malformed path or input),
 * 500 and 503; routes behind a credential 401 and 403; routes with path parameters 404
 * and 414; routes that take a body 413 and 415; plus what the route declares in
 * `config.errors` (409 for conflicts, 404 for ids named in a body or query, …).
 */
export function errorStatusesOf(route: Pick<RouteOptions, 'method' | 'url' | 'config'>): number[] {
  const statuses = new Set<number>([400, 500, 503]);
  const config = (route.config ?? {}) as { auth?: string; errors?: readonly number[] };
  if ((config.auth ?? 'user') !== 'public') {
    statuses.add(401);
    statuses.add(403);
  }
  if (route.url.includes(':')) {
    statuses.add(404);
    statuses.add(414);
  }
  const methods = Array.isArray(route.method) ? route.method : [route.method];
  if (methods.some((m) => ['POST', 'PUT', 'PATCH', 'DELETE'].includes(m))) {
    statuses.add(413);
    statuses.add(415);
  }
  for (const status of config.errors ?? []) statuses.add(status);
  return [...statuses].sort((a, b) => a - b);
}

/** Routes as the router holds them (method and URL pattern), for tests that must cover each. */
export interface RouteEntry {
  method: string;
  url: string;
  hidden: boolean;
}

/**
 * Make the OpenAPI document true about errors: register the shared error body and, for
 * every documented route registered after this call, add each status of
 * {@link errorStatusesOf} that the route does not document itself as a reference to it.
 * Records every route in `routes`. Call before registering routes.
 */
export function documentErrorResponses(app: App, routes: RouteEntry[]): void {
  app.addSchema({ ...ErrorBodySchema, $id: API_ERROR_ID, title: API_ERROR_ID });
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const schema = route.schema as
      (Record<string, unknown> & { hide?: boolean; response?: Record<string, unknown> }) | undefined;
    for (const method of methods) routes.push({ method, url: route.url, hidden: Boolean(schema?.hide) });
    if (!schema || schema.hide) return;
    const response: Record<string, unknown> = { ...(schema.response ?? {}) };
    for (const status of errorStatusesOf(route)) {
      // Errors are JSON whatever the route's success produces (a tarball, metrics text).
      if (!(String(status) in response)) {
        response[String(status)] = {
          description: ERROR_MEANINGS[status] ?? 'Error',
          content: { 'application/json': { schema: { $ref: `${API_ERROR_ID}#` } } },
        };
      }
    }
    route.schema = { ...schema, response };
  });
}
