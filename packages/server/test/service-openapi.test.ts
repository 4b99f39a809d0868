import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseAppManifest } from '@insitu/core';
import { serviceOpenApi } from '../src/gateway/service-openapi.js';

interface Operation {
  parameters?: Array<{ name: string; in: string; required: boolean }>;
  requestBody?: { content: Record<string, unknown> };
  responses: Record<
    string,
    { description: string; headers?: Record<string, unknown>; content?: Record<string, { schema: { $ref?: string } }> }
  >;
}

const service = {
  name: 'sales',
  description: 'Sales figures',
  access: 'restricted' as const,
  rate_per_second: 10,
  burst: 20,
  daily_quota: 1000,
  max_request_bytes: 65536,
  timeout_ms: 30000,
};
const manifest = parseAppManifest({
  name: 'sales',
  version: '1.2.0',
  runtime: 'node',
  entry: 'index.js',
  endpoints: [
    { method: 'GET', path: '/totals', description: 'Totals' },
    { method: 'GET', path: '/cities/{city}/months/{month}', description: 'One month of one city' },
    { method: 'POST', path: '/cities/{city}/notes' },
  ],
});

// Issue 14: the generated document lacked path parameters, request bodies and the gateway's own answers.
describe("a service's OpenAPI document", () => {
  const doc = serviceOpenApi(service, manifest, '1.2.0', 'https://platform.example') as {
    servers: Array<{ url: string }>;
    paths: Record<string, Record<string, Operation>>;
    components: { schemas: Record<string, { properties?: Record<string, unknown> }> };
  };
  const op = (path: string, method: string): Operation => {
    const found = doc.paths[path]?.[method];
    assert.ok(found, `${method} ${path} is documented`);
    return found;
  };

  it('declares every {parameter} of a path, required, in the path', () => {
    assert.deepEqual(op('/cities/{city}/months/{month}', 'get').parameters, [
      { name: 'city', in: 'path', required: true, schema: { type: 'string' } },
      { name: 'month', in: 'path', required: true, schema: { type: 'string' } },
    ]);
    assert.equal(op('/totals', 'get').parameters, undefined);
  });

  it('declares a request body where the method takes one, and none on GET', () => {
    assert.ok(op('/cities/{city}/notes', 'post').requestBody?.content['*/*']);
    assert.equal(op('/totals', 'get').requestBody, undefined);
    assert.ok(op('/cities/{city}/notes', 'post').responses['413'], 'a body over the cap is answered 413');
  });

  it("lists the gateway's 401, 403 and 429 (with Retry-After) in the shared error body", () => {
    for (const [path, method] of [
      ['/totals', 'get'],
      ['/cities/{city}/notes', 'post'],
    ] as const) {
      const responses = op(path, method).responses;
      for (const status of ['401', '403', '429', '503', '504']) {
        assert.equal(
          responses[status]?.content?.['application/json']?.schema.$ref,
          '#/components/schemas/ApiError',
          `${method} ${path} ${status}`,
        );
      }
      assert.ok(responses['429']?.headers?.['retry-after']);
      assert.ok(responses.default?.headers?.['insitu-request-id']);
    }
    assert.ok(doc.components.schemas.ApiError?.properties?.error, 'the error body is defined');
    assert.equal(doc.servers[0]?.url, 'https://platform.example/s/sales');
  });
});
