import { AppManifestSchema } from '@insitu/core';
import Type from 'typebox';
import type { App } from '../app.js';

/**
 * The schema as a manifest author sees it: a property with a default may be left out (the
 * platform fills it in before validating), so it is not listed as required.
 */
function optionalDefaults(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(optionalDefaults);
  if (schema === null || typeof schema !== 'object') return schema;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) out[key] = optionalDefaults(value);
  const properties = out.properties as Record<string, { default?: unknown }> | undefined;
  if (properties && Array.isArray(out.required)) {
    out.required = (out.required as string[]).filter((name) => properties[name]?.default === undefined);
    if ((out.required as string[]).length === 0) delete out.required;
  }
  return out;
}

/** The `insitu.json` reference as JSON Schema (draft-07), from the schema that validates every submitted bundle. */
const MANIFEST_JSON_SCHEMA = JSON.stringify({
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: '/api/v1/schemas/insitu.json',
  title: 'insitu.json: the manifest of a data application',
  ...(optionalDefaults(JSON.parse(JSON.stringify(AppManifestSchema))) as object),
});

/**
 * `GET /api/v1/schemas/insitu.json`: public, so editors can validate a manifest as it is
 * written (`"$schema": "https://PLATFORM/api/v1/schemas/insitu.json"`). The document is the
 * very schema submissions are checked against, so it cannot drift from what is accepted.
 */
export function registerSchemaRoutes(app: App): void {
  app.get(
    '/api/v1/schemas/insitu.json',
    {
      config: { auth: 'public' },
      schema: {
        tags: ['applications'],
        summary: 'The insitu.json manifest as JSON Schema (what submissions are validated against)',
        security: [],
        response: {
          200: Type.Object(
            { $schema: Type.String(), title: Type.String(), type: Type.Literal('object') },
            { additionalProperties: true },
          ),
        },
      },
    },
    async (_request, reply) =>
      reply
        .type('application/json')
        .header('cache-control', 'public, max-age=300')
        .send(MANIFEST_JSON_SCHEMA as unknown as { $schema: string; title: string; type: 'object' }),
  );
}
