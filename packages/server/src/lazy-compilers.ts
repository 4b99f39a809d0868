import type { ValidateFunction } from 'ajv';
import type { Serializer, SerializerCompiler, SerializerFactory } from '@fastify/fast-json-stringify-compiler';

/**
 * Route schemas compiled on a route's first use instead of at start. Fastify compiles the
 * validator and the response serializers of every route when it becomes ready; for this API
 * that was about a third of a platform start's CPU (bench/RESULTS.md, `insitu server` start),
 * paid again on every restart for routes most processes never serve. A schema is compiled
 * once, by the first request that needs it; the answers are the same.
 */
export function lazySerializers(factory: SerializerFactory): SerializerFactory {
  return (externalSchemas, options) => {
    const compile: SerializerCompiler = factory(externalSchemas, options);
    return (route) => {
      let serialize: Serializer | undefined;
      return (doc: unknown) => (serialize ??= compile(route))(doc);
    };
  };
}

/**
 * A validator compiled on its first call. Fastify reads `errors` after a failed call and
 * `schemaEnv` (to pass the parent, so Ajv may replace a coerced root value): both are the
 * compiled function's own.
 */
export function lazyValidator(compile: () => ValidateFunction): ValidateFunction {
  let compiled: ValidateFunction | undefined;
  const get = (): ValidateFunction => (compiled ??= compile());
  // A stand-in with the compiled function's call signature and the properties Fastify reads.
  const validate = ((data: unknown, context?: Parameters<ValidateFunction>[1]) => {
    const target = get();
    const valid = context === undefined ? target(data) : target(data, context);
    validate.errors = target.errors ?? null;
    return valid;
  }) as ValidateFunction;
  Object.defineProperty(validate, 'schemaEnv', { get: () => get().schemaEnv });
  Object.defineProperty(validate, 'schema', { get: () => get().schema });
  return validate;
}
