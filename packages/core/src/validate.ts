import type { Static, TSchema } from 'typebox';
import Value from 'typebox/value';
import { InsituError } from './errors.js';
import type { ErrorCode } from './error-codes.js';
import { suggest } from './suggest.js';

/** One problem found in a value, with a dotted path (`listen.port`) and a message. */
export interface ValidationIssue {
  path: string;
  message: string;
}

type SchemaNode = {
  type?: unknown;
  properties?: Record<string, SchemaNode>;
  additionalProperties?: unknown;
  anyOf?: SchemaNode[];
  oneOf?: SchemaNode[];
  items?: SchemaNode;
};

function joinPath(base: string, key: string | number): string {
  if (typeof key === 'number') return `${base}[${key}]`;
  return base ? `${base}.${key}` : key;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Keys in `value` that the schema does not allow, each with the allowed name it most
 * likely meant. Walks objects, arrays and unions (the union's properties together).
 */
export function findUnknownKeys(schema: TSchema, value: unknown, base = ''): ValidationIssue[] {
  const node = schema as SchemaNode;
  const issues: ValidationIssue[] = [];
  const variants = node.anyOf ?? node.oneOf;
  if (variants) {
    if (!isPlainObject(value)) return issues;
    const properties: Record<string, SchemaNode> = {};
    let closed = true;
    for (const variant of variants) {
      if (variant.properties) Object.assign(properties, variant.properties);
      if (variant.additionalProperties !== false) closed = false;
    }
    return findUnknownKeys({ type: 'object', properties, additionalProperties: closed ? false : true }, value, base);
  }
  if (node.properties && isPlainObject(value)) {
    const names = Object.keys(node.properties);
    for (const [key, child] of Object.entries(value)) {
      const childSchema = node.properties[key];
      if (childSchema) {
        issues.push(...findUnknownKeys(childSchema, child, joinPath(base, key)));
      } else if (node.additionalProperties === false) {
        const hint = suggest(key, names);
        issues.push({
          path: joinPath(base, key),
          message: hint
            ? `unknown option; did you mean "${joinPath(base, hint)}"?`
            : `unknown option; allowed here: ${names.join(', ')}`,
        });
      }
    }
  }
  if (node.items && Array.isArray(value)) {
    value.forEach((item, index) => issues.push(...findUnknownKeys(node.items as TSchema, item, joinPath(base, index))));
  }
  return issues;
}

function pointerToPath(pointer: string): string {
  if (!pointer) return '';
  return pointer
    .split('/')
    .slice(1)
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce<string>((path, part) => joinPath(path, /^\d+$/.test(part) ? Number(part) : part), '');
}

/** Human-readable problems of `value` against `schema`: unknown keys first, then type errors. */
export function schemaIssues(schema: TSchema, value: unknown): ValidationIssue[] {
  const issues = findUnknownKeys(schema, value);
  const seen = new Set(issues.map((issue) => issue.path));
  for (const error of Value.Errors(schema, value)) {
    if (error.keyword === 'additionalProperties' || error.keyword === 'boolean') continue;
    if (error.keyword === 'anyOf' && issues.length > 0) continue;
    const path = pointerToPath(error.instancePath);
    const key = `${path}\u0000${error.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    issues.push({ path, message: error.message });
  }
  return issues;
}

/** Render issues as one line each: `listen.port: must be integer`. */
export function formatIssues(issues: readonly ValidationIssue[]): string {
  return issues.map((issue) => (issue.path ? `${issue.path}: ${issue.message}` : issue.message)).join('; ');
}

/** Options for {@link assertValid}. */
export interface AssertValidOptions {
  /** What is being validated, for the message: `config file /x/config.yaml`. */
  what: string;
  code?: ErrorCode;
}

/**
 * Validate `value` against `schema` and return it typed, or throw an
 * {@link InsituError} (default `INSITU_VALIDATION`) listing every issue.
 */
export function assertValid<S extends TSchema>(schema: S, value: unknown, options: AssertValidOptions): Static<S> {
  const issues = schemaIssues(schema, value);
  if (issues.length > 0) {
    throw new InsituError(options.code ?? 'INSITU_VALIDATION', `invalid ${options.what}: ${formatIssues(issues)}`, {
      details: { issues },
    });
  }
  return value as Static<S>;
}
