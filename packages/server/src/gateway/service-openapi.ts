import { ErrorBodySchema, type AppManifest } from '@insitu/core';
import type { ServiceRow } from '@insitu/store';

type ServiceFacts = Pick<
  ServiceRow,
  'name' | 'description' | 'access' | 'rate_per_second' | 'burst' | 'daily_quota' | 'max_request_bytes' | 'timeout_ms'
>;

const WITH_BODY = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const PARAMETER = /\{([^{}/]+)\}/g;

function errorResponse(description: string, headers?: Record<string, unknown>): Record<string, unknown> {
  return {
    description,
    ...(headers ? { headers } : {}),
    content: { 'application/json': { schema: { $ref: '#/components/schemas/ApiError' } } },
  };
}

const REQUEST_ID = {
  description: 'The request id of this call (also in every error body); quote it when asking the service owner',
  schema: { type: 'string' },
};

/**
 * The OpenAPI document of one service, generated from its running version's manifest
 * (`endpoints`): one operation per endpoint with its path `parameters` (every `{name}`
 * of the path), a request body where the method takes one (forwarded to the application
 * as sent, up to the service's size cap), the application's answer, and the answers the
 * gateway itself gives before or instead of the application's (401 without a valid key,
 * 403 without access, 429 over the rate or quota, 413, 503, 504), all with the error
 * body every Insitu error has. Served at `/s/{service}/openapi.json`.
 */
export function serviceOpenApi(
  service: ServiceFacts,
  manifest: AppManifest,
  version: string,
  baseUrl: string,
): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const endpoint of manifest.endpoints ?? []) {
    const entry = (paths[endpoint.path] ??= {});
    const method = endpoint.method.toUpperCase();
    const names = [...new Set([...endpoint.path.matchAll(PARAMETER)].map((m) => m[1] ?? ''))];
    const responses: Record<string, unknown> = {
      default: {
        description: "The application's answer (status, headers and body are the application's)",
        headers: {
          'insitu-request-id': REQUEST_ID,
          'insitu-service-version': { description: 'The version that answered', schema: { type: 'string' } },
        },
      },
      '401': errorResponse('No API key, or one that is unknown, expired or revoked (INSITU_KEY_INVALID)', {
        'www-authenticate': { schema: { type: 'string' } },
      }),
      '403': errorResponse(
        "The key is not scoped to this service, or the service's owner has not granted the key's organisation access (INSITU_KEY_FORBIDDEN)",
      ),
      '429': errorResponse(
        `Over the rate limit of ${service.rate_per_second}/s (burst ${service.burst}) (INSITU_RATE_LIMITED) or the daily quota of ${service.daily_quota} calls (INSITU_QUOTA_EXCEEDED)`,
        { 'retry-after': { description: 'Seconds until a call may succeed', schema: { type: 'integer' } } },
      ),
      '503': errorResponse(
        'No running version, or no agent can serve it right now (INSITU_SERVICE_UNAVAILABLE, INSITU_TUNNEL_NO_ROUTE)',
      ),
      '504': errorResponse(`The application did not answer within ${service.timeout_ms} ms (INSITU_GATEWAY_TIMEOUT)`),
    };
    if (WITH_BODY.has(method))
      responses['413'] = errorResponse(`The body is over ${service.max_request_bytes} bytes (INSITU_BODY_TOO_LARGE)`);
    entry[method.toLowerCase()] = {
      summary: endpoint.description ?? '',
      ...(names.length > 0
        ? { parameters: names.map((name) => ({ name, in: 'path', required: true, schema: { type: 'string' } })) }
        : {}),
      ...(WITH_BODY.has(method)
        ? {
            requestBody: {
              required: false,
              description: `Forwarded to the application as sent, at most ${service.max_request_bytes} bytes`,
              content: { '*/*': { schema: {} } },
            },
          }
        : {}),
      responses,
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: service.name, version, description: service.description },
    servers: [{ url: `${baseUrl}/s/${service.name}` }],
    components: {
      securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'An Insitu API key (isu_key_…)' } },
      schemas: { ApiError: JSON.parse(JSON.stringify(ErrorBodySchema)) as unknown },
    },
    security: [{ apiKey: [] }],
    paths,
  };
}
