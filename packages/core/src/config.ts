import { readFileSync } from 'node:fs';
import type { Static, TSchema } from 'typebox';
import Value from 'typebox/value';
import { parse as parseYaml } from 'yaml';
import { InsituError } from './errors.js';
import { envOptions, type EnvScope } from './env-registry.js';
import { assertValid } from './validate.js';

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Merge `over` into `base` recursively; arrays and scalars replace. Returns a new object. */
export function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    if (value === undefined) continue;
    const current = out[key];
    out[key] = isPlainObject(current) && isPlainObject(value) ? deepMerge(current, value) : value;
  }
  return out;
}

/** Freeze an object graph so options cannot change after validation. */
export function deepFreeze<T>(value: T): Readonly<T> {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value as Record<string, unknown>)) deepFreeze(child);
  }
  return value;
}

/**
 * Read a YAML or JSON config file into a plain object. A missing file gives `undefined`
 * unless `required`; a file that does not parse, or is not a mapping, is an
 * `INSITU_CONFIG_INVALID` error naming the file and the line.
 */
export function readConfigFile(path: string, required = false): Record<string, unknown> | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' && !required) return undefined;
    throw new InsituError('INSITU_CONFIG_INVALID', `cannot read config file ${path}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  let parsed: unknown;
  try {
    parsed = parseYaml(text, { prettyErrors: true, uniqueKeys: true });
  } catch (error) {
    throw new InsituError('INSITU_CONFIG_INVALID', `config file ${path} does not parse: ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (parsed === null || parsed === undefined) return {};
  if (!isPlainObject(parsed)) {
    throw new InsituError('INSITU_CONFIG_INVALID', `config file ${path} must hold a mapping of options`);
  }
  return parsed;
}

/** Where {@link loadConfig} takes options from; later sources win. */
export interface ConfigSources {
  /** A YAML or JSON file. */
  file?: string;
  fileRequired?: boolean;
  /** Environment and the scope whose registered variables apply. */
  env?: NodeJS.ProcessEnv;
  envScope?: EnvScope;
  /** Options from command-line flags, as a nested object. */
  flags?: Record<string, unknown>;
  /** Options set by the caller's code, applied before the file. */
  base?: Record<string, unknown>;
}

/**
 * Schema → defaults → validate → freeze → typed options. Merges base, file,
 * environment and flags in that order, fills the schema's defaults, rejects unknown
 * options with the name they most likely meant, and freezes the result.
 *
 * @example
 * const config = loadConfig(ServerConfigSchema, { file: 'config.yaml', env: process.env, envScope: 'platform' });
 */
export function loadConfig<S extends TSchema>(schema: S, sources: ConfigSources): Readonly<Static<S>> {
  let merged: Record<string, unknown> = { ...(sources.base ?? {}) };
  const where: string[] = [];
  if (sources.file) {
    const fromFile = readConfigFile(sources.file, sources.fileRequired);
    if (fromFile) {
      merged = deepMerge(merged, fromFile);
      where.push(`config file ${sources.file}`);
    }
  }
  if (sources.env && sources.envScope) {
    const fromEnv = envOptions(sources.envScope, sources.env);
    if (Object.keys(fromEnv).length > 0) where.push('environment');
    merged = deepMerge(merged, fromEnv);
  }
  if (sources.flags) {
    if (Object.keys(sources.flags).length > 0) where.push('flags');
    merged = deepMerge(merged, sources.flags);
  }
  // A copy: defaults are filled in place and the result is frozen, and neither may reach
  // the caller's own objects (an array passed in twice was frozen by the first call).
  const withDefaults = Value.Default(schema, structuredClone(merged));
  const valid = assertValid(schema, withDefaults, {
    what: `configuration${where.length > 0 ? ` (from ${where.join(', ')})` : ''}`,
    code: 'INSITU_CONFIG_INVALID',
  });
  return deepFreeze(valid);
}
