import { createHash } from 'node:crypto';
import { InsituError, assertValid, findUnknownKeys } from '@insitu/core';
import Type, { type Static } from 'typebox';
import Value from 'typebox/value';
import { parse as parseYaml } from 'yaml';
import { NAME_PATTERN } from './node-config.js';

const Closed = { additionalProperties: false } as const;

const ProbeSchema = Type.Object(
  {
    path: Type.String({ pattern: '^/[^\\s]*$', description: "HTTP path under the node's health URL" }),
    periodMs: Type.Integer({ minimum: 100, maximum: 600_000, default: 2000 }),
    timeoutMs: Type.Integer({ minimum: 50, maximum: 60_000, default: 1000 }),
    failureThreshold: Type.Integer({ minimum: 1, maximum: 100, default: 3 }),
  },
  Closed,
);

/** One platform service: where it runs, how it is probed, and how patiently it is restarted. */
export const ServiceSpecSchema = Type.Object(
  {
    placement: Type.Union(
      [Type.Literal('every-node'), Type.Object({ count: Type.Integer({ minimum: 1, maximum: 15 }) }, Closed)],
      {
        description: '`every-node`, or `{ count: N }` nodes chosen by the leader (a singleton is `{ count: 1 }`)',
      },
    ),
    liveness: Type.Optional(ProbeSchema),
    readiness: Type.Optional(ProbeSchema),
    startupGraceMs: Type.Integer({
      minimum: 0,
      maximum: 3_600_000,
      default: 30_000,
      description: 'Liveness failures do not count until the first success or this long after start',
    }),
    stopGraceMs: Type.Integer({
      minimum: 100,
      maximum: 600_000,
      default: 10_000,
      description: 'SIGTERM, then SIGKILL after this long',
    }),
    restart: Type.Object(
      {
        backoffInitialMs: Type.Integer({ minimum: 10, maximum: 600_000, default: 1000 }),
        backoffMaxMs: Type.Integer({ minimum: 10, maximum: 3_600_000, default: 60_000 }),
        jitter: Type.Number({ minimum: 0, maximum: 0.9, default: 0.25 }),
        resetAfterMs: Type.Integer({
          minimum: 1000,
          default: 10 * 60_000,
          description: 'Healthy this long: the back-off starts again from the first step',
        }),
        budget: Type.Integer({
          minimum: 1,
          maximum: 1000,
          default: 5,
          description: 'Restarts allowed within windowMs before the service is failed on the node',
        }),
        windowMs: Type.Integer({ minimum: 1000, default: 10 * 60_000 }),
      },
      { ...Closed, default: {} },
    ),
  },
  Closed,
);

/** `cluster.yaml`: the desired state of the platform's services, stored in coord by `insitu operator apply`. */
export const ClusterSpecSchema = Type.Object(
  {
    services: Type.Record(Type.String({ pattern: NAME_PATTERN }), ServiceSpecSchema, { minProperties: 1 }),
    deepProbes: Type.Object(
      {
        enabled: Type.Boolean({ default: true }),
        service: Type.String({
          pattern: NAME_PATTERN,
          default: 'server',
          description: 'The service whose nodes answer the deep probes (a platform server)',
        }),
      },
      { ...Closed, default: {} },
    ),
  },
  Closed,
);

export type ClusterSpec = Static<typeof ClusterSpecSchema>;
export type ServiceSpec = Static<typeof ServiceSpecSchema>;
export type Placement = ServiceSpec['placement'];

/** A spec as stored in coord: the spec, its digest, and when and by whom it was applied. */
export interface StoredSpec {
  spec: ClusterSpec;
  digest: string;
  appliedAt: string;
  appliedBy: string;
}

function fail(message: string, details?: Record<string, unknown>): never {
  throw new InsituError('INSITU_OPERATOR_SPEC_INVALID', message, details ? { details } : {});
}

/**
 * Parse and validate a cluster spec (YAML or JSON text): unknown keys are refused with the
 * name they most likely meant, defaults are filled, and the rules a schema cannot say are
 * checked. Any problem is `INSITU_OPERATOR_SPEC_INVALID` naming the place.
 */
export function parseClusterSpec(text: string, source = 'cluster spec'): ClusterSpec {
  let raw: unknown;
  try {
    raw = parseYaml(text, { prettyErrors: true, uniqueKeys: true });
  } catch (error) {
    fail(`${source} does not parse: ${(error as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    fail(`${source} must be a mapping with a services: section`);
  return validateClusterSpec(raw, source);
}

/** Validate an already parsed spec (see {@link parseClusterSpec}). */
export function validateClusterSpec(raw: unknown, source = 'cluster spec'): ClusterSpec {
  const unknown = findUnknownKeys(ClusterSpecSchema, raw);
  // Records' values are not walked by findUnknownKeys: each service is checked on its own.
  const services = (raw as { services?: unknown }).services;
  if (services !== null && typeof services === 'object' && !Array.isArray(services)) {
    for (const [name, service] of Object.entries(services))
      unknown.push(...findUnknownKeys(ServiceSpecSchema, service, `services.${name}`));
  }
  if (unknown.length > 0)
    fail(`${source}: ${unknown.map((u) => `${u.path}: ${u.message}`).join('; ')}`, { issues: unknown });
  const withDefaults = Value.Default(ClusterSpecSchema, structuredClone(raw)) as { services?: unknown };
  // TypeBox fills defaults through objects and arrays, not through a record's values.
  if (withDefaults.services !== null && typeof withDefaults.services === 'object') {
    const services = withDefaults.services as Record<string, unknown>;
    for (const name of Object.keys(services)) services[name] = Value.Default(ServiceSpecSchema, services[name]);
  }
  let spec: ClusterSpec;
  try {
    spec = assertValid(ClusterSpecSchema, withDefaults, { what: source, code: 'INSITU_OPERATOR_SPEC_INVALID' });
  } catch (error) {
    if (error instanceof InsituError) throw error;
    fail(`${source}: ${(error as Error).message}`);
  }
  for (const [name, service] of Object.entries(spec.services)) {
    if (service.restart.backoffMaxMs < service.restart.backoffInitialMs)
      fail(`${source}: services.${name}.restart.backoffMaxMs is below backoffInitialMs`);
    for (const kind of ['liveness', 'readiness'] as const) {
      const probe = service[kind];
      if (probe && probe.timeoutMs > probe.periodMs)
        fail(`${source}: services.${name}.${kind}.timeoutMs must not exceed its periodMs`);
    }
  }
  if (spec.deepProbes.enabled && !(spec.deepProbes.service in spec.services)) {
    fail(
      `${source}: deepProbes.service "${spec.deepProbes.service}" is not one of the services (${Object.keys(spec.services).join(', ')}); set deepProbes.enabled: false to run without deep probes`,
    );
  }
  return spec;
}

/** A stable digest of a spec (keys sorted), to tell a change from a re-apply. */
export function specDigest(spec: ClusterSpec): string {
  return createHash('sha256').update(canonicalJson(spec)).digest('hex').slice(0, 16);
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonicalJson((value as Record<string, unknown>)[key])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

function flatten(value: unknown, base: string, out: Map<string, string>): void {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const key of Object.keys(value).sort())
      flatten((value as Record<string, unknown>)[key], base ? `${base}.${key}` : key, out);
    return;
  }
  out.set(base, JSON.stringify(value));
}

/** One line of a spec diff. */
export interface SpecChange {
  kind: 'add' | 'remove' | 'change';
  path: string;
  before?: string;
  after?: string;
}

/** What applying `next` over `current` changes, field by field (`services.dbmanager.placement.count: 1 -> 2`). */
export function diffSpecs(current: ClusterSpec | undefined, next: ClusterSpec): SpecChange[] {
  const before = new Map<string, string>();
  const after = new Map<string, string>();
  if (current) flatten(current, '', before);
  flatten(next, '', after);
  const changes: SpecChange[] = [];
  for (const [path, value] of after) {
    const old = before.get(path);
    if (old === undefined) changes.push({ kind: 'add', path, after: value });
    else if (old !== value) changes.push({ kind: 'change', path, before: old, after: value });
  }
  for (const [path, value] of before) if (!after.has(path)) changes.push({ kind: 'remove', path, before: value });
  return changes.sort((a, b) => a.path.localeCompare(b.path));
}

/** `+ path: value`, `- path: value`, `~ path: old -> new`. */
export function formatChange(change: SpecChange): string {
  if (change.kind === 'add') return `+ ${change.path}: ${change.after ?? ''}`;
  if (change.kind === 'remove') return `- ${change.path}: ${change.before ?? ''}`;
  return `~ ${change.path}: ${change.before ?? ''} -> ${change.after ?? ''}`;
}

/** True when a service is placed by the leader on `count` nodes (not on every node). */
export function isPlaced(placement: Placement): placement is { count: number } {
  return placement !== 'every-node';
}
