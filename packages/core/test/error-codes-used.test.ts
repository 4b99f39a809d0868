import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ENV_VARS, ERROR_CODES } from '../src/index.js';

// The repository root, from packages/core/dist/test (compiled) or packages/core/test.
const root = fileURLToPath(new URL(import.meta.url.includes('/dist/') ? '../../../../' : '../../../', import.meta.url));
const TABLE = join('packages', 'core', 'src', 'error-codes.ts');
/** `'INSITU_...'` literals that are neither error codes nor environment variables, and why. */
const NOT_CODES: Record<string, string> = {
  INSITU_TEST_COMMAND_MISSING: 'test-helpers: marks a test skipped because a program is not installed; never answered',
};

/** Every source file of every package (src/, not tests, not build output), as [path relative to root, text]. */
function sources(): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (/\.(ts|tsx|mts|mjs|js)$/.test(entry.name) && !entry.name.endsWith('.d.ts'))
        out.push([path, readFileSync(join(root, path), 'utf8')]);
    }
  };
  for (const pkg of readdirSync(join(root, 'packages'))) {
    try {
      walk(join('packages', pkg, 'src'));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  return out;
}

const LITERAL = /['"`](INSITU_[A-Z0-9_]+)['"`]/g;

describe('error codes against the source tree', () => {
  const files = sources();
  const envNames = new Set(ENV_VARS.map((variable) => variable.name));

  it('scans the source tree (guards against a wrong root)', () => {
    assert.ok(
      files.some(([path]) => path === TABLE),
      `no ${TABLE} under ${root}`,
    );
    assert.ok(files.length > 100, `only ${files.length} source files found under ${root}`);
  });

  it("every 'INSITU_...' literal in the sources is a code of the table (or an environment variable)", () => {
    const unknown: string[] = [];
    for (const [path, text] of files) {
      for (const match of text.matchAll(LITERAL)) {
        const name = match[1] ?? '';
        if (name in ERROR_CODES || envNames.has(name) || name in NOT_CODES) continue;
        unknown.push(`${path}: ${name}`);
      }
    }
    assert.deepEqual(unknown, [], 'literals that are not in packages/core/src/error-codes.ts');
  });

  it('every code of the table is used by some source file other than the table itself', () => {
    const used = new Set<string>();
    for (const [path, text] of files) {
      if (path === TABLE) continue;
      for (const match of text.matchAll(LITERAL)) used.add(match[1] ?? '');
    }
    const unused = Object.keys(ERROR_CODES).filter((code) => !used.has(code));
    assert.deepEqual(unused, [], 'codes defined in the table but never used outside tests');
  });

  it('the exceptions are still needed', () => {
    const all = new Set(files.flatMap(([, text]) => [...text.matchAll(LITERAL)].map((match) => match[1])));
    for (const name of Object.keys(NOT_CODES)) assert.ok(all.has(name), `${name} is no longer used: drop it`);
  });
});
